import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHmac, randomBytes } from 'node:crypto'
import fc from 'fast-check'
import { assessIndexLength } from '../../../src/schema/index-length.js'
import { blindIndex, deriveColumnIndexKey, normalizeForIndex } from '../../../src/fields/blind-index.js'
import { isDomicileError } from '../../../src/errors.js'

const root = randomBytes(32)
const email = { tenantId: 'acme', table: 'customers', column: 'email' }
const isInputInvalid = (e: unknown) => isDomicileError(e, 'ERR_INPUT_INVALID')

describe('deriveColumnIndexKey', () => {
  test('is deterministic and 32 bytes', () => {
    const a = deriveColumnIndexKey(root, email)
    assert.equal(a.length, 32)
    assert.deepEqual(deriveColumnIndexKey(root, { ...email }), a)
  })

  test('the same value gives different indexes under another tenant, table, column or root key', () => {
    const opts = { bytes: 16 }
    const base = blindIndex(deriveColumnIndexKey(root, email), 'ada@example.com', opts)
    for (const other of [{ ...email, tenantId: 'globex' }, { ...email, table: 'leads' }, { ...email, column: 'email2' }]) {
      assert.notDeepEqual(blindIndex(deriveColumnIndexKey(root, other), 'ada@example.com', opts), base)
    }
    assert.notDeepEqual(blindIndex(deriveColumnIndexKey(randomBytes(32), email), 'ada@example.com', opts), base)
  })

  test('identifiers are length-prefixed: shifting characters between them changes the key', () => {
    const a = deriveColumnIndexKey(root, { tenantId: 'ab', table: 'c', column: 'd' })
    const b = deriveColumnIndexKey(root, { tenantId: 'a', table: 'bc', column: 'd' })
    assert.notDeepEqual(a, b)
  })

  test('Precondition: the index root key is 32 bytes.', () => {
    assert.throws(() => deriveColumnIndexKey(randomBytes(16), email), (e) => isDomicileError(e, 'ERR_KEY_INVALID'))
  })

  test('Precondition: tenant id, table and column are non-empty strings.', () => {
    assert.throws(() => deriveColumnIndexKey(root, { ...email, column: '' }), isInputInvalid)
  })
})

describe('blindIndex', () => {
  const ck = deriveColumnIndexKey(root, email)

  test('is HMAC-SHA-256(columnKey, 0x01 || text) truncated to the requested length', () => {
    for (const bytes of [4, 8, 16, 32]) {
      const want = createHmac('sha256', ck).update(Buffer.concat([Buffer.of(1), Buffer.from('x@y.z')])).digest().subarray(0, bytes)
      assert.deepEqual(blindIndex(ck, 'x@y.z', { bytes }), want)
    }
  })

  test('equal values give equal indexes; normalisation makes variants equal', () => {
    fc.assert(fc.property(fc.string({ unit: 'grapheme' }), (s) => {
      assert.deepEqual(blindIndex(ck, s, { bytes: 8 }), blindIndex(ck, s, { bytes: 8 }))
    }), { numRuns: 100 })
    const opts = { normalize: ['trim', 'lower', 'nfkc'] as const, bytes: 8 }
    assert.deepEqual(blindIndex(ck, '  ADA@Example.com\t', opts), blindIndex(ck, 'ada@example.com', opts))
    assert.deepEqual(blindIndex(ck, 'ａｄａ', opts), blindIndex(ck, 'ada', opts))
    assert.notDeepEqual(blindIndex(ck, 'ADA', { bytes: 8 }), blindIndex(ck, 'ada', { bytes: 8 }))
  })

  test('text and bytes with the same bytes give different indexes (type tag)', () => {
    assert.notDeepEqual(blindIndex(ck, 'abc', { bytes: 16 }), blindIndex(ck, Buffer.from('abc'), { bytes: 16 }))
  })

  test('Precondition: the index length is an integer from 4 to 32 bytes.', () => {
    for (const bytes of [3, 33, 0, 4.5, Number.NaN]) assert.throws(() => blindIndex(ck, 'v', { bytes }), isInputInvalid)
  })

  test('Precondition: the column key is 32 bytes.', () => {
    assert.throws(() => blindIndex(randomBytes(31), 'v', { bytes: 8 }), (e) => isDomicileError(e, 'ERR_KEY_INVALID'))
  })

  test('Precondition: normalisation applies to text only.', () => {
    assert.throws(() => blindIndex(ck, Buffer.from('v'), { bytes: 8, normalize: ['lower'] }), isInputInvalid)
  })

  test('Precondition: text is well-formed UTF-16 (no lone surrogates), so distinct texts never share bytes.', () => {
    assert.throws(() => blindIndex(ck, '\uD800', { bytes: 8 }), isInputInvalid)
  })
})

describe('normalizeForIndex', () => {
  test('applies nfkc, then lower, then trim, whatever the array order', () => {
    assert.equal(normalizeForIndex('  Ａda@Example.COM ', ['trim', 'lower', 'nfkc']), 'ada@example.com')
    assert.equal(normalizeForIndex('  Ａda ', ['nfkc', 'trim', 'lower']), normalizeForIndex('  Ａda ', ['lower', 'trim', 'nfkc']))
    assert.equal(normalizeForIndex(' A ', []), ' A ')
    assert.equal(normalizeForIndex('\u3000x\u3000', ['trim']), 'x')
    assert.equal(normalizeForIndex('ﬁ', ['nfkc']), 'fi')
  })

  test('Precondition: every normalisation is one of trim, lower, nfkc.', () => {
    assert.throws(() => normalizeForIndex('x', ['upper' as 'lower']), isInputInvalid)
  })
})

describe('assessIndexLength', () => {
  test('no warnings for a well-sized index', () => {
    assert.deepEqual(assessIndexLength({ bytes: 4, expectedRows: 1_000_000 }), [])
    assert.deepEqual(assessIndexLength({ bytes: 5, expectedRows: 2 ** 34 }), [])
  })

  test('BLIND_INDEX_TOO_SHORT when false positives per lookup exceed 1', () => {
    const w = assessIndexLength({ bytes: 4, expectedRows: 2 ** 34 })
    assert.equal(w.length, 1)
    assert.equal(w[0]!.code, 'BLIND_INDEX_TOO_SHORT')
    assert.equal(w[0]!.falsePositivesPerLookup, 4)
    assert.equal(w[0]!.suggestedBytes, 5)
    assert.match(w[0]!.message, /5 bytes/)
  })

  test('BLIND_INDEX_EFFECTIVELY_UNIQUE when the index is injective on a small table and a shorter length would do', () => {
    const w = assessIndexLength({ bytes: 16, expectedRows: 10_000 })
    assert.deepEqual(w.map((x) => x.code), ['BLIND_INDEX_EFFECTIVELY_UNIQUE'])
    assert.equal(w[0]!.suggestedBytes, 4)
    assert.deepEqual(assessIndexLength({ bytes: 8, expectedRows: 2 ** 40 }), [], 'above the birthday bound: not unique')
    assert.deepEqual(assessIndexLength({ bytes: 4, expectedRows: 10 }), [], 'nothing shorter is allowed')
    assert.equal(assessIndexLength({ bytes: 6, expectedRows: 10 })[0]!.code, 'BLIND_INDEX_EFFECTIVELY_UNIQUE')
  })

  test('warnings are typed objects with a code and a message', () => {
    fc.assert(fc.property(fc.integer({ min: 4, max: 32 }), fc.double({ min: 0, max: 1e30, noNaN: true }), (bytes, expectedRows) => {
      for (const w of assessIndexLength({ bytes, expectedRows })) {
        assert.ok(['BLIND_INDEX_TOO_SHORT', 'BLIND_INDEX_EFFECTIVELY_UNIQUE'].includes(w.code))
        assert.equal(typeof w.message, 'string')
        assert.ok(w.suggestedBytes >= 4 && w.suggestedBytes <= 32)
      }
    }))
  })

  test('Precondition: expectedRows is a non-negative finite number.', () => {
    for (const expectedRows of [-1, Infinity, Number.NaN]) assert.throws(() => assessIndexLength({ bytes: 8, expectedRows }), isInputInvalid)
    assert.throws(() => assessIndexLength({ bytes: 2, expectedRows: 10 }), isInputInvalid)
  })
})
