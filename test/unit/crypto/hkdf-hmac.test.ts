import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { hkdfSha256 } from '../../../src/crypto/hkdf.js'
import { hmacSha256, hmacSha256Verify } from '../../../src/crypto/hmac.js'
import { isDomicileError } from '../../../src/errors.js'
import { hex, loadWycheproof } from './wycheproof.js'

interface HkdfGroup { tests: { tcId: number; ikm: string; salt: string; info: string; size: number; okm: string; result: string }[] }
interface MacGroup { keySize: number; tagSize: number; tests: { tcId: number; key: string; msg: string; tag: string; result: string }[] }

describe('HKDF-SHA-256: Wycheproof hkdf_sha256_test.json', () => {
  test('valid cases derive exactly okm; invalid (oversized output) are refused', () => {
    const file = loadWycheproof<HkdfGroup>('hkdf_sha256_test.json')
    let valid = 0, invalid = 0
    for (const g of file.testGroups) {
      for (const t of g.tests) {
        if (t.result === 'valid') {
          assert.equal(hkdfSha256(hex(t.ikm), hex(t.salt), hex(t.info), t.size).toString('hex'), t.okm, `tcId ${t.tcId}`)
          valid++
        } else {
          assert.throws(() => hkdfSha256(hex(t.ikm), hex(t.salt), hex(t.info), t.size), (e) => isDomicileError(e, 'ERR_INPUT_INVALID'), `tcId ${t.tcId}`)
          invalid++
        }
      }
    }
    assert.equal(valid + invalid, file.numberOfTests)
    assert.ok(valid > 70 && invalid >= 3)
  })

  test('Precondition: output length is between 1 and 255 * 32 bytes.', () => {
    for (const n of [0, -1, 1.5, 8161]) {
      assert.throws(() => hkdfSha256(randomBytes(32), Buffer.alloc(0), Buffer.alloc(0), n), (e) => isDomicileError(e, 'ERR_INPUT_INVALID'))
    }
    assert.equal(hkdfSha256(randomBytes(32), Buffer.alloc(0), Buffer.alloc(0), 8160).length, 8160)
  })
})

describe('HMAC-SHA-256: Wycheproof hmac_sha256_test.json', () => {
  test('valid tags verify (prefix compare for truncated tags); modified tags do not', () => {
    const file = loadWycheproof<MacGroup>('hmac_sha256_test.json')
    let valid = 0, invalid = 0
    for (const g of file.testGroups) {
      for (const t of g.tests) {
        const key = hex(t.key), msg = hex(t.msg), tag = hex(t.tag)
        assert.equal(tag.length, g.tagSize / 8)
        const full = hmacSha256(key, msg)
        if (t.result === 'valid') {
          assert.equal(full.subarray(0, tag.length).toString('hex'), t.tag, `tcId ${t.tcId}`)
          assert.equal(hmacSha256Verify(key, msg, tag), true, `tcId ${t.tcId}`)
          valid++
        } else {
          assert.equal(hmacSha256Verify(key, msg, tag), false, `tcId ${t.tcId}`)
          invalid++
        }
      }
    }
    assert.equal(valid + invalid, file.numberOfTests)
    assert.ok(valid > 60 && invalid > 100)
  })

  test('hmacSha256 of several parts equals HMAC of their concatenation', () => {
    const k = randomBytes(32)
    assert.deepEqual(hmacSha256(k, Buffer.from('ab'), Buffer.from('c')), hmacSha256(k, Buffer.from('abc')))
  })

  test('tags shorter than 16 bytes are refused, not compared', () => {
    const k = randomBytes(32), m = Buffer.from('m')
    assert.equal(hmacSha256Verify(k, m, hmacSha256(k, m).subarray(0, 15)), false)
    assert.equal(hmacSha256Verify(k, m, hmacSha256(k, m).subarray(0, 16)), true)
  })

  test('Precondition: the key is not empty.', () => {
    assert.throws(() => hmacSha256(new Uint8Array(0), Buffer.from('m')), (e) => isDomicileError(e, 'ERR_KEY_INVALID'))
  })
})
