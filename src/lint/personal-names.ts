/**
 * Which column names look personal, for the residency linter (docs/LINT.md).
 *
 * A name is split into its word parts (snake_case, kebab-case, camelCase, digits) and matched word
 * by word, never as a substring: `plan_name` and `user_name` match (word "name"), `filename`,
 * `hostname` and `timezone` do not. Single words that are personal compounds (`username`,
 * `firstname`, `birthdate`, ...) are listed as words of their own. Some terms only count as a
 * phrase (`tax` + `id`, `vat` + `number`, `account` + `number`), so `tax_rate` or `vat_rate` in a
 * price list is not flagged. False positives (`plans.name`, a product's name) are waived in the
 * schema with `residency: { notPersonal: 'reason' }`.
 */

export type PersonalNameCategory =
  | 'email' | 'name' | 'phone' | 'address' | 'tax-id' | 'bank-account' | 'date-of-birth' | 'ip-address'
  | 'government-id' | 'payment-card' | 'special-category'

/** Each phrase is a sequence of word parts that must appear consecutively in the name. */
const PHRASES: ReadonlyArray<readonly [PersonalNameCategory, readonly string[]]> = [
  ...words('email', ['email', 'mail', 'emails']),
  ...words('name', ['name', 'names', 'firstname', 'lastname', 'fullname', 'surname', 'forename', 'givenname', 'middlename', 'maidenname', 'familyname', 'username', 'displayname', 'nickname']),
  ...words('phone', ['phone', 'phones', 'telephone', 'tel', 'mobile', 'cellphone', 'msisdn', 'fax', 'phonenumber']),
  ...words('address', ['address', 'addresses', 'addr', 'street', 'city', 'zip', 'zipcode', 'postcode', 'postal', 'postalcode']),
  ...words('date-of-birth', ['dob', 'birthday', 'birthdate', 'birth']),
  ...words('ip-address', ['ip', 'ipaddress', 'ipv4', 'ipv6']),
  ['ip-address', ['ip', 'address']], ['ip-address', ['ip', 'addr']], ['email', ['email', 'address']], ['email', ['mail', 'address']],
  ...words('bank-account', ['iban', 'bic', 'accountnumber', 'routingnumber']),
  ['bank-account', ['account', 'number']], ['bank-account', ['account', 'no']], ['bank-account', ['bank', 'account']],
  ['bank-account', ['routing', 'number']], ['bank-account', ['sort', 'code']],
  ...words('tax-id', ['taxid', 'tin', 'vatin', 'ssn']),
  ['tax-id', ['tax', 'id']], ['tax-id', ['tax', 'number']], ['tax-id', ['tax', 'no']], ['tax-id', ['tax', 'code']],
  ['tax-id', ['vat', 'id']], ['tax-id', ['vat', 'number']], ['tax-id', ['vat', 'no']], ['tax-id', ['vat', 'code']],
  ['tax-id', ['social', 'security']],
  ...words('government-id', ['passport', 'nin', 'nino']),
  ['government-id', ['national', 'id']], ['government-id', ['id', 'card']], ['government-id', ['driver', 'license']],
  ['government-id', ['drivers', 'license']], ['government-id', ['driving', 'licence']], ['government-id', ['driver', 'licence']],
  ...words('payment-card', ['pan', 'cvv', 'cvc', 'creditcard', 'cardnumber']),
  ['payment-card', ['card', 'number']], ['payment-card', ['credit', 'card']],
  ...words('special-category', ['gender', 'sex', 'ethnicity', 'religion', 'diagnosis']),
]

function words(category: PersonalNameCategory, list: readonly string[]): Array<readonly [PersonalNameCategory, readonly string[]]> {
  return list.map((w) => [category, [w]] as const)
}

/** The word parts of an identifier, lower-cased: `dateOfBirth` → date, of, birth; `clientIP_v4` → client, ip, v, 4. */
export function identifierWords(name: string): string[] {
  return (name.match(/[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+/g) ?? []).map((w) => w.toLowerCase())
}

/** The personal category a column name looks like (the longest matching phrase wins: `ip_address` is an IP address), or undefined. */
export function personalNameCategory(name: string): PersonalNameCategory | undefined {
  const parts = identifierWords(name)
  let best: { category: PersonalNameCategory; length: number } | undefined
  for (const [category, phrase] of PHRASES) {
    if (best !== undefined && phrase.length <= best.length) continue
    for (let i = 0; i + phrase.length <= parts.length; i++) {
      if (phrase.every((w, j) => parts[i + j] === w)) {
        best = { category, length: phrase.length }
        break
      }
    }
  }
  return best?.category
}
