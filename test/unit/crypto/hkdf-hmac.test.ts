/**
 * HKDF-SHA-256 and HMAC-SHA-256 against every case of Wycheproof's files, through the functions
 * production calls: hkdfSha256 (blind-index column keys, local root-key subkeys) and hmacSha256
 * (blind indexes, key fingerprints), the latter on both of its paths (a new HMAC, and one prepared
 * ahead for a key the data-key cache manages). Counts per outcome are exact.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { manageKey, readyCount, retireKey } from '../../../src/crypto/context-reserve.js'
import { hkdfSha256 } from '../../../src/crypto/hkdf.js'
import { hmacSha256 } from '../../../src/crypto/hmac.js'
import { isDomicileError } from '../../../src/errors.js'
import { hex, loadWycheproof } from './wycheproof.js'

interface HkdfGroup { tests: { tcId: number; ikm: string; salt: string; info: string; size: number; okm: string; result: string }[] }
interface MacGroup { keySize: number; tagSize: number; tests: { tcId: number; key: string; msg: string; tag: string; result: string }[] }

const isInputInvalid = (e: unknown) => isDomicileError(e, 'ERR_INPUT_INVALID')
const tick = () => new Promise<void>((r) => setImmediate(r))

describe('HKDF-SHA-256: Wycheproof hkdf_sha256_test.json, every case', () => {
  test('83 valid cases derive exactly okm; the 3 invalid (oversized output) are refused', () => {
    const file = loadWycheproof<HkdfGroup>('hkdf_sha256_test.json')
    const n = { valid: 0, invalid: 0, other: 0 }
    for (const g of file.testGroups) {
      for (const t of g.tests) {
        if (t.result === 'valid') {
          assert.equal(hkdfSha256(hex(t.ikm), hex(t.salt), hex(t.info), t.size).toString('hex'), t.okm, `tcId ${t.tcId}`)
          n.valid++
        } else if (t.result === 'invalid') {
          assert.throws(() => hkdfSha256(hex(t.ikm), hex(t.salt), hex(t.info), t.size), isInputInvalid, `tcId ${t.tcId}`)
          n.invalid++
        } else n.other++
      }
    }
    assert.equal(file.numberOfTests, 86)
    assert.deepEqual(n, { valid: 83, invalid: 3, other: 0 })
  })

  test('Precondition: output length is between 1 and 255 * 32 bytes.', () => {
    for (const n of [0, -1, 1.5, 8161]) {
      assert.throws(() => hkdfSha256(randomBytes(32), Buffer.alloc(0), Buffer.alloc(0), n), isInputInvalid)
    }
    assert.equal(hkdfSha256(randomBytes(32), Buffer.alloc(0), Buffer.alloc(0), 8160).length, 8160)
  })

  test('Precondition: inputs are byte arrays.', () => {
    assert.throws(() => hkdfSha256('ikm' as unknown as Uint8Array, Buffer.alloc(0), Buffer.alloc(0), 32), isInputInvalid)
    assert.throws(() => hkdfSha256(randomBytes(32), 'salt' as unknown as Uint8Array, Buffer.alloc(0), 32), isInputInvalid)
  })

  test("Precondition: info fits node's limit (1024 bytes).", () => {
    assert.equal(hkdfSha256(randomBytes(32), Buffer.alloc(0), Buffer.alloc(1024), 32).length, 32)
    assert.throws(() => hkdfSha256(randomBytes(32), Buffer.alloc(0), Buffer.alloc(1025), 32), isInputInvalid)
  })
})

describe('HMAC-SHA-256: Wycheproof hmac_sha256_test.json, every case', () => {
  const file = loadWycheproof<MacGroup>('hmac_sha256_test.json')

  /** Valid: our tag's first tagSize bits are the vector's tag. Invalid: they are not. */
  function check(key: Buffer, t: MacGroup['tests'][number], tagBytes: number): boolean {
    const ours = hmacSha256(key, hex(t.msg)).subarray(0, tagBytes).toString('hex')
    if (t.result === 'valid') assert.equal(ours, t.tag, `tcId ${t.tcId}`)
    else assert.notEqual(ours, t.tag, `tcId ${t.tcId}`)
    return t.result === 'valid'
  }

  test('with a new HMAC per call: 66 valid tags reproduced, 108 modified tags not', () => {
    const n = { valid: 0, invalid: 0 }
    for (const g of file.testGroups) {
      for (const t of g.tests) {
        assert.equal(hex(t.tag).length, g.tagSize / 8)
        if (check(hex(t.key), t, g.tagSize / 8)) n.valid++
        else n.invalid++
      }
    }
    assert.equal(file.numberOfTests, 174)
    assert.deepEqual(n, { valid: 66, invalid: 108 })
  })

  test('with HMACs prepared ahead for managed 32-byte keys (the blind-index path): 54 valid, 108 invalid', async () => {
    const n = { valid: 0, invalid: 0 }
    for (const g of file.testGroups.filter((g) => g.keySize === 256)) {
      for (const t of g.tests) {
        const key = hex(t.key)
        manageKey(key)
        hmacSha256(key, Buffer.from('warm-up')) // creates the key's reserve; the refill runs on the next turn
        await tick()
        const ready = readyCount(key).hmac
        assert.ok(ready > 0, `tcId ${t.tcId}: a prepared HMAC is ready`)
        if (check(key, t, g.tagSize / 8)) n.valid++
        else n.invalid++
        assert.equal(readyCount(key).hmac, ready - 1, `tcId ${t.tcId}: the prepared HMAC was used`)
        retireKey(key)
      }
    }
    assert.deepEqual(n, { valid: 54, invalid: 108 })
  })

  test('hmacSha256 of several parts (bytes and UTF-8 text) equals HMAC of their concatenation', () => {
    const k = randomBytes(32)
    assert.deepEqual(hmacSha256(k, Buffer.from('ab'), 'cé'), hmacSha256(k, Buffer.from('abcé', 'utf8')))
  })

  test('Precondition: the HMAC key is a non-empty Uint8Array.', () => {
    assert.throws(() => hmacSha256(new Uint8Array(0), Buffer.from('m')), (e) => isDomicileError(e, 'ERR_KEY_INVALID'))
    assert.throws(() => hmacSha256('key' as unknown as Uint8Array, Buffer.from('m')), (e) => isDomicileError(e, 'ERR_KEY_INVALID'))
  })

  test('Precondition: every message part is a Uint8Array or a string.', () => {
    assert.throws(() => hmacSha256(randomBytes(32), 42 as unknown as Uint8Array), isInputInvalid)
  })
})
