/**
 * Before `migrate` attaches to an application's existing tables (`adopted: true`), it checks in
 * every region store that each one is as the schema describes it: the table exists, its tenant
 * column and every declared column exist with the declared type, and its primary key is the declared
 * one. A difference is ERR_SCHEMA_INVALID naming the schema path, raised before anything is written
 * to any store (a wrong description would put row-level security on the wrong column, or read the
 * wrong values). Read-only: catalog queries only.
 *
 * After the attach, sensitive columns that still hold plaintext are reported as pending encryption,
 * with the command that encrypts them online.
 */
import { DomicileError } from '../errors.js'
import type { StoreSession } from '../regions/store-driver.js'
import { LAYOUT_SQL, tableLayout, type CatalogColumn } from './column-layout.js'
import type { ColumnType, Schema, TenantColumnType } from './define-schema.js'
import { q } from './sql-ident.js'

/** SQL types (format_type without typmod) that hold each declared type as it is. */
const ACCEPTED: Readonly<Record<ColumnType | TenantColumnType, readonly string[]>> = {
  text: ['text', 'character varying', 'citext'],
  integer: ['integer'],
  bigint: ['bigint'],
  boolean: ['boolean'],
  numeric: ['numeric'],
  timestamptz: ['timestamp with time zone'],
  jsonb: ['jsonb'],
  uuid: ['uuid'],
  bytea: ['bytea'],
}

/** A sensitive column still in plaintext in one store: `domicile migrate encrypt` seals it online. */
export interface PendingEncryption {
  readonly table: string
  readonly column: string
  readonly command: string
}

function mismatch(path: string, message: string): DomicileError {
  return new DomicileError('ERR_SCHEMA_INVALID', `${path}: ${message} Nothing was changed in any store; fix the schema (or rerun "domicile adopt inspect") and run "domicile migrate" again.`, { path })
}

/**
 * Checks every adopted table of the schema against one store's catalog.
 * Precondition: each adopted table exists in the store as the schema describes it.
 */
export async function checkAdoptedTables(s: StoreSession, schema: Schema, store: string): Promise<void> {
  const adopted = [...schema.tables.values()].filter((t) => t.adopted)
  if (adopted.length === 0) return
  for (const t of adopted) {
    const path = `tables.${t.name}`
    const exists = await s.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [q(t.name)])
    if (!exists.rows[0]?.t) {
      throw mismatch(path, `the adopted table ${t.name} does not exist in ${store}. An adopted table is the application's own: create it there with the application's DDL (its migrations), as in the database it was adopted from (docs/ADOPTING.md).`)
    }
    const cols = new Map((await s.query<CatalogColumn>(LAYOUT_SQL, [q(t.name)])).rows.map((r) => [r.name, r]))
    if (t.tenantColumn !== null) {
      const tc = cols.get(t.tenantColumn.name)
      if (!tc) throw mismatch(`${path}.tenantColumn.name`, `${store} has no column ${t.tenantColumn.name} in ${t.name}.`)
      if (!ACCEPTED[t.tenantColumn.type].includes(tc.type)) throw mismatch(`${path}.tenantColumn.type`, `${t.name}.${t.tenantColumn.name} is ${tc.type} in ${store}, not ${t.tenantColumn.type}.`)
    }
    for (const c of t.columns.values()) {
      const cpath = `${path}.columns.${c.name}`
      const found = cols.get(c.name)
      const shadow = cols.get(`${c.name}__shadow`)
      if (!found) {
        // Only a column Domicile itself renamed away can be missing: the shadow of an encryption that swapped.
        throw mismatch(cpath, `${store} has no column ${c.name} in ${t.name}.`)
      }
      if (c.sensitive) {
        // Sealed (bytea) already, or plaintext text that `migrate encrypt` seals, or mid-migration.
        const ok = found.type === 'bytea' || (c.type === 'text' && ACCEPTED.text.includes(found.type)) || shadow !== undefined
        if (!ok) throw mismatch(cpath, `${t.name}.${c.name} is ${found.type} in ${store}; only a text column can be encrypted in place. Keep it out of the sensitive columns, or convert it to text first.`)
        continue
      }
      if (!ACCEPTED[c.type].includes(found.type)) throw mismatch(`${cpath}.type`, `${t.name}.${c.name} is ${found.type} in ${store}, not ${c.type}.`)
    }
    const pk = await s.query<{ cols: string[] }>(
      `SELECT ARRAY(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY u(n, i) JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.i) AS cols
         FROM pg_constraint k WHERE k.conrelid = to_regclass($1) AND k.contype = 'p'`, [q(t.name)])
    const actual = pk.rows[0]?.cols ?? []
    if ([...actual].sort().join(',') !== [...t.primaryKeyColumns].sort().join(',')) {
      throw mismatch(`${path}.primaryKey`, `the primary key of ${t.name} in ${store} is (${actual.join(', ') || 'none'}), not (${t.primaryKeyColumns.join(', ')}).`)
    }
  }
}

/** Sensitive columns (every table) that still hold plaintext values in this store. */
export async function pendingEncryption(s: StoreSession, schema: Schema): Promise<PendingEncryption[]> {
  const out: PendingEncryption[] = []
  for (const t of schema.tables.values()) {
    if (t.sensitiveColumns.length === 0) continue
    const layout = tableLayout(t, (await s.query<CatalogColumn>(LAYOUT_SQL, [q(t.name)])).rows)
    for (const c of t.sensitiveColumns) {
      const plain = layout.columns.get(c.name)?.plainColumn
      if (plain === undefined || layout.columns.get(c.name)?.write === 'plain') continue
      const any = await s.query(`SELECT 1 FROM ${q(t.name)} WHERE ${q(plain)} IS NOT NULL LIMIT 1`)
      if (any.rows.length > 0) out.push(Object.freeze({ table: t.name, column: c.name, command: `domicile migrate encrypt ${t.name}.${c.name}` }))
    }
  }
  return out
}

