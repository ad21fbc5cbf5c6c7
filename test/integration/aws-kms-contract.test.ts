/**
 * aws-kms contract test.
 *
 * THIS MACHINE CANNOT REACH AWS. The adapter runs with the real @aws-sdk/client-kms against
 * test/support/fake-kms-server.ts, a loopback server speaking the KMS JSON 1.1 wire protocol. What
 * this proves: the exact requests the adapter sends (operation, KeyId, EncryptionContext, base64
 * blobs, SigV4 header present), how KMS answers and errors are mapped, that the deadline aborts the
 * HTTP request, and that the adapter passes the key-provider conformance suite. What it does not
 * prove: IAM policies, real KMS key states and CloudTrail, which need a run against a real account.
 */

import { describe, test, before, after } from 'node:test'
import { strict as assert } from 'node:assert'
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:net'
import { isDomicileError, DecryptionFailedError } from '../../src/errors.js'
import type { DomicileErrorCode } from '../../src/errors.js'
import type { WrapContext } from '../../src/keys/key-provider.js'
import { createAwsKmsKeyProvider } from '../../src/keys/providers/aws-kms.js'
import type { AwsKmsKeyProvider } from '../../src/keys/providers/aws-kms.js'
import { CircuitBreaker } from '../../src/keys/circuit-breaker.js'
import { RuntimeKeyProvider } from '../../src/keys/runtime-key-provider.js'
import { runKeyProviderSuite } from '../conformance/key-provider-suite.js'
import { FakeKmsServer } from '../support/fake-kms-server.js'
import type { FakeKmsKeyState } from '../support/fake-kms-server.js'

const credentials = { accessKeyId: 'AKIAFAKEFAKEFAKEFAKE', secretAccessKey: 'fake-secret-access-key-for-contract-tests' }
const ctx: WrapContext = { tenantId: 'acme', region: 'eu-west-1', dataKeyId: 'dk-42', purpose: 'index' }

function adapter(kms: FakeKmsServer, extra: { maxAttempts?: number; endpoint?: string } = {}): AwsKmsKeyProvider {
  return createAwsKmsKeyProvider({ name: 'kms-eu', region: kms.region, endpoint: extra.endpoint ?? kms.endpoint, credentials, maxAttempts: extra.maxAttempts ?? 1 })
}

async function rejectsWith(p: Promise<unknown>, code: DomicileErrorCode): Promise<Error> {
  let err: unknown
  await assert.rejects(p, (e) => {
    err = e
    assert.ok(isDomicileError(e), String(e))
    assert.equal(e.code, code, e.message)
    return true
  })
  return err as Error
}

describe('aws-kms contract test', () => {
  let kms: FakeKmsServer
  let raw: AwsKmsKeyProvider
  let rt: RuntimeKeyProvider

  before(async () => {
    kms = await FakeKmsServer.start({ region: 'eu-west-1' })
    raw = adapter(kms)
    rt = new RuntimeKeyProvider(raw, { breaker: new CircuitBreaker({ failureThreshold: 1000 }) })
  })
  after(async () => {
    await rt.close()
    await kms.close()
  })

  test('wrapKey sends Encrypt with KeyId, the base64 key and the encryption context', async () => {
    const keyId = kms.createKey()
    const dek = new Uint8Array(randomBytes(32))
    const start = kms.requests.length
    const w = await rt.wrapKey({ keyId, plaintextKey: dek, context: ctx })
    const [req, ...rest] = kms.requests.slice(start)
    assert.equal(rest.length, 0)
    assert.ok(req)
    assert.equal(req.method, 'POST')
    assert.equal(req.path, '/')
    assert.equal(req.target, 'TrentService.Encrypt')
    assert.equal(req.contentType, 'application/x-amz-json-1.1')
    assert.match(req.authorization ?? '', /^AWS4-HMAC-SHA256 Credential=AKIAFAKEFAKEFAKEFAKE\/\d{8}\/eu-west-1\/kms\/aws4_request/)
    assert.deepEqual(req.body, {
      KeyId: keyId,
      Plaintext: Buffer.from(dek).toString('base64'),
      EncryptionContext: { tenant: 'acme', region: 'eu-west-1', dataKey: 'dk-42', purpose: 'index' },
    })
    assert.equal(w.keyId, keyId)
    assert.ok(w.ciphertext.length > 32)
  })

  test('unwrapKey sends Decrypt with KeyId, the base64 blob and the same encryption context', async () => {
    const keyId = kms.createKey()
    const dek = new Uint8Array(randomBytes(32))
    const w = await rt.wrapKey({ keyId, plaintextKey: dek.slice(), context: ctx })
    const start = kms.requests.length
    const back = await rt.unwrapKey({ keyId, ciphertext: w.ciphertext, context: ctx })
    assert.deepEqual(Buffer.from(back), Buffer.from(dek))
    const [req] = kms.requests.slice(start)
    assert.equal(req?.target, 'TrentService.Decrypt')
    assert.deepEqual(req?.body, {
      KeyId: keyId,
      CiphertextBlob: Buffer.from(w.ciphertext).toString('base64'),
      EncryptionContext: { tenant: 'acme', region: 'eu-west-1', dataKey: 'dk-42', purpose: 'index' },
    })
  })

  test('keyStatus sends DescribeKey and maps every KeyState', async () => {
    const keyId = kms.createKey()
    const cases: Array<[FakeKmsKeyState, string]> = [
      ['Enabled', 'enabled'], ['Disabled', 'disabled'], ['PendingImport', 'pending-import'], ['PendingDeletion', 'deleted'], ['Unavailable', 'unavailable'],
    ]
    for (const [kmsState, ours] of cases) {
      kms.setKeyState(keyId, kmsState)
      const start = kms.requests.length
      assert.equal((await rt.keyStatus(keyId)).state, ours, kmsState)
      assert.deepEqual(kms.requests.slice(start).map((r) => [r.target, r.body]), [['TrentService.DescribeKey', { KeyId: keyId }]])
    }
  })

  test('KMS errors map to Domicile codes', async () => {
    const keyId = kms.createKey()
    const other = kms.createKey()
    const w = await rt.wrapKey({ keyId, plaintextKey: new Uint8Array(randomBytes(32)), context: ctx })
    // IncorrectKeyException: a blob of one key sent with another KeyId.
    await rejectsWith(rt.unwrapKey({ keyId: other, ciphertext: w.ciphertext, context: ctx }), 'ERR_DECRYPTION_FAILED')
    // InvalidCiphertextException: wrong context.
    const e = await rejectsWith(rt.unwrapKey({ keyId, ciphertext: w.ciphertext, context: { ...ctx, tenantId: 'globex' } }), 'ERR_DECRYPTION_FAILED')
    assert.equal(e.message, new DecryptionFailedError().message)
    // NotFoundException.
    await rejectsWith(rt.keyStatus('00000000-0000-4000-8000-000000000000'), 'ERR_KEY_NOT_FOUND')
    // DisabledException and KMSInvalidStateException.
    kms.setKeyState(keyId, 'Disabled')
    await rejectsWith(rt.unwrapKey({ keyId, ciphertext: w.ciphertext, context: ctx }), 'ERR_KEY_REVOKED')
    kms.setKeyState(keyId, 'PendingDeletion')
    await rejectsWith(rt.wrapKey({ keyId, plaintextKey: new Uint8Array(randomBytes(32)), context: ctx }), 'ERR_KEY_REVOKED')
    kms.setKeyState(keyId, 'Enabled')
    // Throttling and server faults: unavailable, the KMS message is not echoed, the type is named.
    kms.failNext(1, 'ThrottlingException', 400)
    const t = await rejectsWith(rt.keyStatus(keyId), 'ERR_KEY_PROVIDER_UNAVAILABLE')
    assert.match(t.message, /ThrottlingException/)
    assert.ok(!t.message.includes('injected failure'))
    kms.failNext(1, 'KMSInternalException', 500)
    const u = await rejectsWith(rt.unwrapKey({ keyId, ciphertext: w.ciphertext, context: ctx }), 'ERR_KEY_PROVIDER_UNAVAILABLE')
    assert.equal(u.cause, undefined, 'no cause on unwrap failures')
  })

  test('a KMS endpoint that does not answer: the deadline aborts the HTTP request', async () => {
    const keyId = kms.createKey()
    const quick = new RuntimeKeyProvider(adapter(kms), { timeoutMs: 150 })
    kms.hangNext(1)
    const before = kms.abortedRequests
    const t0 = performance.now()
    const e = await rejectsWith(quick.keyStatus(keyId), 'ERR_KEY_PROVIDER_UNAVAILABLE')
    assert.match(e.message, /did not answer within 150 ms/)
    assert.ok(performance.now() - t0 < 1500)
    const deadline = Date.now() + 2000
    while (kms.abortedRequests === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
    assert.equal(kms.abortedRequests, before + 1, 'the SDK request was aborted via abortSignal')
    await quick.close()
  })

  test('an unreachable endpoint is ERR_KEY_PROVIDER_UNAVAILABLE', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer()
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port
        s.close(() => resolve(p))
      })
    })
    const dead = new RuntimeKeyProvider(adapter(kms, { endpoint: `http://127.0.0.1:${port}` }))
    await rejectsWith(dead.keyStatus(kms.createKey()), 'ERR_KEY_PROVIDER_UNAVAILABLE')
    await dead.close()
  })
})

runKeyProviderSuite({
  name: 'aws-kms (contract, fake KMS on loopback)',
  async setup() {
    const kms = await FakeKmsServer.start({ region: 'eu-west-1' })
    const keyId = kms.createKey()
    const provider = adapter(kms)
    return {
      provider,
      keyId,
      unknownKeyId: '00000000-0000-4000-8000-00000000dead',
      revoke: async () => kms.disableKey(keyId),
      restore: async () => kms.enableKey(keyId),
      async teardown() {
        await provider.close()
        await kms.close()
      },
    }
  },
})
