/**
 * The residency linter's value detectors: IBAN (country length + ISO 7064 mod-97-10), e-mail
 * addresses and international phone numbers, alone and inside free text, with exact counts.
 */
import { strict as assert } from 'node:assert'
import { describe, test } from 'node:test'
import { countIbans, ibanChecksumValid, isIban } from '../../../src/lint/iban.js'
import { countEmails, countPhones, personalValueKinds } from '../../../src/lint/personal-values.js'

const VALID_IBANS = [
  'DE89 3704 0044 0532 0130 00', 'GB82 WEST 1234 5698 7654 32', 'FR14 2004 1010 0505 0001 3M02 606',
  'NL91ABNA0417164300', 'BE68 5390 0754 7034', 'CH93 0076 2011 6238 5295 7', 'ES91 2100 0418 4502 0005 1332',
  'IT60 X054 2811 1010 0000 0123 456', 'de89370400440532013000',
]

describe('IBAN detector', () => {
  test('accepts registry-length IBANs whose mod-97 remainder is 1, compact, grouped or lower-case', () => {
    assert.equal(VALID_IBANS.filter(isIban).length, VALID_IBANS.length)
  })

  test('refuses a changed check digit, a changed digit, a wrong length and an unknown country', () => {
    const bad = ['DE88 3704 0044 0532 0130 00', 'DE89 3704 0044 0532 0130 01', 'GB82 WEST 1234 5698 7654 33',
      'DE89 3704 0044 0532 0130 0', 'DE89 3704 0044 0532 0130 000', 'QQ89 3704 0044 0532 0130 00', 'DE89-3704-0044-0532-0130-00']
    assert.equal(bad.filter(isIban).length, 0)
    assert.equal(ibanChecksumValid('GB82WEST12345698765432'), true)
    assert.equal(ibanChecksumValid('GB28WEST12345698765432'), false)
  })

  test('counts IBANs inside text, ending on a word boundary at the country length', () => {
    assert.equal(countIbans('refund to DE89 3704 0044 0532 0130 00, or GB82WEST12345698765432.'), 2)
    assert.equal(countIbans('DE89370400440532013000X'), 0) // runs on past the German length
    assert.equal(countIbans('SKU DE12345 and order NL91 in stock'), 0)
    assert.equal(VALID_IBANS.map((v) => countIbans(`iban: ${v} (primary)`)).reduce((a, b) => a + b, 0), VALID_IBANS.length)
  })
})

describe('e-mail detector', () => {
  test('counts addresses with exact numbers, inside text too', () => {
    assert.equal(countEmails('ada@example.eu'), 1)
    assert.equal(countEmails('write to a.b+c@sub.example.co.uk!'), 1)
    assert.equal(countEmails('two: a@b.io, c@d.io'), 2)
    assert.equal(['not@email', '@x.com', 'x@y.z', 'user at example dot com', 'price@10'].map(countEmails).reduce((a, b) => a + b, 0), 0)
  })
})

describe('phone detector', () => {
  test('counts "+" numbers of 8 to 15 digits with spaces, hyphens and one parenthesised group', () => {
    const phones = ['+44 20 7946 0958', '+1-202-555-0143', '+44 (0)20 7946 0958', '+49 151 12345678', '+4915112345678', '+33 1 23 45 67 89']
    assert.equal(phones.map(countPhones).reduce((a, b) => a + b, 0), phones.length)
    assert.equal(countPhones('call +44 20 7946 0958 or +1-202-555-0143.'), 2)
  })

  test('does not count amounts, short or long digit runs, a leading zero or a number glued to a word', () => {
    const notPhones = ['+12.5%', '+1234567', '2+2=4', 'a+4915112345678', '+1234567890123456', '+0 123 456 789', '4915112345678', '+49  151 1234 5678x']
    assert.deepEqual(notPhones.map(countPhones), notPhones.map(() => 0))
  })
})

describe('personalValueKinds', () => {
  test('names every kind a value contains, once', () => {
    assert.deepEqual(personalValueKinds('Ada, ada@example.eu, +44 20 7946 0958, DE89 3704 0044 0532 0130 00'), ['email', 'iban', 'phone'])
    assert.deepEqual(personalValueKinds('Pro plan, 12 seats, EUR 49/month'), [])
  })
})
