import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createSecretKey, randomBytes } from 'node:crypto'
import { aesGcmDecrypt, aesGcmEncrypt, aesGcmOpen, aesGcmSeal } from '../../../src/crypto/aead.js'
import { isDomicileError } from '../../../src/errors.js'
import { hex, loadWycheproof } from './wycheproof.js'

interface AeadGroup {
  keySize: number
  ivSize: number
  tagSize: number
  tests: { tcId: number; key: string; iv: string; aad: string; msg: string; ct: string; tag: string; result: 'valid' | 'invalid' | 'acceptable' }[]
}

const isDecryptFailure = (e: unknown) => isDomicileError(e, 'ERR_DECRYPTION_FAILED') && (e as Error).cause === undefined

describe('AES-256-GCM: Wycheproof aes_gcm_test.json', () => {
  const file = loadWycheproof<AeadGroup>('aes_gcm_test.json')
  const ours = file.testGroups.filter((g) => g.keySize === 256 && g.ivSize === 96 && g.tagSize === 128)
  const others = file.testGroups.filter((g) => !(g.keySize === 256 && g.ivSize === 96 && g.tagSize === 128))

  test('the vector file has the 256-bit key / 96-bit IV / 128-bit tag group', () => {
    const n = ours.reduce((a, g) => a + g.tests.length, 0)
    assert.ok(n >= 60, `expected at least 60 cases, got ${n}`)
  })

  test('valid cases encrypt to exactly ct||tag and decrypt back; invalid cases are rejected opaquely', () => {
    let valid = 0, invalid = 0
    for (const g of ours) {
      for (const t of g.tests) {
        const key = hex(t.key), iv = hex(t.iv), aad = hex(t.aad), msg = hex(t.msg)
        const sealed = Buffer.concat([hex(t.ct), hex(t.tag)])
        if (t.result === 'valid') {
          assert.equal(aesGcmEncrypt(key, iv, msg, aad).toString('hex'), sealed.toString('hex'), `tcId ${t.tcId} encrypt`)
          assert.equal(aesGcmDecrypt(key, iv, sealed, aad).toString('hex'), t.msg, `tcId ${t.tcId} decrypt`)
          valid++
        } else if (t.result === 'invalid') {
          assert.throws(() => aesGcmDecrypt(key, iv, sealed, aad), isDecryptFailure, `tcId ${t.tcId} must be rejected`)
          invalid++
        } else {
          // 'acceptable': either outcome is allowed; it must not crash with anything but the opaque error.
          try { aesGcmDecrypt(key, iv, sealed, aad) } catch (e) { assert.ok(isDecryptFailure(e), `tcId ${t.tcId}`) }
        }
      }
    }
    assert.ok(valid > 30 && invalid > 20, `ran ${valid} valid and ${invalid} invalid cases`)
  })

  test('Precondition: the key is exactly 32 bytes (AES-256).', () => {
    const sizes = new Set(others.map((g) => g.keySize))
    assert.ok(sizes.has(128) && sizes.has(192))
    for (const g of others.filter((g) => g.keySize !== 256)) {
      const t = g.tests[0]!
      assert.throws(() => aesGcmEncrypt(hex(t.key), Buffer.alloc(12), hex(t.msg)), (e) => isDomicileError(e, 'ERR_KEY_INVALID'))
      assert.throws(() => aesGcmDecrypt(hex(t.key), Buffer.alloc(12), Buffer.concat([hex(t.ct), hex(t.tag)])), (e) => isDomicileError(e, 'ERR_KEY_INVALID'))
    }
    assert.throws(() => aesGcmEncrypt(createSecretKey(randomBytes(16)), Buffer.alloc(12), Buffer.alloc(1)), (e) => isDomicileError(e, 'ERR_KEY_INVALID'))
  })

  test('Precondition: the nonce is exactly 12 bytes (96 bits).', () => {
    const groups = others.filter((g) => g.keySize === 256 && g.ivSize !== 96)
    assert.ok(groups.length >= 5, 'vector file should contain other IV sizes')
    for (const g of groups) {
      for (const t of g.tests) {
        assert.throws(() => aesGcmEncrypt(hex(t.key), hex(t.iv), hex(t.msg), hex(t.aad)), (e) => isDomicileError(e, 'ERR_INPUT_INVALID'), `tcId ${t.tcId}`)
        assert.throws(() => aesGcmDecrypt(hex(t.key), hex(t.iv), Buffer.concat([hex(t.ct), hex(t.tag)]), hex(t.aad)), (e) => isDomicileError(e, 'ERR_INPUT_INVALID'), `tcId ${t.tcId}`)
      }
    }
  })
})

describe('AES-256-GCM helpers', () => {
  const key = randomBytes(32)

  test('seal/open round-trip with a pooled nonce, and a KeyObject key works the same', () => {
    const aad = Buffer.from('context')
    const sealed = aesGcmSeal(key, Buffer.from('hello'), aad)
    assert.equal(sealed.length, 12 + 5 + 16)
    assert.equal(aesGcmOpen(key, sealed, aad).toString(), 'hello')
    assert.equal(aesGcmOpen(createSecretKey(key), sealed, aad).toString(), 'hello')
  })

  test('two seals of the same plaintext differ (fresh nonces)', () => {
    const a = aesGcmSeal(key, Buffer.from('x'))
    const b = aesGcmSeal(key, Buffer.from('x'))
    assert.notDeepEqual(a, b)
  })

  test('wrong AAD, wrong key, truncated input: the same opaque error', () => {
    const sealed = aesGcmSeal(key, Buffer.from('hello'), Buffer.from('a'))
    const errors: unknown[] = []
    for (const f of [
      () => aesGcmOpen(key, sealed, Buffer.from('b')),
      () => aesGcmOpen(randomBytes(32), sealed, Buffer.from('a')),
      () => aesGcmOpen(key, sealed.subarray(0, 20), Buffer.from('a')),
      () => aesGcmDecrypt(key, sealed.subarray(0, 12), Buffer.alloc(15)),
    ]) {
      try { f(); assert.fail('must throw') } catch (e) { errors.push(e) }
    }
    for (const e of errors) {
      assert.ok(isDecryptFailure(e))
      assert.equal((e as Error).message, (errors[0] as Error).message)
    }
  })
})

test('a missing vector file is an error, not a skip', () => {
  assert.throws(() => loadWycheproof('no_such_vectors.json'), /missing/)
})
