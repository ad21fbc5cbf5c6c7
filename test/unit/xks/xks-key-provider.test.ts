/**
 * The xks provider's configuration preconditions, its wrapped-key blob checks (no network needed:
 * malformed blobs fail before any request) and the XKS wire helpers.
 */
import { describe, test } from 'node:test'
import { strict as assert } from 'node:assert'
import { DecryptionFailedError, isDomicileError } from '../../../src/errors.js'
import { createXksKeyProvider } from '../../../src/keys/providers/xks/xks-key-provider.js'
import { decodeBase64Strict, healthResponseProblem, isValidXksKeyId, isWellFormedArn, normalizeUriPrefix, xksPath, XKS_ERROR_STATUS } from '../../../src/xks/xks-api.js'
import { newestCredential, parseCredentialsFile } from '../../../src/xks/xks-credentials.js'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const credentials = { accessKeyId: 'AAAAAAAAAAAAAAAAAAAAAAAAAA', secretAccessKey: 'c2VjcmV0' }
const ctx = { tenantId: 't', region: 'eu-west-1', dataKeyId: 'd', purpose: 'data' as const }

function configError(fn: () => unknown, path: string): void {
  assert.throws(fn, (e: unknown) => isDomicileError(e, 'ERR_CONFIG_INVALID') && e.path === path)
}

describe('xks provider configuration', () => {
  test('Precondition: endpoint is an http(s) origin without path, query or user info.', () => {
    for (const endpoint of ['not a url', 'ftp://h:1', 'https://h/xks', 'https://h?x=1', 'https://u:p@h', 'https://h/#f']) {
      configError(() => createXksKeyProvider({ endpoint, credentials }), 'endpoint')
    }
    assert.equal(createXksKeyProvider({ endpoint: 'https://xks.example.com', credentials }).kind, 'xks')
    assert.equal(createXksKeyProvider({ endpoint: 'http://127.0.0.1:8080/', credentials, allowInsecureHttp: true }).name, 'xks')
  })

  test('Precondition: uriPrefix uses only A-Z a-z 0-9 / - _ and fits the 128-character XKS path limit.', () => {
    for (const uriPrefix of ['xks', '/xks/', '/a b', '/a/../b', '/' + 'a'.repeat(120)]) {
      configError(() => createXksKeyProvider({ endpoint: 'https://h', credentials, uriPrefix }), 'uriPrefix')
    }
    assert.equal(createXksKeyProvider({ endpoint: 'https://h', credentials, uriPrefix: '/keystores/4a0d79d6-1d1b_x' }).kind, 'xks')
  })

  test('Precondition: credentials are non-empty strings.', () => {
    configError(() => createXksKeyProvider({ endpoint: 'https://h', credentials: { accessKeyId: '', secretAccessKey: 's' } }), 'credentials')
    configError(() => createXksKeyProvider({ endpoint: 'https://h', credentials: { accessKeyId: 'a', secretAccessKey: '' } }), 'credentials')
  })

  test('Precondition: timeoutMs is a positive integer.', () => {
    for (const timeoutMs of [0, -1, 1.5, Number.NaN]) {
      configError(() => createXksKeyProvider({ endpoint: 'https://h', credentials, timeoutMs }), 'timeoutMs')
    }
  })

  test('Precondition: the wrapped key is a well-formed xks blob.', async () => {
    // Port 9 (discard) on a name that cannot resolve: if a request were made it would fail as UNAVAILABLE, not DECRYPTION_FAILED.
    const p = createXksKeyProvider({ endpoint: 'https://xks.invalid:9', credentials })
    const good = [1, 12, ...new Array(12).fill(0), 16, ...new Array(16).fill(0), 0, 7]
    const bad: number[][] = [
      [],
      [2, ...good.slice(1)], // unknown version
      [1, 13, ...good.slice(2)], // iv length 13
      [1, 12, ...new Array(12).fill(0), 15, ...new Array(16).fill(0), 0, 7], // tag length 15
      [1, 12, ...new Array(12).fill(0), 16, ...new Array(16).fill(0), 21, 7], // metadata > 20
      good.slice(0, 31), // no ciphertext
    ]
    for (const b of bad) {
      await assert.rejects(p.unwrapKey({ keyId: 'k', ciphertext: new Uint8Array(b), context: ctx }), (e: unknown) => e instanceof DecryptionFailedError && e.cause === undefined)
    }
  })

  test('a closed provider refuses calls with ERR_CLOSED', async () => {
    const p = createXksKeyProvider({ endpoint: 'https://xks.invalid:9', credentials })
    await p.close()
    await assert.rejects(p.keyStatus('k'), (e: unknown) => isDomicileError(e, 'ERR_CLOSED'))
  })
})

describe('xks provider configuration: TLS, ARNs, credentials file', () => {
  test('Precondition: the endpoint is https, unless allowInsecureHttp is set.', () => {
    configError(() => createXksKeyProvider({ endpoint: 'http://xks.example.com', credentials }), 'endpoint')
    configError(() => createXksKeyProvider({ endpoint: 'http://xks.example.com', credentials, allowInsecureHttp: false }), 'endpoint')
    assert.equal(createXksKeyProvider({ endpoint: 'http://xks.example.com', credentials, allowInsecureHttp: true }).kind, 'xks')
  })

  test('Precondition: awsPrincipalArn and kmsKeyArn are well-formed ARNs.', () => {
    for (const awsPrincipalArn of ['domicile', 'arn:aws:iam::12345:role/x', 'arn:aws:iam::123456789012:', 'arn:aws:iam::123456789012:role/a b']) {
      configError(() => createXksKeyProvider({ endpoint: 'https://h', credentials, awsPrincipalArn }), 'awsPrincipalArn')
    }
    for (const kmsKeyArn of ['domicile:xks:k', 'arn:aws:kms:eu-west-1:1234:key/{keyId}', 'arn:aws:kms:eu-west-1:123456789012:' + 'x'.repeat(2048)]) {
      configError(() => createXksKeyProvider({ endpoint: 'https://h', credentials, kmsKeyArn }), 'kmsKeyArn')
    }
    assert.ok(createXksKeyProvider({ endpoint: 'https://h', credentials, awsPrincipalArn: 'arn:aws:iam::123456789012:role/app', kmsKeyArn: 'arn:aws:kms:eu-west-1:123456789012:key/{keyId}' }))
    assert.ok(isWellFormedArn('arn:aws:iam::123456789012:user/Alice'))
    assert.ok(isWellFormedArn('arn:aws:kms:us-east-2:123456789012:/key/1234abcd-12ab-34cd-56ef-1234567890ab'))
    assert.ok(!isWellFormedArn('domicile:xks:xks:k1'))
  })

  test('Precondition: ca/caFile, clientCert/clientCertFile, clientKey/clientKeyFile are each given at most once, and a client certificate comes with its key.', () => {
    configError(() => createXksKeyProvider({ endpoint: 'https://h', credentials, ca: 'x', caFile: '/x' }), 'caFile')
    configError(() => createXksKeyProvider({ endpoint: 'https://h', credentials, clientCert: 'x' }), 'clientKeyFile')
    configError(() => createXksKeyProvider({ endpoint: 'https://h', credentials, caFile: '/nonexistent/ca.pem' }), 'caFile')
  })

  test('credentials files: the keyproxy format (newest credential) and a single pair; anything else is a config error naming no value', () => {
    const dir = mkdtempSync(join(tmpdir(), 'domicile-xks-cred-'))
    try {
      const file = join(dir, 'c.json')
      writeFileSync(file, JSON.stringify({ version: 1, credentials: [
        { accessKeyId: 'OLDOLDOLD', secretAccessKey: 's1', createdAt: '2026-01-01T00:00:00.000Z' },
        { accessKeyId: 'NEWNEWNEW', secretAccessKey: 's2', createdAt: '2026-02-01T00:00:00.000Z' },
      ] }))
      assert.equal(createXksKeyProvider({ endpoint: 'https://h', credentialsFile: file }).kind, 'xks')
      const parsed = parseCredentialsFile(JSON.stringify({ credentials: [{ accessKeyId: 'A', secretAccessKey: 'a', createdAt: '2026-03-01T00:00:00Z' }, { accessKeyId: 'B', secretAccessKey: 'b', createdAt: '2026-01-01T00:00:00Z' }] }))
      assert.ok(parsed.ok)
      assert.equal(newestCredential(parsed.credentials).accessKeyId, 'A')
      const single = parseCredentialsFile('{"accessKeyId":"A","secretAccessKey":"b"}')
      assert.ok(single.ok && single.credentials.length === 1)
      for (const bad of ['not json', '[]', '{"credentials":[]}', '{"credentials":[{"accessKeyId":"A"}]}', '{"accessKeyId":"A","secretAccessKey":""}']) {
        writeFileSync(file, bad)
        assert.throws(() => createXksKeyProvider({ endpoint: 'https://h', credentialsFile: file }),
          (e: unknown) => isDomicileError(e, 'ERR_CONFIG_INVALID') && e.path === 'credentialsFile' && !e.message.includes('"A"'), bad)
      }
      configError(() => createXksKeyProvider({ endpoint: 'https://h', credentials, credentialsFile: file }), 'credentials')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('XKS wire helpers', () => {
  test('paths follow {uriPrefix}/kms/xks/v1/...', () => {
    assert.equal(xksPath('', 'health'), '/kms/xks/v1/health')
    assert.equal(xksPath('/p', 'encrypt', 'k-1'), '/p/kms/xks/v1/keys/k-1/encrypt')
    assert.equal(xksPath('/p', 'metadata', 'k-1'), '/p/kms/xks/v1/keys/k-1/metadata')
  })

  test('key ids and prefixes', () => {
    assert.ok(isValidXksKeyId('b42c7fbf-de61-441c-ae24-123456789012'))
    assert.ok(isValidXksKeyId('a.b_c-D'))
    assert.ok(!isValidXksKeyId(''))
    assert.ok(!isValidXksKeyId('a/b'))
    assert.ok(!isValidXksKeyId('x'.repeat(129)))
    assert.equal(normalizeUriPrefix(undefined), '')
    assert.equal(normalizeUriPrefix('/'), '')
    assert.equal(normalizeUriPrefix('/keystores/abc'), '/keystores/abc')
    assert.equal(normalizeUriPrefix('/a/'), undefined)
  })

  test('strict Base64', () => {
    assert.deepEqual(decodeBase64Strict('SGVsbG8gV29ybGQh'), Buffer.from('Hello World!'))
    assert.deepEqual(decodeBase64Strict(''), Buffer.alloc(0))
    for (const bad of ['SGVsbG8', 'SGVs bG8=', 'SGVsbG8-', 'SGVsbG9=', 42]) assert.equal(decodeBase64Strict(bad), undefined, String(bad))
  })

  test('health responses are checked as the spec describes', () => {
    const good = { xksProxyFleetSize: 2, xksProxyVendor: 'V', xksProxyModel: 'M', ekmVendor: 'E', ekmFleetDetails: [{ id: 'a', model: 'm', healthStatus: 'DEGRADED' }] }
    assert.equal(healthResponseProblem(good), undefined)
    const bad: unknown[] = [
      null, [], { ...good, xksProxyFleetSize: 0 }, { ...good, xksProxyFleetSize: 1.5 }, { ...good, xksProxyFleetSize: '1' },
      { ...good, xksProxyVendor: '' }, { ...good, ekmVendor: undefined }, { ...good, xksProxyModel: 3 },
      { ...good, ekmFleetDetails: [] }, { ...good, ekmFleetDetails: new Array(11).fill(good.ekmFleetDetails[0]) },
      { ...good, ekmFleetDetails: [{ id: 'a', model: 'm', healthStatus: 'OK' }] }, { ...good, ekmFleetDetails: [{ model: 'm', healthStatus: 'ACTIVE' }] },
    ]
    for (const b of bad) assert.equal(typeof healthResponseProblem(b), 'string', JSON.stringify(b))
  })

  test('error statuses match the spec table', () => {
    assert.equal(XKS_ERROR_STATUS.ValidationException, 400)
    assert.equal(XKS_ERROR_STATUS.AuthenticationFailedException, 401)
    assert.equal(XKS_ERROR_STATUS.AccessDeniedException, 403)
    assert.equal(XKS_ERROR_STATUS.KeyNotFoundException, 404)
    assert.equal(XKS_ERROR_STATUS.InvalidUriPathException, 404)
    assert.equal(XKS_ERROR_STATUS.ThrottlingException, 429)
    assert.equal(XKS_ERROR_STATUS.InternalException, 500)
    assert.equal(XKS_ERROR_STATUS.UnsupportedOperationException, 501)
    assert.equal(XKS_ERROR_STATUS.DependencyTimeoutException, 503)
  })
})
