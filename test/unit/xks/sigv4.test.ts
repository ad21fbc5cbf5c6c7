/**
 * SigV4 signer and verifier: known-answer vectors and verifier rejections.
 *
 * Vectors: the AWS Signature Version 4 Test Suite (formerly published at
 * https://docs.aws.amazon.com/general/latest/gr/signature-v4-test-suite.html), as carried in
 * smithy-lang/smithy-typescript packages/signature-v4/src/suite.fixture.ts (credentials AKIDEXAMPLE /
 * wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, region us-east-1, service "service", 2015-08-30T12:36:00Z).
 * Signing-key derivation: AWS General Reference, "Examples of how to derive a signing key for
 * Signature Version 4" (secret above, 20120215, us-east-1, iam).
 */
import { describe, test } from 'node:test'
import { strict as assert } from 'node:assert'
import {
  canonicalRequest,
  deriveSigningKey,
  formatAmzDate,
  parseAuthorization,
  signRequest,
  verifyRequest,
  XKS_SIGV4_SERVICE,
  type SigV4Request,
} from '../../../src/xks/sigv4.js'

const creds = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' }
const suiteDate = new Date('2015-08-30T12:36:00Z')
const host = 'example.amazonaws.com'

interface Vector {
  name: string
  method: string
  path: string
  query: string
  headers: Record<string, string>
  body: string
  signedHeaders: string
  signature: string
}

const vectors: Vector[] = [
  { name: 'get-vanilla', method: 'GET', path: '/', query: '', headers: { host }, body: '', signedHeaders: 'host;x-amz-date', signature: '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31' },
  { name: 'post-vanilla', method: 'POST', path: '/', query: '', headers: { host }, body: '', signedHeaders: 'host;x-amz-date', signature: '5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b' },
  { name: 'post-vanilla-query', method: 'POST', path: '/', query: 'Param1=value1', headers: { host }, body: '', signedHeaders: 'host;x-amz-date', signature: '28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11' },
  { name: 'get-vanilla-query-order-key-case', method: 'GET', path: '/', query: 'Param2=value2&Param1=value1', headers: { host }, body: '', signedHeaders: 'host;x-amz-date', signature: 'b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500' },
  { name: 'get-unreserved', method: 'GET', path: '/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', query: '', headers: { host }, body: '', signedHeaders: 'host;x-amz-date', signature: '07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f' },
  { name: 'get-utf8', method: 'GET', path: '/ሴ', query: '', headers: { host }, body: '', signedHeaders: 'host;x-amz-date', signature: '8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85' },
  { name: 'get-header-value-trim', method: 'GET', path: '/', query: '', headers: { host, 'my-header1': 'value1', 'my-header2': '"a   b   c"' }, body: '', signedHeaders: 'host;my-header1;my-header2;x-amz-date', signature: 'acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736' },
  { name: 'post-header-key-sort', method: 'POST', path: '/', query: '', headers: { host, 'My-Header1': 'value1' }, body: '', signedHeaders: 'host;my-header1;x-amz-date', signature: 'c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c' },
  { name: 'post-x-www-form-urlencoded', method: 'POST', path: '/', query: '', headers: { host, 'content-type': 'application/x-www-form-urlencoded' }, body: 'Param1=value1', signedHeaders: 'content-type;host;x-amz-date', signature: 'ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a' },
]

describe('SigV4 known answers (AWS SigV4 test suite)', () => {
  test('signing key derivation matches the AWS documented example', () => {
    const key = deriveSigningKey(creds.secretAccessKey, '20120215', 'us-east-1', 'iam')
    assert.equal(key.toString('hex'), 'f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d')
  })

  test('X-Amz-Date format', () => {
    assert.equal(formatAmzDate(suiteDate), '20150830T123600Z')
  })

  for (const v of vectors) {
    test(`vector ${v.name}`, () => {
      const signed = signRequest(
        { method: v.method, path: v.path, query: v.query, headers: v.headers, body: v.body },
        { credentials: creds, region: 'us-east-1', service: 'service', date: suiteDate },
      )
      assert.equal(signed.amzDate, '20150830T123600Z')
      assert.equal(signed.signature, v.signature)
      assert.equal(
        signed.authorization,
        `AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=${v.signedHeaders}, Signature=${v.signature}`,
      )
    })
  }

  test('get-vanilla canonical request matches the suite .creq file', () => {
    const creq = canonicalRequest(
      { method: 'GET', path: '/', headers: { host, 'x-amz-date': '20150830T123600Z' }, body: '' },
      ['host', 'x-amz-date'],
    )
    assert.equal(
      creq,
      'GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n' +
        'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    )
  })

  test('the suite vectors also verify with the verifier (clock pinned to the suite date)', () => {
    for (const v of vectors) {
      const signed = signRequest(
        { method: v.method, path: v.path, query: v.query, headers: v.headers, body: v.body },
        { credentials: creds, region: 'us-east-1', service: 'service', date: suiteDate },
      )
      const r = verifyRequest(
        { method: v.method, path: v.path, query: v.query, headers: { ...v.headers, authorization: signed.authorization, 'x-amz-date': signed.amzDate }, body: v.body },
        { service: 'service', lookupSecret: (id) => (id === creds.accessKeyId ? creds.secretAccessKey : undefined), now: suiteDate },
      )
      assert.deepEqual(r, { ok: true, accessKeyId: 'AKIDEXAMPLE', region: 'us-east-1' }, v.name)
    }
  })
})

describe('SigV4 verifier rejects', () => {
  const xksCreds = { accessKeyId: 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', secretAccessKey: 'c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I=' }
  const lookupSecret = (id: string): string | undefined => (id === xksCreds.accessKeyId ? xksCreds.secretAccessKey : undefined)
  const now = new Date('2026-01-02T03:04:05Z')

  function signed(over: Partial<SigV4Request> = {}, date = now): SigV4Request {
    const base: SigV4Request = {
      method: 'POST',
      path: '/xks/kms/xks/v1/keys/k-1/decrypt',
      headers: { host: '127.0.0.1:4000', 'content-type': 'application/json' },
      body: '{"requestMetadata":{"kmsRequestId":"r1"}}',
    }
    const h = signRequest(
      { method: base.method, path: base.path, headers: { host: '127.0.0.1:4000' }, body: base.body },
      { credentials: xksCreds, region: 'eu-west-1', service: XKS_SIGV4_SERVICE, date },
    )
    return { ...base, headers: { ...base.headers, authorization: h.authorization, 'x-amz-date': h.amzDate }, ...over }
  }
  const verify = (req: SigV4Request, extra: { now?: Date; regions?: string[] } = {}) =>
    verifyRequest(req, { service: XKS_SIGV4_SERVICE, lookupSecret, now: extra.now ?? now, ...(extra.regions ? { regions: extra.regions } : {}) })

  test('accepts an untampered request (control)', () => {
    assert.deepEqual(verify(signed()), { ok: true, accessKeyId: xksCreds.accessKeyId, region: 'eu-west-1' })
  })

  test('a tampered body', () => {
    assert.deepEqual(verify(signed({ body: '{"requestMetadata":{"kmsRequestId":"r2"}}' })), { ok: false, reason: 'signature-mismatch' })
  })

  test('a tampered path (other key id, other operation)', () => {
    assert.deepEqual(verify(signed({ path: '/xks/kms/xks/v1/keys/k-2/decrypt' })), { ok: false, reason: 'signature-mismatch' })
    assert.deepEqual(verify(signed({ path: '/xks/kms/xks/v1/keys/k-1/encrypt' })), { ok: false, reason: 'signature-mismatch' })
  })

  test('a tampered method or query', () => {
    assert.deepEqual(verify(signed({ method: 'PUT' })), { ok: false, reason: 'signature-mismatch' })
    assert.deepEqual(verify(signed({ query: 'x=1' })), { ok: false, reason: 'signature-mismatch' })
  })

  test('a tampered host header', () => {
    const r = signed()
    assert.deepEqual(verify({ ...r, headers: { ...r.headers, host: '127.0.0.1:4001' } }), { ok: false, reason: 'signature-mismatch' })
  })

  test('a wrong secret', () => {
    const r = signed()
    const res = verifyRequest(r, { service: XKS_SIGV4_SERVICE, lookupSecret: () => 'another-secret', now })
    assert.deepEqual(res, { ok: false, reason: 'signature-mismatch' })
  })

  test('an unknown access key id', () => {
    const res = verifyRequest(signed(), { service: XKS_SIGV4_SERVICE, lookupSecret: () => undefined, now })
    assert.deepEqual(res, { ok: false, reason: 'unknown-access-key' })
  })

  test('clock skew beyond five minutes, either way; within it is accepted', () => {
    assert.deepEqual(verify(signed({}, new Date(now.getTime() - 5 * 60_000 - 1000))), { ok: false, reason: 'clock-skew' })
    assert.deepEqual(verify(signed({}, new Date(now.getTime() + 5 * 60_000 + 1000))), { ok: false, reason: 'clock-skew' })
    assert.equal(verify(signed({}, new Date(now.getTime() - 4 * 60_000))).ok, true)
    assert.equal(verify(signed({}, new Date(now.getTime() + 4 * 60_000))).ok, true)
  })

  test('an X-Amz-Date changed after signing', () => {
    const r = signed()
    const later = formatAmzDate(new Date(now.getTime() + 1000))
    assert.deepEqual(verify({ ...r, headers: { ...r.headers, 'x-amz-date': later } }), { ok: false, reason: 'signature-mismatch' })
  })

  test('a missing or malformed Authorization header or date', () => {
    const r = signed()
    const { authorization: _a, ...noAuth } = r.headers as Record<string, string>
    assert.deepEqual(verify({ ...r, headers: noAuth }), { ok: false, reason: 'missing-authorization' })
    assert.deepEqual(verify({ ...r, headers: { ...r.headers, authorization: 'Bearer x' } }), { ok: false, reason: 'malformed-authorization' })
    const { 'x-amz-date': _d, ...noDate } = r.headers as Record<string, string>
    assert.deepEqual(verify({ ...r, headers: noDate }), { ok: false, reason: 'missing-date' })
    assert.deepEqual(verify({ ...r, headers: { ...r.headers, 'x-amz-date': '2026-01-02' } }), { ok: false, reason: 'malformed-date' })
  })

  test('a wrong service or a region outside the allowed list', () => {
    const h = signRequest(
      { method: 'POST', path: '/p', headers: { host: 'h' }, body: '' },
      { credentials: xksCreds, region: 'eu-west-1', service: 'kms', date: now },
    )
    const req: SigV4Request = { method: 'POST', path: '/p', headers: { host: 'h', authorization: h.authorization, 'x-amz-date': h.amzDate }, body: '' }
    assert.deepEqual(verify(req), { ok: false, reason: 'scope-mismatch' })
    assert.deepEqual(verify(signed(), { regions: ['us-east-1'] }), { ok: false, reason: 'scope-mismatch' })
  })

  test('a signature that does not sign host', () => {
    const r = signed()
    const auth = String(r.headers['authorization']).replace('SignedHeaders=host;x-amz-date', 'SignedHeaders=x-amz-date')
    assert.deepEqual(verify({ ...r, headers: { ...r.headers, authorization: auth } }), { ok: false, reason: 'unsigned-required-header' })
  })

  test('parseAuthorization refuses duplicated or extra fields', () => {
    const r = signed()
    const auth = String(r.headers['authorization'])
    assert.notEqual(parseAuthorization(auth), undefined)
    assert.equal(parseAuthorization(`${auth}, Signature=${'0'.repeat(64)}`), undefined)
    assert.equal(parseAuthorization(auth.replace('/aws4_request', '/aws5_request')), undefined)
  })
})
