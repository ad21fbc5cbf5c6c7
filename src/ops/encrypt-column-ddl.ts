/**
 * The catalog steps of an encrypt-in-place migration, on one region store with the owner's login:
 * read the column's layout, prepare it (shadow column, direction marker, the index of rows still to
 * convert), and the final swap in one short transaction. See docs/ENCRYPT-IN-PLACE.md.
 */
import { createHash } from 'node:crypto'
import { DomicileError } from '../errors.js'
import type { StoreSession } from '../regions/store-driver.js'
import { columnLayout, DIRECTION_MARK, LAYOUT_SQL, shadowName, type CatalogColumn, type ColumnLayout, type MigrationDirection } from '../schema/column-layout.js'
import { q } from '../schema/ddl.js'
import type { ResolvedColumn, ResolvedTable } from '../schema/define-schema.js'
import { tenantColumnSql } from '../schema/tenant-column.js'
import { rowKeySqlType } from './tenant-rows.js'

/** How long the swap waits for its lock before giving up (and retrying): the table's queue stalls meanwhile. */
export const SWAP_LOCK_TIMEOUT_MS = 1000

export async function readColumnLayout(s: StoreSession, t: ResolvedTable, col: ResolvedColumn): Promise<{ layout: ColumnLayout; catalog: Map<string, CatalogColumn> }> {
  const r = await s.query<CatalogColumn>(LAYOUT_SQL, [q(t.name)])
  /* Precondition: the table exists in the region (migrate ran). */
  if (r.rows.length === 0) throw new DomicileError('ERR_NOT_MIGRATED', `Table "${t.name}" does not exist in this region. Run "domicile migrate" first.`)
  const catalog = new Map(r.rows.map((c) => [c.name, c]))
  return { layout: columnLayout(col, catalog), catalog }
}

/** Whether the column is in the migration's end state: one column of the target form, no shadow. */
export function reached(layout: ColumnLayout, direction: MigrationDirection): boolean {
  return !layout.migrating && (direction === 'encrypt' ? layout.sealedColumn !== undefined : layout.plainColumn !== undefined)
}

/** The column rows are converted from: the one not of the target form. */
export function sourceColumn(layout: ColumnLayout, direction: MigrationDirection): string | undefined {
  return direction === 'encrypt' ? layout.plainColumn : layout.sealedColumn
}

/** The column rows are converted to. */
export function targetColumn(layout: ColumnLayout, direction: MigrationDirection): string | undefined {
  return direction === 'encrypt' ? layout.sealedColumn : layout.plainColumn
}

/** The partial index of rows still to convert (holds tenant ids and keys, never values). */
export function pendingIndexName(t: ResolvedTable, col: ResolvedColumn, direction: MigrationDirection): string {
  return `domicile_pending_${createHash('sha256').update(`${t.name}.${col.name}.${direction}`).digest('hex').slice(0, 24)}`
}

/** The SQL type of the table's row key (the tenant column's type for a table keyed by it alone). */
export const pkSqlType = (t: ResolvedTable): string => rowKeySqlType(t)

/**
 * Prepares the column for the direction, in one transaction (catalog-only: ADD COLUMN without a
 * default, COMMENT, DROP NOT NULL; the ACCESS EXCLUSIVE lock is held for milliseconds). Returns
 * whether the layout the data layer sees changed (then processes need LAYOUT_TTL_MS to notice).
 */
export async function prepareColumn(s: StoreSession, t: ResolvedTable, col: ResolvedColumn, direction: MigrationDirection): Promise<{ changed: boolean; layout: ColumnLayout }> {
  const table = q(t.name)
  const shadow = shadowName(col.name)
  await s.exec('BEGIN')
  try {
    await s.query(`SET LOCAL lock_timeout = '${SWAP_LOCK_TIMEOUT_MS * 5}ms'`)
    const { layout, catalog } = await readColumnLayout(s, t, col)
    let changed = false
    if (!reached(layout, direction)) {
      if (!layout.migrating) {
        // Encrypt: text column -> add a bytea shadow. Decrypt: bytea column -> add a text shadow.
        await s.query(`ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS ${q(shadow)} ${direction === 'encrypt' ? 'bytea' : 'text'}`)
        changed = true
      }
      if (catalog.get(shadow)?.note !== DIRECTION_MARK[direction]) {
        await s.query(`COMMENT ON COLUMN ${table}.${q(shadow)} IS '${DIRECTION_MARK[direction]}'`)
        changed = true
      }
      // Rows move between the two columns one by one: each must be able to hold NULL.
      await s.query(`ALTER TABLE ${table} ALTER COLUMN ${q(col.name)} DROP NOT NULL`)
      if (col.indexColumn) await s.query(`ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS ${q(col.indexColumn)} bytea`)
    }
    await s.exec('COMMIT')
    return { changed, layout: (await readColumnLayout(s, t, col)).layout }
  } catch (e) {
    await s.exec('ROLLBACK').catch(() => undefined)
    throw e
  }
}

/**
 * The index of rows still to convert, built without blocking writes (CREATE INDEX CONCURRENTLY,
 * outside a transaction). An invalid one left by a killed build is dropped and built again; the
 * other direction's is dropped. Its predicate names the source column, so the swap drops it.
 */
export async function ensurePendingIndex(s: StoreSession, t: ResolvedTable, col: ResolvedColumn, direction: MigrationDirection, source: string): Promise<void> {
  const tc = tenantColumnSql(t)
  if (col.indexColumn) await s.query(`CREATE INDEX IF NOT EXISTS ${q(`${t.name}_${col.indexColumn}`)} ON ${q(t.name)} (${tc}, ${q(col.indexColumn)})`)
  const other = pendingIndexName(t, col, direction === 'encrypt' ? 'decrypt' : 'encrypt')
  await s.query(`DROP INDEX CONCURRENTLY IF EXISTS ${q(other)}`)
  const name = pendingIndexName(t, col, direction)
  const r = await s.query<{ valid: boolean }>(`SELECT i.indisvalid AS valid FROM pg_index i WHERE i.indexrelid = to_regclass($1)`, [q(name)])
  if (r.rows[0]?.valid === true) return
  if (r.rows[0]) await s.query(`DROP INDEX CONCURRENTLY IF EXISTS ${q(name)}`)
  // (tenant column, row key); a table keyed by its tenant column alone has one row per tenant: (tenant column).
  const key = q(t.primaryKey) === tc ? tc : `${tc}, ${q(t.primaryKey)}`
  await s.query(`CREATE INDEX CONCURRENTLY IF NOT EXISTS ${q(name)} ON ${q(t.name)} (${key}) WHERE ${q(source)} IS NOT NULL`)
}

export interface SwapOutcome {
  /** false: rows of the source form remain (written meanwhile): convert again, then retry. */
  readonly swapped: boolean
  /** Time waiting for the lock, and holding it (ms). */
  readonly lockWaitMs: number
  readonly lockHeldMs: number
}

/**
 * The final swap, one transaction: ACCESS EXCLUSIVE on the table (waits at most
 * SWAP_LOCK_TIMEOUT_MS, during which the table's other statements queue behind it), checks that no
 * row holds the source form (through the pending index), drops the source column (its pending index
 * goes with it) and, when the kept column is the shadow, renames it to the column's name.
 * Catalog-only: no row is rewritten.
 */
export async function swapColumn(s: StoreSession, t: ResolvedTable, col: ResolvedColumn, direction: MigrationDirection, onLocked?: () => void): Promise<SwapOutcome> {
  const table = q(t.name)
  await s.exec('BEGIN')
  try {
    await s.query(`SET LOCAL lock_timeout = '${SWAP_LOCK_TIMEOUT_MS}ms'`)
    const t0 = performance.now()
    await s.query(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`)
    const t1 = performance.now()
    const { layout } = await readColumnLayout(s, t, col)
    const source = sourceColumn(layout, direction)
    const target = targetColumn(layout, direction)
    if (reached(layout, direction) || source === undefined || target === undefined) {
      await s.exec('ROLLBACK')
      return { swapped: true, lockWaitMs: t1 - t0, lockHeldMs: performance.now() - t1 }
    }
    const left = await s.query(`SELECT 1 FROM ${table} WHERE ${q(source)} IS NOT NULL LIMIT 1`)
    if (left.rows.length > 0) {
      await s.exec('ROLLBACK')
      return { swapped: false, lockWaitMs: t1 - t0, lockHeldMs: performance.now() - t1 }
    }
    await s.query(`ALTER TABLE ${table} DROP COLUMN ${q(source)}`)
    if (target !== col.name) await s.query(`ALTER TABLE ${table} RENAME COLUMN ${q(target)} TO ${q(col.name)}`)
    await s.query(`COMMENT ON COLUMN ${table}.${q(col.name)} IS NULL`)
    onLocked?.()
    await s.exec('COMMIT')
    return { swapped: true, lockWaitMs: t1 - t0, lockHeldMs: performance.now() - t1 }
  } catch (e) {
    await s.exec('ROLLBACK').catch(() => undefined)
    throw e
  }
}
