/**
 * Which column names look personal: whole word parts of snake_case and camelCase names, personal
 * compounds as words of their own, and phrases (tax + id) where a single word would be too broad.
 */
import { strict as assert } from 'node:assert'
import { describe, test } from 'node:test'
import { identifierWords, personalNameCategory } from '../../../src/lint/personal-names.js'

describe('personal column names', () => {
  test('splits snake_case, kebab-case and camelCase names into words', () => {
    assert.deepEqual(identifierWords('date_of_birth'), ['date', 'of', 'birth'])
    assert.deepEqual(identifierWords('dateOfBirth'), ['date', 'of', 'birth'])
    assert.deepEqual(identifierWords('clientIPAddress'), ['client', 'ip', 'address'])
    assert.deepEqual(identifierWords('e-mail'), ['e', 'mail'])
  })

  test('flags personal names by category', () => {
    const expected: Record<string, string> = {
      email: 'email', e_mail: 'email', contactEmail: 'email', name: 'name', first_name: 'name', lastName: 'name',
      full_name: 'name', username: 'name', plan_name: 'name', phone: 'phone', mobile: 'phone', tel: 'phone',
      address: 'address', street: 'address', city: 'address', zip: 'address', postcode: 'address', postal_code: 'address',
      tax_id: 'tax-id', vat_number: 'tax-id', ssn: 'tax-id', national_id: 'government-id', passport_no: 'government-id',
      iban: 'bank-account', bic: 'bank-account', account_number: 'bank-account', dob: 'date-of-birth',
      date_of_birth: 'date-of-birth', birthday: 'date-of-birth', ip: 'ip-address', ip_address: 'ip-address', clientIP: 'ip-address',
      email_address: 'email', home_address: 'address',
    }
    const got = Object.fromEntries(Object.keys(expected).map((n) => [n, personalNameCategory(n)]))
    assert.deepEqual(got, expected)
  })

  test('matches word parts, not substrings, and phrases only as phrases', () => {
    const clean = ['id', 'filename', 'hostname', 'timezone', 'price_cents', 'tax_rate', 'vat_rate', 'account_type',
      'shipping_cost', 'description', 'zipped', 'citywide', 'ipsum', 'feature_flag', 'country', 'currency', 'telemetry']
    assert.deepEqual(clean.filter((n) => personalNameCategory(n) !== undefined), [])
  })
})
