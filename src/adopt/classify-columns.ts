/**
 * Per-column judgements of `domicile adopt inspect`: which schema-model type an existing column
 * maps to (or why it stays out of the model), and whether it looks personal, with the evidence in
 * words ("name looks like an email column", "47 of 50 sampled values look like emails").
 *
 * Names are matched word by word (src/lint/personal-names.ts). A column called just `name` counts
 * only on a table that looks like it holds people (`contacts`, `users`, ...): `companies.name`,
 * `campaigns.name` and `plans.name` name things, not persons.
 *
 * Values: in a tenant table a kind counts when at least 10% of the sampled non-null values (and at
 * least one) contain it; in a global table (copied to every region) a single one counts.
 *
 * @example
 * ```ts
 * modelType({ baseType: 'int8', typeKind: 'b' } as CatalogColumn) // 'bigint'
 * suggestionEvidence(columnFindings('contacts', 'email', { sampled: 50, matches: { email: 47, phone: 0, iban: 0, 'national-id': 0 } }), 'tenant')
 * // ['name looks like an email column', '47 of 50 sampled values look like emails']
 * ```
 */
import { identifierWords, personalNameCategory, type PersonalNameCategory } from '../lint/personal-names.js'
import type { ColumnType, TenantColumnType } from '../schema/define-schema.js'
import type { CatalogColumn } from './catalog-reader.js'
import { VALUE_KINDS, type ColumnSample, type ValueKind } from './sample-values.js'

const MODEL_TYPES: Readonly<Record<string, ColumnType>> = {
  text: 'text', varchar: 'text', citext: 'text',
  int4: 'integer', int8: 'bigint', bool: 'boolean', numeric: 'numeric', timestamptz: 'timestamptz',
  jsonb: 'jsonb', uuid: 'uuid', bytea: 'bytea',
}

const TENANT_TYPES: Readonly<Record<string, TenantColumnType>> = { text: 'text', varchar: 'text', citext: 'text', int4: 'integer', int8: 'bigint', uuid: 'uuid' }

/** The schema-model type of an existing column, or undefined when the model has none for it. */
export function modelType(c: Pick<CatalogColumn, 'baseType' | 'typeKind'>): ColumnType | undefined {
  return c.typeKind === 'b' ? MODEL_TYPES[c.baseType] : undefined
}

/** The tenant-column type of an existing column (text, integer, bigint, uuid), or undefined. */
export function tenantColumnType(c: Pick<CatalogColumn, 'baseType' | 'typeKind'>): TenantColumnType | undefined {
  return c.typeKind === 'b' ? TENANT_TYPES[c.baseType] : undefined
}

/** Words of table names that say the rows are people. */
const PERSON_TABLE_WORDS = new Set([
  'contact', 'contacts', 'customer', 'customers', 'user', 'users', 'person', 'persons', 'people', 'member', 'members',
  'employee', 'employees', 'patient', 'patients', 'client', 'clients', 'lead', 'leads', 'subscriber', 'subscribers',
  'student', 'students', 'staff', 'guest', 'guests', 'applicant', 'applicants', 'candidate', 'candidates',
  'recipient', 'recipients', 'signup', 'signups', 'profile', 'profiles', 'author', 'authors', 'owner', 'owners',
])

export interface ValueFinding {
  readonly kind: ValueKind
  readonly matched: number
  readonly sampled: number
}

export interface ColumnFindings {
  /** The personal category the name looks like, null if none. */
  readonly nameCategory: PersonalNameCategory | null
  /** The name is just `name` on a table that does not look like people: not counted. */
  readonly genericName: boolean
  /** Every kind of personal-looking value found in the sample (matched > 0). */
  readonly values: readonly ValueFinding[]
}

/** What a column's name and sampled values say about it. */
export function columnFindings(table: string, column: string, sample: ColumnSample | undefined): ColumnFindings {
  const nameCategory = personalNameCategory(column) ?? null
  const words = identifierWords(column)
  const generic = nameCategory === 'name' && words.length === 1 && (words[0] === 'name' || words[0] === 'names')
    && !identifierWords(table).some((w) => PERSON_TABLE_WORDS.has(w))
  const values = sample === undefined ? [] : VALUE_KINDS.filter((k) => sample.matches[k] > 0).map((kind) => ({ kind, matched: sample.matches[kind], sampled: sample.sampled }))
  return { nameCategory, genericName: generic, values }
}

const NAME_WORDS: Readonly<Record<PersonalNameCategory, string>> = {
  email: 'an email column',
  name: "a person's name column",
  phone: 'a phone number column',
  address: 'an address column',
  'tax-id': 'a tax id column',
  'bank-account': 'a bank account column',
  'date-of-birth': 'a date of birth column',
  'ip-address': 'an IP address column',
  'government-id': 'a national id column',
  'payment-card': 'a payment card column',
  'special-category': 'a special-category column (health, religion, ...)',
}

const VALUE_WORDS: Readonly<Record<ValueKind, string>> = {
  email: 'emails',
  phone: 'phone numbers',
  iban: 'IBANs',
  'national-id': 'national ids (US SSN, UK NINO)',
}

/**
 * The evidence that a column is personal, in words; empty when there is none. `tenant`: a
 * sensitive-column suggestion (names, and values at 10% of the sample or more); `global`: why a
 * global table looks personal (names, and any value).
 */
export function suggestionEvidence(f: ColumnFindings, scope: 'tenant' | 'global'): string[] {
  const out: string[] = []
  if (f.nameCategory !== null && !f.genericName) out.push(`name looks like ${NAME_WORDS[f.nameCategory]}`)
  for (const v of f.values) {
    const threshold = scope === 'global' ? 1 : Math.max(1, Math.ceil(v.sampled * 0.1))
    if (v.matched >= threshold) out.push(`${v.matched} of ${v.sampled} sampled value${v.sampled === 1 ? '' : 's'} look${v.matched === 1 ? 's' : ''} like ${VALUE_WORDS[v.kind]}`)
  }
  return out
}
