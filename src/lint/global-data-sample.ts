/**
 * The residency linter's look at live data: a bounded sample of every global table in every store
 * that holds a copy (the control plane's authoritative copy and each region's replica), counted by
 * the personal-value detectors (src/lint/personal-values.ts). Only counts leave this module: no
 * sampled value is returned, logged or put in an error.
 *
 * Sampling: up to `sampleRows` rows per table per store, read in a READ ONLY transaction on the
 * store's owner session (global tables are not readable by the data plane in the control plane).
 * A table the statistics say is larger than ten samples is read with TABLESAMPLE BERNOULLI (rows
 * spread over the table, not just its first pages); a smaller or never-analysed one with LIMIT.
 * Every text-like column the store has is sampled (text, varchar, char, json, jsonb, citext and
 * arrays of them), including columns the schema does not declare.
 */
import { isDomicileError } from '../errors.js'
import type { StoreSession } from '../regions/store-driver.js'
import { q } from '../schema/ddl.js'
import type { ResolvedTable } from '../schema/define-schema.js'
import { countIbans } from './iban.js'
import { countEmails, countPhones, type PersonalValueKind } from './personal-values.js'

/** One store holding copies of the global tables, and how to open a session on it. */
export interface LintStore {
  /** `control-plane` or `region:<name>`. */
  readonly name: string
  withSession<T>(fn: (s: StoreSession) => Promise<T>): Promise<T>
}

export interface ColumnSample {
  readonly column: string
  /** Non-null values sampled. */
  readonly sampled: number
  /** Sampled values containing at least one value of the kind. */
  readonly matches: Readonly<Record<PersonalValueKind, number>>
}

export interface TableSample {
  readonly table: string
  readonly store: string
  /** false: the table does not exist in this store (not migrated). */
  readonly present: boolean
  /** Rows read. */
  readonly rows: number
  readonly columns: readonly ColumnSample[]
}

const TEXT_LIKE = /^(text|character varying|character|json|jsonb|citext)(\(\d+\))?(\[\])?$/

/** Samples one global table in one store. Throws what the store throws (the caller reports it). */
export async function sampleGlobalTable(store: LintStore, table: ResolvedTable, sampleRows: number): Promise<TableSample> {
  return store.withSession(async (s) => {
    await s.query('BEGIN READ ONLY')
    try {
      const meta = await s.query<{ attname: string; type: string; reltuples: number | string }>(
        `SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type, c.reltuples::float8 AS reltuples
           FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
          WHERE c.oid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
          ORDER BY a.attnum`, [q(table.name)])
      if (meta.rows.length === 0) return { table: table.name, store: store.name, present: false, rows: 0, columns: [] }
      const textCols = meta.rows.filter((r) => TEXT_LIKE.test(r.type)).map((r) => r.attname)
      if (textCols.length === 0) return { table: table.name, store: store.name, present: true, rows: 0, columns: [] }
      const estimate = Number(meta.rows[0]!.reltuples)
      const sample = estimate > sampleRows * 10
        ? ` TABLESAMPLE BERNOULLI (${Math.min(100, (200 * sampleRows) / estimate).toFixed(6)})`
        : ''
      const select = textCols.map((c, i) => `${q(c)}::text AS c${i}`).join(', ')
      const r = await s.query<Record<string, string | null>>(`SELECT ${select} FROM ${q(table.name)}${sample} LIMIT ${sampleRows}`)
      const columns = textCols.map((column, i) => {
        const matches: Record<PersonalValueKind, number> = { email: 0, iban: 0, phone: 0 }
        let sampled = 0
        for (const row of r.rows) {
          const v = row[`c${i}`]
          if (v === null || v === undefined) continue
          sampled++
          if (countEmails(v) > 0) matches.email++
          if (countIbans(v) > 0) matches.iban++
          if (countPhones(v) > 0) matches.phone++
        }
        return { column, sampled, matches }
      })
      const rows = r.rows.length
      r.rows.length = 0
      return { table: table.name, store: store.name, present: true, rows, columns }
    } finally {
      await s.query('ROLLBACK').catch(() => s.discard())
    }
  })
}

/** A store failure in words safe to print (a code, never a value). */
export function storeFailure(e: unknown): string {
  return isDomicileError(e) ? `${e.code}: ${e.message}` : 'the sample query failed (is the store migrated with this version? run "domicile migrate")'
}
