import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { encodeLengthPrefixed } from '../../../src/crypto/length-prefix.js'

describe('length-prefixed encoding', () => {
  test('known encoding: uint32 BE length then UTF-8 bytes', () => {
    assert.equal(encodeLengthPrefixed(['ab', Uint8Array.of(0xff), '', 'é']).toString('hex'),
      '00000002' + '6162' + '00000001' + 'ff' + '00000000' + '00000002' + 'c3a9')
  })

  test('is injective: different part lists never encode the same', () => {
    fc.assert(fc.property(fc.array(fc.string()), fc.array(fc.string()), (a, b) => {
      fc.pre(JSON.stringify(a) !== JSON.stringify(b))
      assert.notDeepEqual(encodeLengthPrefixed(a), encodeLengthPrefixed(b))
    }))
    assert.notDeepEqual(encodeLengthPrefixed(['ab', 'c']), encodeLengthPrefixed(['a', 'bc']))
  })

  test('each part is its 4-byte length then its bytes, in order', () => {
    fc.assert(fc.property(fc.array(fc.oneof(fc.string({ unit: 'grapheme' }), fc.uint8Array())), (parts) => {
      const out = encodeLengthPrefixed(parts)
      let o = 0
      for (const p of parts) {
        const bytes = typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p)
        assert.equal(out.readUInt32BE(o), bytes.length)
        assert.deepEqual(out.subarray(o + 4, o + 4 + bytes.length), bytes)
        o += 4 + bytes.length
      }
      assert.equal(o, out.length)
    }))
  })
})
