/**
 * `domicile migrate encrypt TABLE.COLUMN --verify`: proves that no plaintext remains. In every
 * region it checks the layout (one bytea column, no shadow: no column can hold plaintext), then
 * reads every row, tenant by tenant in the tenant's own transactions, and opens every non-null
 * value inside the data layer as a sealed value of that tenant, table, column and row (the AAD binds
 * them; the plaintext is compared and dropped, never returned or logged), and checks that the rows
 * opened are all the rows the owner sees (none invisible to its tenant). For a decrypt, it checks
 * the column is plaintext again (one text column, no shadow) and counts its rows.
 */
import type { Placement } from '../regions/placement.js'
import { DomicileError, isDomicileError } from '../errors.js'
import type { Domicile } from '../domicile.js'
import { internalsOf } from '../domicile-internals.js'
import type { MigrationDirection } from '../schema/column-layout.js'
import { q } from '../schema/ddl.js'
import { tenantColumnSql, tenantMatch, tenantParam } from '../schema/tenant-column.js'
import { pkSqlType, readColumnLayout, reached, sourceColumn } from './encrypt-column-ddl.js'
import { resolveColumnTarget } from './encrypt-column.js'
import { silentProgress, type Progress } from './progress.js'
import { tenantIdSql } from './tenant-rows.js'

export interface RegionVerification {
  readonly region: string
  /** The column is in its end state (no shadow, the target form only). */
  readonly layoutOk: boolean
  readonly rows: number
  readonly opened: number
  readonly failed: number
  readonly leftInSourceForm: number
  readonly unaccounted: number
  /** Tenants with a value that did not open (ids only). */
  readonly failedTenants: readonly string[]
}

export interface ColumnVerification {
  readonly ok: boolean
  readonly target: string
  readonly direction: MigrationDirection
  readonly rows: number
  readonly opened: number
  readonly failed: number
  readonly leftInSourceForm: number
  readonly unaccounted: number
  readonly regions: readonly RegionVerification[]
}

const PAGE = 2000

/**
 * @example
 * const v = await verifyColumn(domicile, 'customers.notes', 'encrypt')
 * if (!v.ok) process.exitCode = 1
 */
export async function verifyColumn(d: Domicile, target: string, direction: MigrationDirection, opts: { progress?: Progress } = {}): Promise<ColumnVerification> {
  const { table, column } = resolveColumnTarget(d, target)
  const parts = internalsOf(d)
  const progress = opts.progress ?? silentProgress
  const regions: RegionVerification[] = []
  let done = 0
  for (const where of parts.router.stores) {
    const region = parts.router.label(where)
    const census = await parts.router.withRegionAdmin(where, async (s) => {
      const { layout } = await readColumnLayout(s, table, column)
      const src = sourceColumn(layout, direction)
      const left = src === undefined ? 0 : Number((await s.query<{ n: string }>(`SELECT count(*) AS n FROM ${q(table.name)} WHERE ${q(src)} IS NOT NULL`)).rows[0]!.n)
      const col = direction === 'encrypt' ? layout.sealedColumn : layout.plainColumn
      const tc = tenantColumnSql(table)
      const counts = col === undefined ? [] : (await s.query<{ t: string | null; n: string }>(`SELECT ${tenantIdSql(table)} AS t, count(${q(col)}) AS n FROM ${q(table.name)} GROUP BY ${tc} ORDER BY ${tc}`)).rows
      return { layoutOk: reached(layout, direction), left, counts: counts.map((r) => [r.t, Number(r.n)] as const), sealedColumn: layout.sealedColumn }
    })
    let rows = 0
    let opened = 0
    let failed = 0
    let unaccounted = 0
    const failedTenants: string[] = []
    for (const [tenantId, n] of census.counts) {
      rows += n
      if (direction === 'decrypt' || n === 0) {
        opened += direction === 'decrypt' ? n : 0
        continue
      }
      // Sealed values in rows whose tenant column is NULL (an adopted table may allow it): no tenant can open them.
      if (tenantId === null) {
        unaccounted += n
        continue
      }
      const r = await openAll(d, table.name, column.name, tenantId, where, census.sealedColumn!, (k) => {
        done += k
        progress.update({ state: 'verify', done, unit: 'rows' })
      })
      opened += r.opened
      failed += r.failed
      if (r.failed > 0) failedTenants.push(tenantId)
      // Rows the owner counts but the tenant's own transaction did not see or open. Counted before
      // and after the read: a value the application cleared meanwhile is not a missed row.
      const again = await parts.router.withRegionAdmin(where, (s) =>
        s.query<{ n: string }>(`SELECT count(${q(census.sealedColumn!)}) AS n FROM ${q(table.name)} WHERE ${tenantMatch(table, '$1')}`, [tenantParam(table, tenantId)]))
      const short = Math.max(0, Math.min(n, Number(again.rows[0]!.n)) - r.opened - r.failed)
      // A count that falls short may be the application writing meanwhile (a value cleared ahead of
      // the read, a row added behind it); only rows the owner sees and the tenant cannot are counted.
      if (short > 0) unaccounted += await invisibleRows(d, table.name, tenantId, where, census.sealedColumn!)
    }
    regions.push(Object.freeze({ region, layoutOk: census.layoutOk, rows, opened, failed, leftInSourceForm: census.left, unaccounted, failedTenants }))
  }
  const sum = (f: (r: RegionVerification) => number): number => regions.reduce((a, r) => a + f(r), 0)
  const v = {
    target: `${table.name}.${column.name}`, direction, rows: sum((r) => r.rows), opened: sum((r) => r.opened), failed: sum((r) => r.failed),
    leftInSourceForm: sum((r) => r.leftInSourceForm), unaccounted: sum((r) => r.unaccounted), regions,
  }
  return Object.freeze({ ok: v.failed === 0 && v.leftInSourceForm === 0 && v.unaccounted === 0 && regions.every((r) => r.layoutOk), ...v })
}

/** Opens every sealed value of one tenant's column in its own transactions, page by page. */
async function openAll(d: Domicile, tableName: string, columnName: string, tenantId: string, where: Placement, sealedColumn: string,
  onPage: (n: number) => void): Promise<{ opened: number; failed: number }> {
  const parts = internalsOf(d)
  const table = d.schema.table(tableName)
  const col = table.columns.get(columnName)!
  const tenant = await parts.directory.get(tenantId)
  if (tenant.region !== where.region || tenant.cell !== where.cell) return { opened: 0, failed: 0 } // counted as unaccounted: not in its home region and cell
  let after: string | undefined
  let opened = 0
  let failed = 0
  for (;;) {
    const page = await parts.router.withTenantTransaction(tenantId, where, async (tx) => {
      const fields = parts.fields?.forTransaction(tenant, tx)
      if (!fields) throw new DomicileError('ERR_KEY_NOT_FOUND', `Tenant "${tenantId}" has no key binding: its values of ${tableName}.${columnName} cannot be checked.`)
      const pk = q(table.primaryKey)
      const r = await tx.session.query<{ k: unknown; v: Uint8Array }>(
        `SELECT ${pk} AS k, ${q(sealedColumn)} AS v FROM ${q(table.name)} WHERE ${tenantMatch(table, '$1')} AND ${q(sealedColumn)} IS NOT NULL${after === undefined ? '' : ` AND ${pk} > $3::${pkSqlType(table)}`} ORDER BY ${pk} LIMIT $2`,
        after === undefined ? [tenantParam(table, tenantId), PAGE] : [tenantParam(table, tenantId), PAGE, after])
      let ok = 0
      let bad = 0
      try {
        for (const row of r.rows) {
          try {
            const h = fields.holdKeyFor(row.v)
            if (h instanceof Promise) await h
            // Opens it (AAD: tenant, table, column, row key) and compares with '' inside the data layer.
            fields.matchesHeld(table, col, String(row.k), row.v, '')
            ok++
          } catch (e) {
            if (!isDomicileError(e) || (e.code !== 'ERR_DECRYPTION_FAILED' && e.code !== 'ERR_QUERY_UNSUPPORTED')) throw e
            bad++
          }
        }
      } finally {
        fields.releaseHeldKeys()
      }
      return { n: r.rows.length, ok, bad, last: r.rows.length > 0 ? String(r.rows[r.rows.length - 1]!.k) : undefined }
    })
    opened += page.ok
    failed += page.bad
    onPage(page.n)
    if (page.n < PAGE || page.last === undefined) break
    after = page.last
  }
  return { opened, failed }
}

/**
 * Rows of one tenant (with a value in the sealed column) that the owner sees and the tenant's own
 * transaction does not: the owner lists the keys page by page, the tenant's transaction looks each
 * page up by key (RLS applies; the value may have changed, the row is still its own), and the owner
 * checks that the keys the tenant missed still exist, so a concurrent write is never counted.
 */
async function invisibleRows(d: Domicile, tableName: string, tenantId: string, where: Placement, sealedColumn: string): Promise<number> {
  const parts = internalsOf(d)
  const table = d.schema.table(tableName)
  const pk = q(table.primaryKey)
  const type = pkSqlType(table)
  let after: string | undefined
  let invisible = 0
  for (;;) {
    const keys = (await parts.router.withRegionAdmin(where, (s) => s.query<{ k: unknown }>(
      `SELECT ${pk} AS k FROM ${q(table.name)} WHERE ${tenantMatch(table, '$1')} AND ${q(sealedColumn)} IS NOT NULL${after === undefined ? '' : ` AND ${pk} > $3::${type}`} ORDER BY ${pk} LIMIT $2`,
      after === undefined ? [tenantParam(table, tenantId), PAGE] : [tenantParam(table, tenantId), PAGE, after]))).rows.map((r) => String(r.k))
    if (keys.length === 0) break
    const seen = await parts.router.withTenantTransaction(tenantId, where, async (tx) =>
      new Set((await tx.session.query<{ k: unknown }>(`SELECT ${pk} AS k FROM ${q(table.name)} WHERE ${pk} = ANY($1::${type}[])`, [keys])).rows.map((r) => String(r.k))))
    const missed = keys.filter((k) => !seen.has(k))
    if (missed.length > 0) {
      const still = await parts.router.withRegionAdmin(where, (s) => s.query<{ n: string }>(
        `SELECT count(*) AS n FROM ${q(table.name)} WHERE ${tenantMatch(table, '$1')} AND ${pk} = ANY($2::${type}[])`, [tenantParam(table, tenantId), missed]))
      invisible += Number(still.rows[0]!.n)
    }
    if (keys.length < PAGE) break
    after = keys[keys.length - 1]
  }
  return invisible
}
