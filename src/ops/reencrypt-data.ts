/**
 * The background re-encryption job of a data-key rotation (src/ops/rotate-data-key.ts): moves every
 * sealed value of a tenant that names a data key older than the new one onto the new key, in
 * batches, on the region owner's login.
 *
 * Per batch, one transaction: read the next rows (primary-key order) holding an older key number in
 * a sealed header; open each such value with its key and seal the same plaintext bytes under the
 * new key with the same AAD (tenant, table, column, row key; new key number); count the new
 * encryptions against the new key's nonce budget; write each value back only if the row still holds
 * the very ciphertext that was read (compare-and-set), so a concurrent update is never overwritten.
 * The journal's checkpoint (table, last primary key) follows each batch, so a killed job resumes
 * where it stopped; a batch committed just before the kill is skipped on resume (its values already
 * name the new key). Throttled by a rows-per-second limit.
 */
import { DomicileError } from '../errors.js'
import { readKeyNumber } from '../fields/field-codec.js'
import { resealField } from '../fields/field-encryptor.js'
import type { StoreSession } from '../regions/store-driver.js'
import { q } from '../schema/ddl.js'
import { tenantMatch } from '../schema/tenant-column.js'
import { batchColumn, batchRows } from './batch-params.js'
import { auditOperation, storeOf, crashPoint, keyNumberSql, regionTransaction, u32be, type JobKeys, type RotationParts, type SealedTable, type Throttle } from './rotate-common.js'
import { tenantSweepParam } from './tenant-rows.js'

/** Where a re-encryption pass stands; kept in the journal. */
export interface ReencryptCheckpoint extends Record<string, unknown> {
  region: string
  /** The tenant's cell (absent in checkpoints written before cells: "main"). */
  cell?: string
  newKey: number
  pass: number
  /** The table being worked on (null: from the first one). */
  table: string | null
  /** The last primary key done in that table, as text (null: from its start). */
  after: string | null
  /** Rows written back, values re-sealed, values left because a concurrent update changed them first. */
  rows: number
  values: number
  skipped: number
  /** Values that did not open under the key they name (left as they are). */
  unreadable: number
}

export interface PassContext {
  readonly p: RotationParts
  readonly opId: number
  readonly kind: 'data-key-rotate'
  readonly tenantId: string
  readonly tables: readonly SealedTable[]
  readonly keys: JobKeys
  readonly batchSize: number
  readonly throttle: Throttle
  readonly total: number
}

/** Counts the tenant's stored values that name a data key older than `newKey`, per `table.column`. */
export async function countOlderValues(s: StoreSession, tenantId: string, tables: readonly SealedTable[], newKey: number, exact?: number): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  for (const t of tables) {
    const sums = t.columns.map((c) => `count(*) FILTER (WHERE ${keyNumberSql(c)} ${exact === undefined ? '<' : '='} $2) AS ${q(c.name)}`)
    const r = await s.query<Record<string, string | number>>(`SELECT ${sums.join(', ')} FROM ${q(t.table.name)} WHERE ${tenantMatch(t.table, '$1')}`, [tenantSweepParam(t.table, tenantId), u32be(exact ?? newKey)])
    for (const c of t.columns) out.set(`${t.table.name}.${c.name}`, Number(r.rows[0]![c.name]))
  }
  return out
}

/** Runs one pass from the checkpoint to the end of the last table; updates `cp` as it goes. */
export async function reencryptPass(ctx: PassContext, cp: ReencryptCheckpoint): Promise<void> {
  const { p, tenantId, tables } = ctx
  const newHeader = u32be(cp.newKey)
  let lastAudit = Date.now()
  let batchNo = 0
  ctx.throttle.begin()
  const startAt = cp.table === null ? 0 : Math.max(0, tables.findIndex((t) => t.table.name === cp.table))
  for (let ti = startAt; ti < tables.length; ti++) {
    const t = tables[ti]!
    if (cp.table !== t.table.name) {
      cp.table = t.table.name
      cp.after = null
    }
    const pk = t.table.primaryKey
    const tenant = tenantSweepParam(t.table, tenantId)
    const older = t.columns.map((c) => `${keyNumberSql(c)} < $2`).join(' OR ')
    const cols = [pk, ...t.columns.map((c) => c.name)].map(q).join(', ')
    for (;;) {
      const params: unknown[] = [tenant, newHeader]
      let after = ''
      if (cp.after !== null) {
        params.push(cp.after)
        after = ` AND ${q(pk)} > $3${t.pkCast}`
      }
      params.push(ctx.batchSize)
      const sql = `SELECT ${cols} FROM ${q(t.table.name)} WHERE ${tenantMatch(t.table, '$1')}${after} AND (${older}) ORDER BY ${q(pk)} LIMIT $${params.length}`
      const stats = await regionTransaction(p, storeOf(cp), async (s) => {
        const rows = (await s.query<Record<string, unknown>>(sql, params)).rows
        if (rows.length === 0) return undefined
        const newKey = await ctx.keys.get(s, cp.newKey)
        const updates = t.columns.map(() => [] as Array<[unknown, Uint8Array, Uint8Array]>)
        let unreadable = 0
        for (const row of rows) {
          const rowKey = String(row[pk])
          for (let ci = 0; ci < t.columns.length; ci++) {
            const col = t.columns[ci]!
            const v = row[col.name]
            if (!(v instanceof Uint8Array)) continue
            let n: number
            try {
              n = readKeyNumber(v)
            } catch {
              unreadable++
              continue
            }
            if (n >= cp.newKey) continue
            try {
              const oldKey = await ctx.keys.get(s, n)
              updates[ci]!.push([row[pk], v, resealField(oldKey, newKey, cp.newKey, { tenantId, table: t.table.name, column: col.name, rowKey }, v)])
            } catch (e) {
              if (!(e instanceof DomicileError) || e.code !== 'ERR_DECRYPTION_FAILED') throw e
              unreadable++
            }
          }
        }
        const sealed = updates.reduce((a, u) => a + u.length, 0)
        if (sealed > 0) {
          // The new encryptions count against the new key's nonce budget, in this transaction.
          const budget = await s.query('UPDATE domicile_data_keys SET encryptions_reserved = encryptions_reserved + $3 WHERE tenant_id = $1 AND purpose = \'data\' AND key_number = $2 AND encryptions_reserved + $3 <= max_encryptions',
            [tenantId, cp.newKey, sealed])
          if (budget.rowCount !== 1) throw new DomicileError('ERR_KEY_USAGE_EXHAUSTED', `Data key #${cp.newKey} of tenant "${tenantId}" has no encryption budget left for the re-encryption. Rotate the data key again and rerun.`)
        }
        let written = 0
        const rowsWritten = new Set<string>()
        for (let ci = 0; ci < t.columns.length; ci++) {
          const u = updates[ci]!
          if (u.length === 0) continue
          const col = q(t.columns[ci]!.name)
          // One statement per column and batch; its rows' key range bounds what it looks at.
          const vp: unknown[] = [tenant, u[0]![0], u[u.length - 1]![0], u.map(([k]) => String(k))]
          const o = batchColumn('o', 'bytea', u.map(([, oldV]) => oldV), vp)
          const n = batchColumn('n', 'bytea', u.map(([, , newV]) => newV), vp)
          // Compare-and-set: only where the row still holds the ciphertext that was read.
          const r = await s.query<Record<string, unknown>>(
            `UPDATE ${q(t.table.name)} AS t SET ${col} = ${n.value}
             FROM ${batchRows('$4', [o, n])}
             WHERE ${tenantMatch(t.table, '$1', 't')} AND t.${q(pk)} BETWEEN $2${t.pkCast} AND $3${t.pkCast}
               AND t.${q(pk)} = v.k${t.pkCast} AND t.${col} = ${o.value} RETURNING t.${q(pk)} AS k`, vp)
          written += r.rowCount
          for (const row of r.rows) rowsWritten.add(String(row.k))
        }
        return { read: rows.length, last: String(rows[rows.length - 1]![pk]), sealed, written, rows: rowsWritten.size, unreadable }
      })
      if (stats === undefined) break
      batchNo++
      crashPoint(`data-key-rotate:batch:${batchNo}`)
      cp.after = stats.last
      cp.rows += stats.rows
      cp.values += stats.written
      cp.skipped += stats.sealed - stats.written
      cp.unreadable += stats.unreadable
      await p.journal.advance(ctx.opId, 'reencrypt', cp)
      p.progress.update({ state: 'reencrypt', done: cp.rows, total: Math.max(ctx.total, cp.rows), unit: 'rows' })
      if (Date.now() - lastAudit > 5000) {
        lastAudit = Date.now()
        await auditOperation(p, storeOf(cp), tenantId, { id: ctx.opId, kind: ctx.kind }, 'checkpoint', { table: t.table.name, rows: cp.rows, values: cp.values, pass: cp.pass })
      }
      await ctx.throttle.after(stats.read)
    }
    await auditOperation(p, storeOf(cp), tenantId, { id: ctx.opId, kind: ctx.kind }, 'checkpoint', { table: t.table.name, tableDone: 1, rows: cp.rows, values: cp.values, pass: cp.pass })
  }
}
