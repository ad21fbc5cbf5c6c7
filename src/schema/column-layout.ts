/**
 * Where a sensitive column's values physically live in one region store, and how the data layer
 * writes them. Normally a sensitive column is one `bytea` column of sealed values. While an
 * encrypt-in-place migration (src/ops/encrypt-column.ts) runs, a column can hold both forms:
 *
 *   main column `c` (the original, `text` or `bytea`) + shadow column `c__shadow` of the other type,
 *   and a direction marker (the shadow's column comment): 'domicile:encrypt' or 'domicile:decrypt'.
 *
 * Each row holds its value in exactly one of the two (the other is NULL). Reads accept either form;
 * writes go to the bytea column sealed (encrypt) or to the text column in plaintext (decrypt, the
 * rollback); a searchable column's blind index is written with every sealed value. The final swap
 * drops the column of the other form and, when the kept one is the shadow, renames it to `c`.
 *
 * A `text` sensitive column with no shadow is plaintext the migration has not started on: readable,
 * never written (ERR_NOT_MIGRATED), so no plaintext is written into a column declared sensitive
 * outside a migration.
 */
import type { ResolvedColumn, ResolvedTable } from './define-schema.js'
import { SHADOW_SUFFIX } from './define-schema.js'

export { SHADOW_SUFFIX }

export type WriteForm = 'sealed' | 'plain' | 'refuse'
export type MigrationDirection = 'encrypt' | 'decrypt'

export const DIRECTION_MARK: Readonly<Record<MigrationDirection, string>> = Object.freeze({ encrypt: 'domicile:encrypt', decrypt: 'domicile:decrypt' })

/** One sensitive column's physical layout. */
export interface ColumnLayout {
  /** The bytea column of sealed values, if the column has one. */
  readonly sealedColumn?: string
  /** The text column of values not (or no longer) sealed, if the column has one. */
  readonly plainColumn?: string
  /** How a write stores a value. */
  readonly write: WriteForm
  /** Whether the blind-index column exists (searchable columns). */
  readonly hasIndex: boolean
  /** A migration's shadow column exists. */
  readonly migrating: boolean
}

/** A table's sensitive-column layouts; `key` identifies it for statement caches ('' = all sealed). */
export interface TableLayout {
  readonly key: string
  readonly columns: ReadonlyMap<string, ColumnLayout>
}

/** One row of `LAYOUT_SQL`. */
export interface CatalogColumn {
  readonly name: string
  readonly type: string
  readonly note: string | null
}

/** The table's live columns, their SQL types and comments (readable by the data plane: pg_catalog). */
export const LAYOUT_SQL = `SELECT a.attname::text AS name, format_type(a.atttypid, NULL) AS type, col_description(a.attrelid, a.attnum) AS note
  FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`

export const shadowName = (column: string): string => `${column}${SHADOW_SUFFIX}`

const SEALED_ONLY = (hasIndex: boolean): ColumnLayout => Object.freeze({ sealedColumn: undefined, plainColumn: undefined, write: 'sealed', hasIndex, migrating: false })

/** The layout of one sensitive column from the catalog rows of its table. */
export function columnLayout(col: ResolvedColumn, catalog: ReadonlyMap<string, CatalogColumn>): ColumnLayout {
  const main = catalog.get(col.name)
  const shadow = catalog.get(shadowName(col.name))
  const hasIndex = col.indexColumn !== undefined && catalog.has(col.indexColumn)
  // No table or no column yet (not migrated): the normal layout; the statement reports what is missing.
  if (!main) return Object.freeze({ ...SEALED_ONLY(hasIndex), sealedColumn: col.name })
  const mainSealed = main.type === 'bytea'
  if (!shadow) {
    return Object.freeze(mainSealed
      ? { sealedColumn: col.name, write: 'sealed' as const, hasIndex, migrating: false }
      : { plainColumn: col.name, write: 'refuse' as const, hasIndex, migrating: false })
  }
  const direction: MigrationDirection = shadow.note === DIRECTION_MARK.decrypt ? 'decrypt' : 'encrypt'
  const write: WriteForm = direction === 'decrypt' ? 'plain' : 'sealed'
  return Object.freeze(mainSealed
    ? { sealedColumn: col.name, plainColumn: shadow.name, write, hasIndex, migrating: true }
    : { sealedColumn: shadow.name, plainColumn: col.name, write, hasIndex, migrating: true })
}

/** The layout of a table's sensitive columns from its catalog rows. */
export function tableLayout(t: ResolvedTable, rows: readonly CatalogColumn[]): TableLayout {
  const catalog = new Map(rows.map((r) => [r.name, r]))
  const columns = new Map<string, ColumnLayout>()
  const parts: string[] = []
  for (const col of t.sensitiveColumns) {
    const l = columnLayout(col, catalog)
    columns.set(col.name, l)
    if (l.plainColumn !== undefined || l.sealedColumn !== col.name || !l.hasIndex && col.indexColumn) {
      parts.push(`${col.name}:${l.sealedColumn ?? '-'}:${l.plainColumn ?? '-'}:${l.write}:${l.hasIndex ? 1 : 0}`)
    }
  }
  return Object.freeze({ key: parts.join('|'), columns })
}

/** The layout of a table whose store was not read: every sensitive column sealed in place. */
export function defaultLayout(t: ResolvedTable): TableLayout {
  const columns = new Map<string, ColumnLayout>()
  for (const col of t.sensitiveColumns) columns.set(col.name, Object.freeze({ ...SEALED_ONLY(col.indexColumn !== undefined), sealedColumn: col.name }))
  return Object.freeze({ key: '', columns })
}
