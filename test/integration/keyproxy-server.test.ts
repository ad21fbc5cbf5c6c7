/**
 * The reference key proxy speaks XKS API v1: raw SigV4-signed HTTP requests against
 * `startKeyProxy` (real HTTP on 127.0.0.1, a real FileKeystore in a temp dir), checked against the
 * spec (aws/aws-kms-xksproxy-api-spec, xks_proxy_api_spec.md): paths, bodies, error names and
 * statuses, CDIV (Appendix C), SigV4 (Appendix A), 405 on GET, bounded bodies.
 */
import { after, before, describe, test } from 'node:test'
import { strict as assert } from 'node:assert'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { signRequest, XKS_SIGV4_SERVICE } from '../../src/xks/sigv4.js'
import { FileKeystore } from '../../src/keyproxy/file-keystore.js'
import { generateCredential } from '../../src/keyproxy/keyproxy-credentials.js'
import { startKeyProxy, type KeyProxyHandle, type KeyProxyLogEvent } from '../../src/keyproxy/keyproxy-server.js'
import { isDomicileError } from '../../src/errors.js'

interface Reply { status: number; body: Record<string, unknown>; headers: Headers }

describe('keyproxy server (XKS API v1)', () => {
  let parent: string
  let ks: FileKeystore
  let proxy: KeyProxyHandle
  let keyId: string
  const cred = generateCredential()
  const cred2 = generateCredential()
  const events: KeyProxyLogEvent[] = []
  const prefix = '/ks1'

  const md = (op = 'Encrypt') => ({
    awsPrincipalArn: 'arn:aws:iam::123456789012:user/Alice',
    kmsKeyArn: 'arn:aws:kms:us-east-2:123456789012:/key/1234abcd-12ab-34cd-56ef-1234567890ab',
    kmsOperation: op,
    kmsRequestId: `req-${randomBytes(4).toString('hex')}`,
  })

  async function call(path: string, body: unknown, o: { creds?: { accessKeyId: string; secretAccessKey: string }; date?: Date; method?: string; raw?: string; sign?: boolean } = {}): Promise<Reply> {
    const url = new URL(proxy.url + path)
    const payload = o.raw ?? JSON.stringify(body)
    const headers: Record<string, string> = { 'content-type': 'application/json' }
    if (o.sign !== false) {
      const s = signRequest({ method: o.method ?? 'POST', path, headers: { host: url.host }, body: payload }, {
        credentials: o.creds ?? cred, region: 'us-east-1', service: XKS_SIGV4_SERVICE, ...(o.date ? { date: o.date } : {}),
      })
      headers['authorization'] = s.authorization
      headers['x-amz-date'] = s.amzDate
    }
    const method = o.method ?? 'POST'
    const res = await fetch(url, { method, headers, ...(method === 'GET' ? {} : { body: payload }) })
    const text = await res.text()
    return { status: res.status, body: text === '' ? {} : JSON.parse(text) as Record<string, unknown>, headers: res.headers }
  }
  const keyPath = (id: string, op: string) => `${prefix}/kms/xks/v1/keys/${id}/${op}`

  before(async () => {
    parent = await mkdtemp(join(tmpdir(), 'domicile-keyproxy-srv-'))
    await FileKeystore.initialize(join(parent, 'd'))
    ks = new FileKeystore(join(parent, 'd'))
    keyId = await ks.createKey({ label: 'test' })
    // Plain HTTP here so the XKS semantics can be driven with fetch; TLS has its own suite below.
    proxy = await startKeyProxy({ uriPrefix: prefix, credentials: [cred, cred2], keystore: ks, insecureHttp: true, log: (e) => events.push(e) })
  })

  after(async () => {
    await proxy?.close()
    await ks?.close()
    await rm(parent, { recursive: true, force: true })
  })

  test('encrypt the spec example (with CDIV), then decrypt it back', async () => {
    const aad = Buffer.from('project=nile,department=marketing')
    const enc = await call(keyPath(keyId, 'encrypt'), {
      requestMetadata: md(),
      additionalAuthenticatedData: aad.toString('base64'),
      plaintext: 'SGVsbG8gV29ybGQh',
      encryptionAlgorithm: 'AES_GCM',
      ciphertextDataIntegrityValueAlgorithm: 'SHA_256',
    })
    assert.equal(enc.status, 200, JSON.stringify(enc.body))
    const ct = Buffer.from(enc.body['ciphertext'] as string, 'base64')
    const iv = Buffer.from(enc.body['initializationVector'] as string, 'base64')
    const tag = Buffer.from(enc.body['authenticationTag'] as string, 'base64')
    assert.equal(ct.length, 12, 'ciphertext length equals plaintext length')
    assert.equal(iv.length, 12)
    assert.equal(tag.length, 16)
    assert.equal(enc.body['ciphertextMetadata'], undefined)
    const cdiv = createHash('sha256').update(aad).update(iv).update(ct).update(tag).digest('base64')
    assert.equal(enc.body['ciphertextDataIntegrityValue'], cdiv)

    const dec = await call(keyPath(keyId, 'decrypt'), {
      requestMetadata: md('Decrypt'),
      additionalAuthenticatedData: aad.toString('base64'),
      encryptionAlgorithm: 'AES_GCM',
      ciphertext: enc.body['ciphertext'],
      initializationVector: enc.body['initializationVector'],
      authenticationTag: enc.body['authenticationTag'],
    })
    assert.equal(dec.status, 200)
    assert.equal(dec.body['plaintext'], 'SGVsbG8gV29ybGQh')

    // Wrong AAD, extra ciphertextMetadata, a flipped tag: InvalidCiphertextException (400).
    const base = { requestMetadata: md('Decrypt'), encryptionAlgorithm: 'AES_GCM', ciphertext: enc.body['ciphertext'], initializationVector: enc.body['initializationVector'], authenticationTag: enc.body['authenticationTag'] }
    const flipped = Buffer.from(tag); flipped[0]! ^= 1
    for (const bad of [
      { ...base, additionalAuthenticatedData: Buffer.from('project=nile').toString('base64') },
      { ...base }, // AAD missing
      { ...base, additionalAuthenticatedData: aad.toString('base64'), ciphertextMetadata: Buffer.from('v=1').toString('base64') },
      { ...base, additionalAuthenticatedData: aad.toString('base64'), authenticationTag: flipped.toString('base64') },
      { ...base, additionalAuthenticatedData: aad.toString('base64'), initializationVector: randomBytes(8).toString('base64') },
      { ...base, additionalAuthenticatedData: aad.toString('base64'), authenticationTag: 'not base64!' },
    ]) {
      const r = await call(keyPath(keyId, 'decrypt'), bad)
      assert.equal(r.status, 400)
      assert.equal(r.body['errorName'], 'InvalidCiphertextException')
    }
  })

  test('no AAD is allowed; the largest required inputs (4300 B plaintext, 8192 B AAD) fit', async () => {
    const small = await call(keyPath(keyId, 'encrypt'), { requestMetadata: md(), plaintext: 'AAAA', encryptionAlgorithm: 'AES_GCM' })
    assert.equal(small.status, 200)
    assert.equal(small.body['ciphertextDataIntegrityValue'], undefined, 'no CDIV unless asked')
    const pt = randomBytes(4300)
    const aad = randomBytes(8192)
    const md2048 = { ...md(), awsPrincipalArn: 'arn:' + 'a'.repeat(2044), kmsKeyArn: 'arn:' + 'k'.repeat(2044) }
    const big = await call(keyPath(keyId, 'encrypt'), { requestMetadata: md2048, plaintext: pt.toString('base64'), additionalAuthenticatedData: aad.toString('base64'), encryptionAlgorithm: 'AES_GCM', ciphertextDataIntegrityValueAlgorithm: 'SHA_256' })
    assert.equal(big.status, 200, JSON.stringify(big.body))
    const dec = await call(keyPath(keyId, 'decrypt'), { requestMetadata: md2048, ciphertext: big.body['ciphertext'], initializationVector: big.body['initializationVector'], authenticationTag: big.body['authenticationTag'], additionalAuthenticatedData: aad.toString('base64'), encryptionAlgorithm: 'AES_GCM' })
    assert.equal(dec.status, 200)
    assert.deepEqual(Buffer.from(dec.body['plaintext'] as string, 'base64'), pt)
  })

  test('metadata: ENABLED / DISABLED, KeyNotFoundException; disabled key -> InvalidStateException', async () => {
    const id = await ks.createKey()
    const m1 = await call(keyPath(id, 'metadata'), { requestMetadata: { awsPrincipalArn: 'p', kmsOperation: 'DescribeKey', kmsRequestId: 'r' } })
    assert.equal(m1.status, 200)
    assert.deepEqual(m1.body, { keySpec: 'AES_256', keyUsage: ['ENCRYPT', 'DECRYPT'], keyStatus: 'ENABLED' })
    await ks.setEnabled(id, false)
    const m2 = await call(keyPath(id, 'metadata'), { requestMetadata: { awsPrincipalArn: 'p', kmsOperation: 'DescribeKey', kmsRequestId: 'r' } })
    assert.equal(m2.body['keyStatus'], 'DISABLED')
    const e = await call(keyPath(id, 'encrypt'), { requestMetadata: md(), plaintext: 'AAAA', encryptionAlgorithm: 'AES_GCM' })
    assert.equal(e.status, 400)
    assert.equal(e.body['errorName'], 'InvalidStateException')
    const nf = await call(keyPath('no-such-key', 'metadata'), { requestMetadata: { awsPrincipalArn: 'p', kmsOperation: 'DescribeKey', kmsRequestId: 'r' } })
    assert.equal(nf.status, 404)
    assert.equal(nf.body['errorName'], 'KeyNotFoundException')
    const nf2 = await call(keyPath('no-such-key', 'encrypt'), { requestMetadata: md(), plaintext: 'AAAA', encryptionAlgorithm: 'AES_GCM' })
    assert.equal(nf2.body['errorName'], 'KeyNotFoundException')
  })

  test('health answers with the required fields; GET /ping is the load balancer check', async () => {
    const h = await call(`${prefix}/kms/xks/v1/health`, { requestMetadata: { kmsRequestId: 'r', kmsOperation: 'KmsHealthCheck' } })
    assert.equal(h.status, 200)
    assert.equal(h.body['xksProxyFleetSize'], 1)
    assert.equal(typeof h.body['xksProxyVendor'], 'string')
    assert.equal(typeof h.body['xksProxyModel'], 'string')
    assert.equal(typeof h.body['ekmVendor'], 'string')
    const fleet = h.body['ekmFleetDetails'] as Array<Record<string, unknown>>
    assert.equal(fleet.length, 1)
    assert.equal(fleet[0]?.['healthStatus'], 'ACTIVE')
    const ping = await fetch(`${proxy.url}/ping`)
    assert.equal(ping.status, 200)
  })

  test('GET on an API URI -> 405 Method Not Allowed', async () => {
    for (const path of [keyPath(keyId, 'encrypt'), keyPath(keyId, 'metadata'), `${prefix}/kms/xks/v1/health`]) {
      const r = await call(path, undefined, { method: 'GET', raw: '' })
      assert.equal(r.status, 405)
      assert.equal(r.headers.get('allow'), 'POST')
    }
  })

  test('SigV4: unsigned, wrong secret, unknown access key, 10-minute-old date -> 401 AuthenticationFailedException', async () => {
    const body = { requestMetadata: md(), plaintext: 'AAAA', encryptionAlgorithm: 'AES_GCM' }
    const cases = [
      await call(keyPath(keyId, 'encrypt'), body, { sign: false }),
      await call(keyPath(keyId, 'encrypt'), body, { creds: { accessKeyId: cred.accessKeyId, secretAccessKey: cred2.secretAccessKey } }),
      await call(keyPath(keyId, 'encrypt'), body, { creds: generateCredential() }),
      await call(keyPath(keyId, 'encrypt'), body, { date: new Date(Date.now() - 10 * 60_000) }),
    ]
    for (const r of cases) {
      assert.equal(r.status, 401)
      assert.equal(r.body['errorName'], 'AuthenticationFailedException')
    }
    const reasons = events.filter((e) => e.status === 401).map((e) => e.authFailure)
    for (const reason of ['missing-authorization', 'signature-mismatch', 'unknown-access-key', 'clock-skew']) {
      assert.ok(reasons.includes(reason as never), `logged auth failure ${reason}`)
    }
  })

  test('SigV4 credential rotation: both configured credentials are accepted', async () => {
    for (const c of [cred, cred2]) {
      const r = await call(keyPath(keyId, 'encrypt'), { requestMetadata: md(), plaintext: 'AAAA', encryptionAlgorithm: 'AES_GCM' }, { creds: c })
      assert.equal(r.status, 200)
    }
  })

  test('routing: unknown paths -> 404 InvalidUriPathException; a bad key id -> 400 ValidationException', async () => {
    for (const path of ['/kms/xks/v1/health', `${prefix}/kms/xks/v2/health`, `${prefix}/kms/xks/v1/keys/${keyId}/sign`, `${prefix}/kms/xks/v1/keys/${keyId}`]) {
      const r = await call(path, { requestMetadata: md() })
      assert.equal(r.status, 404, path)
      assert.equal(r.body['errorName'], 'InvalidUriPathException')
    }
    const r = await call(keyPath('bad%20id', 'encrypt'), { requestMetadata: md(), plaintext: 'AAAA', encryptionAlgorithm: 'AES_GCM' })
    assert.equal(r.status, 400)
    assert.equal(r.body['errorName'], 'ValidationException')
  })

  test('validation: not JSON, no requestMetadata, missing kmsRequestId, wrong algorithm, bad Base64 -> 400 ValidationException', async () => {
    const p = keyPath(keyId, 'encrypt')
    const bodies: Array<[string, unknown, string?]> = [
      ['not json', undefined, '{"requestMetadata":'],
      ['array', [1, 2]],
      ['no requestMetadata', { plaintext: 'AAAA', encryptionAlgorithm: 'AES_GCM' }],
      ['no kmsRequestId', { requestMetadata: { ...md(), kmsRequestId: undefined }, plaintext: 'AAAA', encryptionAlgorithm: 'AES_GCM' }],
      ['no awsPrincipalArn', { requestMetadata: { ...md(), awsPrincipalArn: undefined }, plaintext: 'AAAA', encryptionAlgorithm: 'AES_GCM' }],
      ['wrong algorithm', { requestMetadata: md(), plaintext: 'AAAA', encryptionAlgorithm: 'AES_CBC' }],
      ['wrong CDIV algorithm', { requestMetadata: md(), plaintext: 'AAAA', encryptionAlgorithm: 'AES_GCM', ciphertextDataIntegrityValueAlgorithm: 'MD5' }],
      ['bad base64', { requestMetadata: md(), plaintext: 'AAA', encryptionAlgorithm: 'AES_GCM' }],
      ['no plaintext', { requestMetadata: md(), encryptionAlgorithm: 'AES_GCM' }],
    ]
    for (const [name, body, raw] of bodies) {
      const r = await call(p, body, raw === undefined ? {} : { raw })
      assert.equal(r.status, 400, name)
      assert.equal(r.body['errorName'], 'ValidationException', name)
    }
    const tooBig = await call(p, { requestMetadata: md(), plaintext: randomBytes(4301).toString('base64'), encryptionAlgorithm: 'AES_GCM' })
    assert.equal(tooBig.status, 501)
    assert.equal(tooBig.body['errorName'], 'UnsupportedOperationException')
  })

  test('Precondition: the request body is bounded (400 ValidationException).', async () => {
    const r = await call(keyPath(keyId, 'encrypt'), { requestMetadata: md(), plaintext: randomBytes(40 * 1024).toString('base64'), encryptionAlgorithm: 'AES_GCM' })
    assert.equal(r.status, 400)
    assert.equal(r.body['errorName'], 'ValidationException')
    // The proxy still serves afterwards.
    const ok = await call(keyPath(keyId, 'encrypt'), { requestMetadata: md(), plaintext: 'AAAA', encryptionAlgorithm: 'AES_GCM' })
    assert.equal(ok.status, 200)
  })

  test('error messages are short printable ASCII; the log carries request metadata, never plaintext', async () => {
    const secret = randomBytes(32)
    const r = await call(keyPath(keyId, 'encrypt'), { requestMetadata: { ...md(), kmsRequestId: 'trace-me-123' }, plaintext: secret.toString('base64'), encryptionAlgorithm: 'AES_GCM' })
    assert.equal(r.status, 200)
    const ev = events.find((e) => e.kmsRequestId === 'trace-me-123')
    assert.ok(ev, 'the request is logged with its kmsRequestId')
    assert.equal(ev.operation, 'encrypt')
    assert.equal(ev.keyId, keyId)
    assert.equal(ev.status, 200)
    assert.equal(ev.accessKeyId, cred.accessKeyId)
    assert.equal(typeof ev.durationMs, 'number')
    const dump = JSON.stringify(events)
    assert.ok(!dump.includes(secret.toString('base64')), 'no plaintext in the log')
    assert.ok(!dump.includes(r.body['ciphertext'] as string), 'no ciphertext in the log')
    assert.ok(!dump.includes(cred.secretAccessKey), 'no secret in the log')
    const bad = await call(keyPath(keyId, 'encrypt'), { requestMetadata: md(), plaintext: 'AAA', encryptionAlgorithm: 'AES_GCM' })
    const msg = bad.body['errorMessage'] as string
    assert.ok(msg.length < 512 && /^[\x20-\x7e]*$/.test(msg))
  })
  test('GetHealthStatus without or with empty requestMetadata -> 400 ValidationException (as AWS\'s test client expects)', async () => {
    for (const body of [{}, { requestMetadata: {} }, { requestMetadata: { kmsOperation: 'KmsHealthCheck' } }, { requestMetadata: { kmsRequestId: 'r' } }, { requestMetadata: 'x' }]) {
      const r = await call(`${prefix}/kms/xks/v1/health`, body)
      assert.equal(r.status, 400, JSON.stringify(body))
      assert.equal(r.body['errorName'], 'ValidationException', JSON.stringify(body))
    }
    // Any kmsOperation is accepted (spec: MUST NOT reject other operations).
    const ok = await call(`${prefix}/kms/xks/v1/health`, { requestMetadata: { kmsRequestId: 'r', kmsOperation: 'SomeFutureOperation' } })
    assert.equal(ok.status, 200)
  })

  test('Precondition: ciphertextMetadata is at most 20 bytes (400 ValidationException).', async () => {
    const enc = await call(keyPath(keyId, 'encrypt'), { requestMetadata: md(), plaintext: 'AAAA', encryptionAlgorithm: 'AES_GCM' })
    const base = { requestMetadata: md('Decrypt'), encryptionAlgorithm: 'AES_GCM', ciphertext: enc.body['ciphertext'], initializationVector: enc.body['initializationVector'], authenticationTag: enc.body['authenticationTag'] }
    const over = await call(keyPath(keyId, 'decrypt'), { ...base, ciphertextMetadata: randomBytes(21).toString('base64') })
    assert.equal(over.status, 400)
    assert.equal(over.body['errorName'], 'ValidationException')
    // 20 bytes is within the limit: the AAD then differs, so the tag check fails instead.
    const at = await call(keyPath(keyId, 'decrypt'), { ...base, ciphertextMetadata: randomBytes(20).toString('base64') })
    assert.equal(at.body['errorName'], 'InvalidCiphertextException')
  })

  test('key usage: encrypt-only, decrypt-only, neither, and AES_128 keys -> InvalidKeyUsageException; metadata says why', async () => {
    const encOnly = await ks.createKey({ keyUsage: ['ENCRYPT'] })
    const decOnly = await ks.createKey({ keyUsage: ['DECRYPT'] })
    const impotent = await ks.createKey({ keyUsage: [] })
    const aes128 = await ks.createKey({ keySpec: 'AES_128' })
    const meta = async (id: string) => (await call(keyPath(id, 'metadata'), { requestMetadata: { awsPrincipalArn: 'p', kmsOperation: 'DescribeKey', kmsRequestId: 'r' } })).body
    assert.deepEqual(await meta(encOnly), { keySpec: 'AES_256', keyUsage: ['ENCRYPT'], keyStatus: 'ENABLED' })
    assert.deepEqual(await meta(decOnly), { keySpec: 'AES_256', keyUsage: ['DECRYPT'], keyStatus: 'ENABLED' })
    assert.deepEqual(await meta(impotent), { keySpec: 'AES_256', keyUsage: [], keyStatus: 'ENABLED' })
    assert.deepEqual(await meta(aes128), { keySpec: 'AES_128', keyUsage: ['ENCRYPT', 'DECRYPT'], keyStatus: 'ENABLED' })
    const aad = Buffer.from('project=nile').toString('base64')
    const encrypt = (id: string, extra: Record<string, unknown> = {}) => call(keyPath(id, 'encrypt'), { requestMetadata: md(), plaintext: 'cGxhaW50ZXh0Cg==', encryptionAlgorithm: 'AES_GCM', ...extra })
    const usageRefused = (r: Reply, what: string) => {
      assert.equal(r.status, 400, what)
      assert.equal(r.body['errorName'], 'InvalidKeyUsageException', what)
    }
    // Encrypt-only: encrypt works (with or without AAD), decrypt is refused, and so is a CDIV (the proxy would have to decrypt).
    for (const extra of [{}, { additionalAuthenticatedData: aad }]) {
      const e = await encrypt(encOnly, extra)
      assert.equal(e.status, 200, JSON.stringify(e.body))
      usageRefused(await call(keyPath(encOnly, 'decrypt'), { requestMetadata: md('Decrypt'), encryptionAlgorithm: 'AES_GCM', ciphertext: e.body['ciphertext'], initializationVector: e.body['initializationVector'], authenticationTag: e.body['authenticationTag'], ...extra }), 'decrypt with encrypt-only')
    }
    usageRefused(await encrypt(encOnly, { additionalAuthenticatedData: aad, ciphertextDataIntegrityValueAlgorithm: 'SHA_256' }), 'CDIV with encrypt-only')
    usageRefused(await encrypt(encOnly, { ciphertextDataIntegrityValueAlgorithm: 'SHA_256' }), 'CDIV without AAD with encrypt-only')
    // Decrypt-only, neither, AES_128: every encrypt variant is refused.
    for (const id of [decOnly, impotent, aes128]) {
      for (const extra of [{}, { additionalAuthenticatedData: aad }, { ciphertextDataIntegrityValueAlgorithm: 'SHA_256' }, { additionalAuthenticatedData: aad, ciphertextDataIntegrityValueAlgorithm: 'SHA_256' }]) {
        usageRefused(await encrypt(id, extra), `encrypt ${JSON.stringify(extra)}`)
      }
    }
    // A decrypt-only key may decrypt: garbage reaches the tag check (InvalidCiphertextException), not a usage refusal.
    const garbage = await call(keyPath(decOnly, 'decrypt'), { requestMetadata: md('Decrypt'), encryptionAlgorithm: 'AES_GCM', ciphertext: 'AAAA', initializationVector: randomBytes(12).toString('base64'), authenticationTag: randomBytes(16).toString('base64') })
    assert.equal(garbage.body['errorName'], 'InvalidCiphertextException')
    usageRefused(await call(keyPath(aes128, 'decrypt'), { requestMetadata: md('Decrypt'), encryptionAlgorithm: 'AES_GCM', ciphertext: 'AAAA', initializationVector: randomBytes(12).toString('base64'), authenticationTag: randomBytes(16).toString('base64') }), 'decrypt with AES_128')
  })

  test('setCredentials: a new credential works at once and a removed one is refused, without a restart', async () => {
    const fresh = generateCredential()
    const body = { requestMetadata: md(), plaintext: 'AAAA', encryptionAlgorithm: 'AES_GCM' }
    assert.equal((await call(keyPath(keyId, 'encrypt'), body, { creds: fresh })).status, 401)
    proxy.setCredentials([cred, cred2, fresh])
    assert.equal((await call(keyPath(keyId, 'encrypt'), body, { creds: fresh })).status, 200)
    proxy.setCredentials([cred, fresh])
    assert.equal((await call(keyPath(keyId, 'encrypt'), body, { creds: cred2 })).status, 401)
    assert.equal((await call(keyPath(keyId, 'encrypt'), body, { creds: cred })).status, 200)
    assert.throws(() => proxy.setCredentials([]), (e: unknown) => isDomicileError(e, 'ERR_CONFIG_INVALID'))
    proxy.setCredentials([cred, cred2])
  })
})
