/**
 * The pkcs11 key provider and its Pkcs11Session against a real SoftHSM2 token (one fresh token for
 * this file). Attributes of generated keys are read back through a separate raw pkcs11js session,
 * so the non-extractability checks do not trust the code under test.
 */

import { after, before, describe, test } from 'node:test'
import { strict as assert } from 'node:assert'
import { randomBytes, randomUUID } from 'node:crypto'
import { createRequire } from 'node:module'
import { DecryptionFailedError, isDomicileError } from '../../src/errors.js'
import { createPkcs11KeyProvider, Pkcs11Session, type Pkcs11KeyProvider } from '../../src/keys/providers/pkcs11/index.js'
import { createSoftHsmToken, softHsmSkip, type SoftHsmToken } from '../support/softhsm.js'
import { rejection, wrapContext } from '../support/provider-test-helpers.js'

const skip = softHsmSkip()
const PIN = `user-${randomBytes(4).toString('hex')}`
const WRONG_PIN = `wrong-${randomBytes(4).toString('hex')}`
const SO_PIN = `so-${randomBytes(4).toString('hex')}`

const ctx = wrapContext

/** Everything an error exposes: message, stack, JSON and its cause chain. */
function errorText(e: unknown): string {
  const parts: string[] = []
  for (let cur: unknown = e, depth = 0; cur instanceof Error && depth < 8; cur = cur.cause, depth++) {
    parts.push(cur.message, cur.stack ?? '', JSON.stringify(cur))
    if (isDomicileError(cur)) parts.push(JSON.stringify(cur.toJSON()))
  }
  return parts.join('\n')
}

interface RawAttributes {
  token: boolean; private: boolean; sensitive: boolean; extractable: boolean
  alwaysSensitive: boolean; neverExtractable: boolean; encrypt: boolean; decrypt: boolean
  valueLen: number; valueReadError: string | undefined
}

/** A CK_ULONG attribute (native byte order, 4 or 8 bytes). */
function ulong(b: Buffer): number {
  return b.length === 8 ? Number(b.readBigUInt64LE(0)) : b.readUInt32LE(0)
}

/** Read a key's attributes with raw pkcs11js in a separate session (the login is process-wide). */
function readRawAttributes(token: SoftHsmToken, keyId: string): RawAttributes {
  const p = createRequire(import.meta.url)('pkcs11js') as Record<string, any>
  const m = new p.PKCS11()
  m.load(token.library)
  try { m.C_Initialize() } catch (e) { if (!String((e as Error).message).includes('CKR_CRYPTOKI_ALREADY_INITIALIZED')) throw e }
  const slot = (m.C_GetSlotList(true) as Buffer[]).find((s) => m.C_GetTokenInfo(s).label.trimEnd() === token.label)
  assert.ok(slot, 'token slot')
  const session = m.C_OpenSession(slot, p.CKF_SERIAL_SESSION)
  try {
    m.C_FindObjectsInit(session, [{ type: p.CKA_ID, value: Buffer.from(keyId.slice('hsm_'.length), 'hex') }])
    const found = m.C_FindObjects(session, 5) as Buffer[]
    m.C_FindObjectsFinal(session)
    assert.equal(found.length, 1, 'exactly one object carries the key id')
    const h = found[0]
    const names = ['CKA_TOKEN', 'CKA_PRIVATE', 'CKA_SENSITIVE', 'CKA_EXTRACTABLE', 'CKA_ALWAYS_SENSITIVE', 'CKA_NEVER_EXTRACTABLE', 'CKA_ENCRYPT', 'CKA_DECRYPT', 'CKA_VALUE_LEN'] as const
    const got = m.C_GetAttributeValue(session, h, names.map((n) => ({ type: p[n] }))) as Array<{ type: number; value: Buffer }>
    const v = (n: (typeof names)[number]) => got.find((a) => a.type === p[n])!.value
    let valueReadError: string | undefined
    try {
      m.C_GetAttributeValue(session, h, [{ type: p.CKA_VALUE }])
    } catch (e) {
      valueReadError = (e as Error).message
    }
    return {
      token: v('CKA_TOKEN')[0] === 1, private: v('CKA_PRIVATE')[0] === 1, sensitive: v('CKA_SENSITIVE')[0] === 1,
      extractable: v('CKA_EXTRACTABLE')[0] === 1, alwaysSensitive: v('CKA_ALWAYS_SENSITIVE')[0] === 1,
      neverExtractable: v('CKA_NEVER_EXTRACTABLE')[0] === 1, encrypt: v('CKA_ENCRYPT')[0] === 1,
      decrypt: v('CKA_DECRYPT')[0] === 1, valueLen: ulong(v('CKA_VALUE_LEN')),
      valueReadError,
    }
  } finally {
    m.C_CloseSession(session)
  }
}

describe('pkcs11 key provider on SoftHSM2', { skip }, () => {
  let token: SoftHsmToken
  let provider: Pkcs11KeyProvider
  let keyId: string

  before(async () => {
    token = await createSoftHsmToken({ label: `domicile-${randomUUID().slice(0, 8)}`, pin: PIN, soPin: SO_PIN })
    provider = createPkcs11KeyProvider({ name: 'hsm-test', library: token.library, tokenLabel: token.label, pin: PIN })
  })

  after(async () => {
    await provider?.close()
    await token?.cleanup()
  })

  // Runs first, while no session is logged in: the token itself checks the pin (C_Login).
  test('wrong pin at first login -> ERR_KEY_PROVIDER_UNAVAILABLE naming library and token, not the pin; not retried', async () => {
    const bad = createPkcs11KeyProvider({ library: token.library, tokenLabel: token.label, pin: WRONG_PIN })
    try {
      const e = await rejection(bad.createKey({ label: 'x', origin: 'generate' }))
      assert.equal(e.code, 'ERR_KEY_PROVIDER_UNAVAILABLE')
      assert.match(e.message, /pin is incorrect/)
      assert.ok(e.message.includes(token.library) && e.message.includes(token.label), e.message)
      assert.ok(!errorText(e).includes(WRONG_PIN) && !errorText(e).includes(PIN), 'a pin appears in the error')
      const again = await rejection(bad.keyStatus('hsm_00000000000000000000000000000000'))
      assert.equal(again, e, 'a refused pin is not tried again against the token')
    } finally {
      await bad.close()
    }
  })

  test('createKey generates a token key that is sensitive and non-extractable (read back raw)', async () => {
    ;({ keyId } = await provider.createKey({ label: 'tenant-acme', origin: 'generate' }))
    assert.match(keyId, /^hsm_[0-9a-f]{32}$/)
    const a = readRawAttributes(token, keyId)
    assert.equal(a.extractable, false)
    assert.equal(a.sensitive, true)
    assert.equal(a.neverExtractable, true)
    assert.equal(a.alwaysSensitive, true)
    assert.equal(a.token, true)
    assert.equal(a.private, true)
    assert.equal(a.valueLen, 32)
    assert.equal(a.valueReadError, 'CKR_ATTRIBUTE_SENSITIVE', 'reading CKA_VALUE must fail')
    assert.deepEqual(await provider.keyStatus(keyId), { keyId, state: 'enabled' })
  })

  test('wrap -> unwrap round trip; format is version || iv || ciphertext || tag', async () => {
    const dek = new Uint8Array(randomBytes(32))
    const expected = dek.slice()
    const w = await provider.wrapKey({ keyId, plaintextKey: dek, context: ctx() })
    assert.equal(w.keyId, keyId)
    assert.equal(w.ciphertext.length, 1 + 12 + 32 + 16)
    assert.equal(w.ciphertext[0], 1)
    assert.ok(!Buffer.from(w.ciphertext).includes(Buffer.from(expected)))
    const back = await provider.unwrapKey({ keyId, ciphertext: w.ciphertext, context: ctx() })
    assert.ok(back instanceof Uint8Array && !Buffer.isBuffer(back))
    assert.deepEqual(back, expected)
  })

  test('unwrap under a different context (AAD) fails opaquely', async () => {
    const w = await provider.wrapKey({ keyId, plaintextKey: new Uint8Array(randomBytes(32)), context: ctx() })
    for (const other of [ctx({ region: 'us-east-1' }), ctx({ tenantId: 'globex' }), ctx({ dataKeyId: 'dk-2' }), ctx({ purpose: 'index' })]) {
      const e = await rejection(provider.unwrapKey({ keyId, ciphertext: w.ciphertext, context: other }))
      assert.ok(e instanceof DecryptionFailedError)
      assert.equal(e.cause, undefined)
    }
  })

  test('Precondition: the wrapped key is in format version 1 (anything else is the opaque failure).', async () => {
    const w = await provider.wrapKey({ keyId, plaintextKey: new Uint8Array(randomBytes(32)), context: ctx() })
    const v2 = w.ciphertext.slice()
    v2[0] = 2
    for (const ciphertext of [v2, w.ciphertext.slice(0, 28), new Uint8Array(0)]) {
      assert.ok((await rejection(provider.unwrapKey({ keyId, ciphertext, context: ctx() }))) instanceof DecryptionFailedError)
    }
  })

  test('disableKey -> ERR_KEY_REVOKED for wrap and unwrap, CKA_ENCRYPT/CKA_DECRYPT off; enableKey -> works again', async () => {
    const dek = new Uint8Array(randomBytes(32))
    const expected = dek.slice()
    const w = await provider.wrapKey({ keyId, plaintextKey: dek, context: ctx() })
    await provider.disableKey(keyId)
    const raw = readRawAttributes(token, keyId)
    assert.equal(raw.encrypt, false)
    assert.equal(raw.decrypt, false)
    assert.equal((await rejection(provider.unwrapKey({ keyId, ciphertext: w.ciphertext, context: ctx() }))).code, 'ERR_KEY_REVOKED')
    assert.equal((await rejection(provider.wrapKey({ keyId, plaintextKey: new Uint8Array(32), context: ctx() }))).code, 'ERR_KEY_REVOKED')
    assert.deepEqual(await provider.keyStatus(keyId), { keyId, state: 'disabled' })

    await provider.enableKey(keyId)
    assert.deepEqual(await provider.keyStatus(keyId), { keyId, state: 'enabled' })
    assert.deepEqual(await provider.unwrapKey({ keyId, ciphertext: w.ciphertext, context: ctx() }), expected)
  })

  test('wrong pin while the token is already logged in -> still refused', async () => {
    const bad = createPkcs11KeyProvider({ library: token.library, tokenLabel: token.label, pin: WRONG_PIN })
    try {
      const e = await rejection(bad.keyStatus(keyId))
      assert.equal(e.code, 'ERR_KEY_PROVIDER_UNAVAILABLE')
      assert.ok(!errorText(e).includes(WRONG_PIN) && !errorText(e).includes(PIN))
    } finally {
      await bad.close()
    }
    assert.equal((await provider.keyStatus(keyId)).state, 'enabled', 'the good provider is unaffected')
  })

  test('unknown token label -> ERR_KEY_PROVIDER_UNAVAILABLE', async () => {
    const other = createPkcs11KeyProvider({ library: token.library, tokenLabel: 'no-such-token', pin: PIN })
    const e = await rejection(other.keyStatus(keyId))
    assert.equal(e.code, 'ERR_KEY_PROVIDER_UNAVAILABLE')
    assert.match(e.message, /no-such-token/)
    await other.close()
  })

  test('missing library -> ERR_KEY_PROVIDER_UNAVAILABLE naming the path', async () => {
    const other = createPkcs11KeyProvider({ library: '/nonexistent/libpkcs11.so', tokenLabel: token.label, pin: PIN })
    const e = await rejection(other.keyStatus(keyId))
    assert.equal(e.code, 'ERR_KEY_PROVIDER_UNAVAILABLE')
    assert.match(e.message, /\/nonexistent\/libpkcs11\.so/)
    assert.ok(!errorText(e).includes(PIN))
    await other.close()
  })

  test('Precondition: HSM keys are generated on the token, not imported.', async () => {
    const e = await rejection(provider.createKey({ label: 'byok', origin: 'import' }))
    assert.equal(e.code, 'ERR_INPUT_INVALID')
    assert.match(e.message, /BYOK import into an HSM is not supported/)
  })

  test('unknown or malformed key id -> ERR_KEY_NOT_FOUND', async () => {
    for (const id of ['hsm_' + randomBytes(16).toString('hex'), 'not-an-hsm-key']) {
      assert.equal((await rejection(provider.wrapKey({ keyId: id, plaintextKey: new Uint8Array(32), context: ctx() }))).code, 'ERR_KEY_NOT_FOUND')
      assert.equal((await rejection(provider.keyStatus(id))).code, 'ERR_KEY_NOT_FOUND')
      assert.equal((await rejection(provider.disableKey(id))).code, 'ERR_KEY_NOT_FOUND')
    }
  })

  test('50 concurrent wraps, then 50 concurrent unwraps, all round-trip', async () => {
    const keys = Array.from({ length: 50 }, () => new Uint8Array(randomBytes(32)))
    const expected = keys.map((k) => k.slice())
    const contexts = keys.map((_, i) => ctx({ dataKeyId: `dk-${i}` }))
    const wrapped = await Promise.all(keys.map((k, i) => provider.wrapKey({ keyId, plaintextKey: k, context: contexts[i]! })))
    const back = await Promise.all(wrapped.map((w, i) => provider.unwrapKey({ keyId, ciphertext: w.ciphertext, context: contexts[i]! })))
    back.forEach((b, i) => assert.deepEqual(b, expected[i]))
    // Mixed concurrently, too: wraps interleaved with unwraps on the one session.
    const mixed = await Promise.all(wrapped.flatMap((w, i) => [
      provider.unwrapKey({ keyId, ciphertext: w.ciphertext, context: contexts[i]! }),
      provider.wrapKey({ keyId, plaintextKey: expected[i]!.slice(), context: contexts[i]! }).then(() => expected[i]!),
    ]))
    mixed.forEach((b, j) => assert.deepEqual(b, expected[Math.floor(j / 2)]))
  })

  test('Pkcs11Session: a second session joins the login; GCM with KB-sized plaintext and AAD; destroyKey', async () => {
    const s = await Pkcs11Session.open({ library: token.library, tokenLabel: token.label, pin: PIN })
    try {
      const id = await s.generateAesKey('xks-key')
      assert.deepEqual(await s.keyInfo(id), { exists: true, enabled: true, label: 'xks-key' })
      const plaintext = randomBytes(3000)
      const aad = randomBytes(1500)
      const sealed = await s.encryptGcm(id, plaintext, aad)
      assert.equal(sealed.iv.length, 12)
      assert.equal(sealed.tag.length, 16)
      assert.equal(sealed.ciphertext.length, plaintext.length)
      assert.deepEqual(await s.decryptGcm(id, sealed.iv, sealed.ciphertext, sealed.tag, aad), plaintext)
      assert.equal((await rejection(s.encryptGcm(id, new Uint8Array(0), aad))).code, 'ERR_INPUT_INVALID')
      assert.equal((await rejection(s.encryptGcm(id, new Uint8Array(64 * 1024 + 1), aad))).code, 'ERR_INPUT_INVALID')
      const badTag = Buffer.from(sealed.tag)
      badTag[0]! ^= 1
      assert.ok((await rejection(s.decryptGcm(id, sealed.iv, sealed.ciphertext, badTag, aad))) instanceof DecryptionFailedError)
      // the session is still usable after a failed decrypt (no operation left active)
      assert.deepEqual(await s.decryptGcm(id, sealed.iv, sealed.ciphertext, sealed.tag, aad), plaintext)
      // the provider's key is visible from this session too
      assert.equal((await s.keyInfo(keyId)).exists, true)

      await s.setEnabled(id, false)
      assert.deepEqual(await s.keyInfo(id), { exists: true, enabled: false, label: 'xks-key' })
      assert.equal((await rejection(s.encryptGcm(id, plaintext, aad))).code, 'ERR_KEY_REVOKED')
      await s.setEnabled(id, true)

      await s.destroyKey(id)
      assert.deepEqual(await s.keyInfo(id), { exists: false, enabled: false, label: undefined })
      assert.equal((await rejection(s.encryptGcm(id, plaintext, aad))).code, 'ERR_KEY_NOT_FOUND')
      assert.equal((await rejection(s.decryptGcm(id, sealed.iv, sealed.ciphertext, sealed.tag, aad))).code, 'ERR_KEY_NOT_FOUND')
    } finally {
      await s.close()
    }
    assert.equal((await rejection(s.keyInfo(keyId))).code, 'ERR_CLOSED')
    // closing the joined session did not log the provider out
    assert.equal((await provider.keyStatus(keyId)).state, 'enabled')
  })

  test('a key destroyed behind a cached handle -> ERR_KEY_NOT_FOUND, not a stale success', async () => {
    const { keyId: doomed } = await provider.createKey({ label: 'doomed', origin: 'generate' })
    await provider.wrapKey({ keyId: doomed, plaintextKey: new Uint8Array(32), context: ctx() }) // handle now cached
    const s = await Pkcs11Session.open({ library: token.library, tokenLabel: token.label, pin: PIN })
    try { await s.destroyKey(doomed) } finally { await s.close() }
    assert.equal((await rejection(provider.wrapKey({ keyId: doomed, plaintextKey: new Uint8Array(32), context: ctx() }))).code, 'ERR_KEY_NOT_FOUND')
    assert.equal((await rejection(provider.keyStatus(doomed))).code, 'ERR_KEY_NOT_FOUND')
  })

  test('close finalises; keys persist on the token and a new provider (re-initialised library) unwraps', async () => {
    const dek = new Uint8Array(randomBytes(32))
    const expected = dek.slice()
    const w = await provider.wrapKey({ keyId, plaintextKey: dek, context: ctx() })
    await provider.close()
    assert.equal((await rejection(provider.keyStatus(keyId))).code, 'ERR_CLOSED')
    provider = createPkcs11KeyProvider({ library: token.library, tokenLabel: token.label, pin: PIN })
    assert.deepEqual(await provider.unwrapKey({ keyId, ciphertext: w.ciphertext, context: ctx() }), expected)
  })
})
