/**
 * A bounded sample of an existing table's text-like columns (text, varchar, char, citext, json,
 * jsonb, and domains over them), counted by the personal-value detectors: e-mail addresses, phone
 * numbers and IBANs (src/lint/) and national ids (./national-ids.ts). Only counts leave this
 * module: no sampled value is returned, logged or put in an error.
 *
 * Up to `sampleRows` rows per table, in a READ ONLY transaction (rolled back). A table the counts
 * say is larger than ten samples is read with TABLESAMPLE BERNOULLI (rows spread over the table,
 * not just its first pages); a smaller one with LIMIT.
 *
 * @example
 * ```ts
 * const samples = await driver.withSession((s) => sampleTable(s, 'public', table, 100), { role: 'owner' })
 * samples.get('email') // { sampled: 100, matches: { email: 97, phone: 0, iban: 0, 'national-id': 0 } }
 * ```
 */
import { countIbans } from '../lint/iban.js'
import { countEmails, countPhones } from '../lint/personal-values.js'
import type { StoreSession } from '../regions/store-driver.js'
import { q } from '../schema/ddl.js'
import type { CatalogColumn, CatalogTable } from './catalog-reader.js'
import { countNationalIds } from './national-ids.js'

export type ValueKind = 'email' | 'phone' | 'iban' | 'national-id'

export const VALUE_KINDS: readonly ValueKind[] = ['email', 'phone', 'iban', 'national-id']

export interface ColumnSample {
  /** Non-null values sampled. */
  readonly sampled: number
  /** Sampled values containing at least one value of the kind. */
  readonly matches: Readonly<Record<ValueKind, number>>
}

const TEXT_LIKE = new Set(['text', 'varchar', 'bpchar', 'citext', 'json', 'jsonb'])

/** Whether the sample reads this column. */
export function isSampled(c: CatalogColumn): boolean {
  return TEXT_LIKE.has(c.baseType)
}

/** Counts personal-looking values in one text. */
export function valueKinds(text: string): ValueKind[] {
  const kinds: ValueKind[] = []
  if (countEmails(text) > 0) kinds.push('email')
  if (countPhones(text) > 0) kinds.push('phone')
  if (countIbans(text) > 0) kinds.push('iban')
  if (countNationalIds(text) > 0) kinds.push('national-id')
  return kinds
}

/** Samples one table's text-like columns. The map is keyed by column name (sampled columns only). */
export async function sampleTable(s: StoreSession, schema: string, table: CatalogTable, sampleRows: number): Promise<Map<string, ColumnSample>> {
  const cols = table.columns.filter(isSampled).map((c) => c.name)
  const out = new Map<string, ColumnSample>()
  if (cols.length === 0 || table.rows === 0 || sampleRows <= 0) return out
  const sample = table.rows > sampleRows * 10 && !table.partitioned
    ? ` TABLESAMPLE BERNOULLI (${Math.min(100, (200 * sampleRows) / table.rows).toFixed(6)})`
    : ''
  const select = cols.map((c, i) => `${q(c)}::text AS c${i}`).join(', ')
  await s.query('BEGIN READ ONLY')
  try {
    const r = await s.query<Record<string, string | null>>(`SELECT ${select} FROM ${q(schema)}.${q(table.name)}${sample} LIMIT ${Math.floor(sampleRows)}`)
    cols.forEach((name, i) => {
      const matches: Record<ValueKind, number> = { email: 0, phone: 0, iban: 0, 'national-id': 0 }
      let sampled = 0
      for (const row of r.rows) {
        const v = row[`c${i}`]
        if (v === null || v === undefined) continue
        sampled++
        for (const k of valueKinds(v)) matches[k]++
      }
      out.set(name, { sampled, matches })
    })
    r.rows.length = 0
    return out
  } finally {
    await s.query('ROLLBACK').catch(() => s.discard())
  }
}
