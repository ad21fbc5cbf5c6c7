/**
 * AES-256-GCM against every case of Wycheproof's aes_gcm_test.json, through the code production
 * runs: src/crypto/aead.ts (local keystore, wrapped keys, key proxy) and the sealed-field codec's
 * AEAD layer (same framing, header checks and cipher steps as PreparedColumn.seal/open). Cases
 * outside our parameter set (AES-128/192 keys, IVs other than 96 bits) must be refused by the
 * preconditions; the counts per outcome are exact, so a file that runs fewer cases fails.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { aesGcmDecrypt, aesGcmEncrypt } from '../../../src/crypto/aead.js'
import { sealedFieldLayer } from '../../../src/fields/field-codec.js'
import { DecryptionFailedError, isDomicileError } from '../../../src/errors.js'
import { hex, loadWycheproof } from './wycheproof.js'

interface AeadTest { tcId: number; key: string; iv: string; aad: string; msg: string; ct: string; tag: string; result: 'valid' | 'invalid' | 'acceptable' }
interface AeadGroup { keySize: number; ivSize: number; tagSize: number; tests: AeadTest[] }

const OPAQUE = new DecryptionFailedError().message
/** The one opaque failure: right code, fixed message, no cause. */
const isDecryptFailure = (e: unknown) => isDomicileError(e, 'ERR_DECRYPTION_FAILED') && (e as Error).message === OPAQUE && (e as Error).cause === undefined
const isKeyInvalid = (e: unknown) => isDomicileError(e, 'ERR_KEY_INVALID')
const isInputInvalid = (e: unknown) => isDomicileError(e, 'ERR_INPUT_INVALID')

const file = loadWycheproof<AeadGroup>('aes_gcm_test.json')
const cases = file.testGroups.flatMap((g) => g.tests.map((t) => ({ g, t })))
/** Header of a sealed field v1 with data-key number 1. */
const HEADER = Buffer.from([0x01, 0, 0, 0, 1])

describe('AES-256-GCM: Wycheproof aes_gcm_test.json, every case', () => {
  test('the file holds 316 cases, all with 128-bit tags and none "acceptable"', () => {
    assert.equal(file.numberOfTests, 316)
    assert.equal(cases.length, 316)
    assert.ok(cases.every(({ g, t }) => g.tagSize === 128 && t.result !== 'acceptable'))
  })

  test('through aesGcmEncrypt / aesGcmDecrypt: 39 valid, 27 invalid, 211 refused keys, 39 refused nonces', () => {
    const n = { valid: 0, invalid: 0, acceptable: 0, keyRefused: 0, nonceRefused: 0 }
    for (const { g, t } of cases) {
      const key = hex(t.key), iv = hex(t.iv), aad = hex(t.aad), msg = hex(t.msg)
      const sealed = Buffer.concat([hex(t.ct), hex(t.tag)])
      const id = `tcId ${t.tcId}`
      if (g.keySize !== 256) {
        assert.throws(() => aesGcmEncrypt(key, iv, msg, aad), isKeyInvalid, id)
        assert.throws(() => aesGcmDecrypt(key, iv, sealed, aad), isKeyInvalid, id)
        n.keyRefused++
      } else if (g.ivSize !== 96) {
        assert.throws(() => aesGcmEncrypt(key, iv, msg, aad), isInputInvalid, id)
        assert.throws(() => aesGcmDecrypt(key, iv, sealed, aad), isInputInvalid, id)
        n.nonceRefused++
      } else if (t.result === 'valid') {
        assert.equal(aesGcmEncrypt(key, iv, msg, aad).toString('hex'), sealed.toString('hex'), `${id} encrypt`)
        assert.equal(aesGcmDecrypt(key, iv, sealed, aad).toString('hex'), t.msg, `${id} decrypt`)
        n.valid++
      } else if (t.result === 'invalid') {
        assert.throws(() => aesGcmDecrypt(key, iv, sealed, aad), isDecryptFailure, `${id} must be rejected`)
        n.invalid++
      } else {
        n.acceptable++
      }
    }
    assert.deepEqual(n, { valid: 39, invalid: 27, acceptable: 0, keyRefused: 211, nonceRefused: 39 })
  })

  test('through the sealed-field codec layer: 39 sealed, 37 opened, 2 too short to be a field, 27 invalid, 211 + 39 refused', () => {
    const n = { sealed: 0, opened: 0, tooShort: 0, invalid: 0, acceptable: 0, keyRefused: 0, nonceRefused: 0 }
    for (const { g, t } of cases) {
      const key = hex(t.key), iv = hex(t.iv), aad = hex(t.aad), msg = hex(t.msg)
      const stored = Buffer.concat([HEADER, iv, hex(t.ct), hex(t.tag)])
      const id = `tcId ${t.tcId}`
      if (g.keySize !== 256) {
        assert.throws(() => sealedFieldLayer.seal(key, 1, iv, msg, aad), isKeyInvalid, id)
        assert.throws(() => sealedFieldLayer.open(key, stored, aad), isKeyInvalid, id)
        n.keyRefused++
      } else if (g.ivSize !== 96) {
        // A sealed field has room for a 96-bit nonce only: other IVs cannot be written.
        assert.throws(() => sealedFieldLayer.seal(key, 1, iv, msg, aad), isInputInvalid, id)
        n.nonceRefused++
      } else if (t.result === 'valid') {
        assert.equal(sealedFieldLayer.seal(key, 1, iv, msg, aad).toString('hex'), stored.toString('hex'), `${id} seal`)
        n.sealed++
        if (msg.length === 0) {
          // No type byte: shorter than the 34-byte minimum of a sealed field, refused before decryption.
          assert.throws(() => sealedFieldLayer.open(key, stored, aad), isDecryptFailure, id)
          n.tooShort++
        } else {
          assert.equal(sealedFieldLayer.open(key, stored, aad).toString('hex'), t.msg, `${id} open`)
          n.opened++
        }
      } else if (t.result === 'invalid') {
        assert.throws(() => sealedFieldLayer.open(key, stored, aad), isDecryptFailure, `${id} must be rejected`)
        n.invalid++
      } else {
        n.acceptable++
      }
    }
    assert.deepEqual(n, { sealed: 39, opened: 37, tooShort: 2, invalid: 27, acceptable: 0, keyRefused: 211, nonceRefused: 39 })
  })
})

describe('AES-256-GCM preconditions', () => {
  const key = randomBytes(32)

  test('Precondition: the key is exactly 32 bytes (AES-256).', () => {
    for (const k of [randomBytes(16), randomBytes(24), randomBytes(31), randomBytes(33), 'k'.repeat(32)]) {
      assert.throws(() => aesGcmEncrypt(k as Uint8Array, Buffer.alloc(12), Buffer.alloc(1)), isKeyInvalid)
      assert.throws(() => aesGcmDecrypt(k as Uint8Array, Buffer.alloc(12), Buffer.alloc(17)), isKeyInvalid)
    }
  })

  test('Precondition: the nonce is exactly 12 bytes (96 bits).', () => {
    for (const iv of [Buffer.alloc(0), Buffer.alloc(8), Buffer.alloc(13), Buffer.alloc(16)]) {
      assert.throws(() => aesGcmEncrypt(key, iv, Buffer.alloc(1)), isInputInvalid)
      assert.throws(() => aesGcmDecrypt(key, iv, Buffer.alloc(17)), isInputInvalid)
    }
  })

  test('Precondition: plaintext, ciphertext and additional data are byte arrays.', () => {
    assert.throws(() => aesGcmEncrypt(key, Buffer.alloc(12), 'text' as unknown as Uint8Array), isInputInvalid)
    assert.throws(() => aesGcmEncrypt(key, Buffer.alloc(12), Buffer.alloc(1), 'aad' as unknown as Uint8Array), isInputInvalid)
    assert.throws(() => aesGcmDecrypt(key, Buffer.alloc(12), 'ct' as unknown as Uint8Array), isInputInvalid)
  })

  test('Precondition: the input holds at least a full tag.', () => {
    for (let len = 0; len < 16; len++) assert.throws(() => aesGcmDecrypt(key, Buffer.alloc(12), Buffer.alloc(len)), isDecryptFailure)
  })

  test('round trip with fresh nonces; wrong AAD, key or nonce, or a flipped bit: the same opaque error', () => {
    const nonce = randomBytes(12), aad = Buffer.from('a')
    const ct = aesGcmEncrypt(key, nonce, Buffer.from('hello'), aad)
    assert.equal(aesGcmDecrypt(key, nonce, ct, aad).toString(), 'hello')
    const flipped = Buffer.from(ct)
    flipped[0]! ^= 1
    for (const f of [
      () => aesGcmDecrypt(key, nonce, ct, Buffer.from('b')),
      () => aesGcmDecrypt(randomBytes(32), nonce, ct, aad),
      () => aesGcmDecrypt(key, randomBytes(12), ct, aad),
      () => aesGcmDecrypt(key, nonce, flipped, aad),
      () => aesGcmDecrypt(key, nonce, ct.subarray(0, 20), aad),
    ]) assert.throws(f, isDecryptFailure)
  })
})

test('a missing vector file is an error, not a skip', () => {
  assert.throws(() => loadWycheproof('no_such_vectors.json'), /missing/)
})
