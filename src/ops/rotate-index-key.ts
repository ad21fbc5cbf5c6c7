/**
 * Blind-index key rotation with a dual-read period (`domicile key rotate-index TENANT`): the tenant's
 * index root key is replaced, every blind index is recomputed under the new key, and an equality
 * search never misses a row meanwhile.
 *
 * State machine, journaled in the control plane (kind 'index-key-rotate', target the tenant id):
 *   plan ─> announce ─> switch ─> rebuild ─> verify ─> retire ─> done
 * - announce: a new index root key (purpose 'index', next number, wrapped under the tenant's KEK) is
 *   stored as 'retired' (searched, not written). After a directory change and its bound, every
 *   search looks under both keys (src/keys/keyring.ts `indexKeysOf`; `IN (old, new)` in SQL).
 * - switch: the new key becomes 'active' and the old one 'retired': writes store indexes under the
 *   new key, searches still cover both. Again a directory change, its bound, and every older
 *   transaction ended: from here no process writes an index under the old key.
 * - rebuild: each row's index is recomputed under the new key in batches, on the region owner's
 *   login (it opens the value to do so; the plaintext stays in this process, is never logged and
 *   the opened bytes are zeroed), written back only where the row still holds the sealed value that
 *   was read (a concurrent update wrote its own index under the new key).
 * - verify: a second pass over the data recomputes every index; it repeats until a pass finds
 *   nothing to fix, so "done" is checked against the data, not assumed from the first pass.
 * - retire: the old index key's wrapped copy is deleted and a directory change makes searches
 *   use the new key only.
 * Killed at any point, rerunning the command resumes from the journal.
 */
import type { Domicile } from '../domicile.js'
import { DomicileError } from '../errors.js'
import { readKeyNumber } from '../fields/field-codec.js'
import { columnReindexer } from '../fields/field-encryptor.js'
import { q } from '../schema/ddl.js'
import { tenantMatch } from '../schema/tenant-column.js'
import { tenantSweepParam } from './tenant-rows.js'
import type { ResolvedColumn } from '../schema/define-schema.js'
import type { StoreSession } from '../regions/store-driver.js'
import {
  assertNoColumnMigration, auditOperation, storeOf, stillAt, batchSizeOf, claimOperation, crashPoint, JobKeys, newWrappedKey, rotatableTenant, rotationParts, regionTransaction, sealedTables,
  Throttle, waitForOlderTransactions, waitForQuiescence, type RotationOptions, type RotationParts, type SealedTable,
} from './rotate-common.js'

export interface IndexKeyRotationOptions extends RotationOptions {
  /** Rows per batch (one transaction each). Default 500. */
  readonly batchSize?: number
  /** Throttle: at most this many rows read per second. Default: no limit. */
  readonly maxRowsPerSecond?: number
  /** Verification passes before giving up. Default 3. */
  readonly maxPasses?: number
}

export interface IndexKeyRotationResult {
  readonly tenant: string
  readonly region: string
  readonly operation: number
  /** 'done', or 'nothing-to-rotate' when the tenant has no index key yet. */
  readonly state: 'done' | 'nothing-to-rotate'
  readonly newKeyNumber: number
  readonly retiredKeyNumbers: readonly number[]
  /** Indexes rewritten; indexes a concurrent update had already replaced; passes over the data. */
  readonly indexes: number
  readonly skipped: number
  readonly passes: number
  readonly resumed: boolean
  readonly elapsedMs: number
}

interface Checkpoint extends Record<string, unknown> {
  region: string
  cell?: string
  newKey: number
  oldKeys: number[]
  pass: number
  table: string | null
  after: string | null
  /** Indexes rewritten in this pass, over all passes, and skipped (row changed meanwhile). */
  fixedThisPass: number
  indexes: number
  skipped: number
}

const KIND = 'index-key-rotate'

/**
 * Rotates the tenant's blind-index key (see the module comment). Reruns resume.
 *
 * @example
 * const r = await rotateIndexKey(domicile, 'acme')
 * // searches on acme's searchable columns now use index key r.newKeyNumber only
 */
export async function rotateIndexKey(d: Domicile, tenantId: string, opts: IndexKeyRotationOptions = {}): Promise<IndexKeyRotationResult> {
  const started = Date.now()
  const p = rotationParts(d, opts)
  const batchSize = batchSizeOf(opts.batchSize, 500)
  const throttle = new Throttle(opts.maxRowsPerSecond)
  const maxPasses = opts.maxPasses ?? 3
  const tenant = await rotatableTenant(p, tenantId)
  await assertNoColumnMigration(p)
  const first: Checkpoint = { region: tenant.region, cell: tenant.cell, newKey: 0, oldKeys: [], pass: 1, table: null, after: null, fixedThisPass: 0, indexes: 0, skipped: 0 }
  const { op, resumed } = await claimOperation<Checkpoint>(p, KIND, tenantId, { state: 'plan', checkpoint: first })
  const cp: Checkpoint = { ...first, ...op.checkpoint }
  // The tenant must still live in the region the rotation started in.
  if (!stillAt(cp, tenant)) throw new DomicileError('ERR_CONFLICT', `Tenant "${tenantId}" moved since rotation #${op.id} started; abort it and start again.`)
  await auditOperation(p, storeOf(cp), tenantId, op, resumed ? 'resume' : 'start', { state: op.state })
  p.progress.note(`${resumed ? 'resuming' : 'started'} index-key rotation #${op.id} for tenant ${tenantId}`)
  const dataKeys = new JobKeys(p, tenantId, storeOf(cp), 'data')
  const indexKeys = new JobKeys(p, tenantId, storeOf(cp), 'index')
  const result = (state: IndexKeyRotationResult['state']): IndexKeyRotationResult => ({
    tenant: tenantId, region: cp.region, operation: op.id, state, newKeyNumber: cp.newKey, retiredKeyNumbers: cp.oldKeys,
    indexes: cp.indexes, skipped: cp.skipped, passes: cp.pass, resumed, elapsedMs: Date.now() - started,
  })
  try {
    let state = op.state
    if (state === 'plan') {
      const r = await p.router.withRegionAdmin(storeOf(cp), (s) => s.query<{ key_number: number }>(
        "SELECT key_number FROM domicile_data_keys WHERE tenant_id = $1 AND purpose = 'index' ORDER BY key_number", [tenantId]))
      const numbers = r.rows.map((row) => Number(row.key_number))
      if (numbers.length === 0) {
        await p.journal.finish(op.id, 'done', 'nothing-to-rotate', cp)
        await auditOperation(p, storeOf(cp), tenantId, op, 'end', { nothingToRotate: 1 })
        return result('nothing-to-rotate')
      }
      cp.oldKeys = numbers
      cp.newKey = Math.max(...numbers) + 1
      state = 'announce'
      await p.journal.advance(op.id, state, cp)
    }
    if (state === 'announce') {
      const provider = await p.providers.runtime(tenant.key.provider)
      await regionTransaction(p, storeOf(cp), async (s) => {
        const have = await s.query("SELECT 1 FROM domicile_data_keys WHERE tenant_id = $1 AND purpose = 'index' AND key_number = $2", [tenantId, cp.newKey])
        if (have.rows.length > 0) return // this step ran before a crash
        const { raw, wrapped } = await newWrappedKey(provider, tenant.key, tenantId, cp.region, 'index', cp.newKey)
        raw.fill(0)
        // 'retired' for an index key: searched, not written (announced before writes switch to it).
        await s.query(`INSERT INTO domicile_data_keys (tenant_id, purpose, key_number, wrapped, provider, key_id, status, encryptions_reserved, max_encryptions)
          VALUES ($1, 'index', $2, $3, $4, $5, 'retired', 0, 0)`, [tenantId, cp.newKey, wrapped, tenant.key.provider, tenant.key.keyId])
      })
      crashPoint('index-key-rotate:announced')
      await announce(p, tenantId, op.id, 'key:rotate-index:dual-read', cp)
      p.progress.note(`searches cover index keys #${cp.oldKeys.join(', #')} and #${cp.newKey}; waiting for every process to see it`)
      await waitForQuiescence(p, storeOf(cp))
      state = 'switch'
      await p.journal.advance(op.id, state, cp)
    }
    if (state === 'switch') {
      await regionTransaction(p, storeOf(cp), async (s) => {
        await s.query("UPDATE domicile_data_keys SET status = 'active' WHERE tenant_id = $1 AND purpose = 'index' AND key_number = $2", [tenantId, cp.newKey])
        await s.query("UPDATE domicile_data_keys SET status = 'retired' WHERE tenant_id = $1 AND purpose = 'index' AND key_number <> $2", [tenantId, cp.newKey])
      })
      await announce(p, tenantId, op.id, 'key:rotate-index:switch', cp)
      p.progress.note(`new indexes are written under index key #${cp.newKey}; waiting for every process to see it`)
      await waitForQuiescence(p, storeOf(cp))
      state = 'rebuild'
      await p.journal.advance(op.id, state, cp)
    }
    const tables = await sealedTables(p, storeOf(cp), (c) => c.sensitive !== false && c.sensitive.searchable && c.indexColumn !== undefined)
    while (state === 'rebuild' || state === 'verify') {
      if (state === 'verify') await waitForOlderTransactions(p, storeOf(cp))
      await rebuildPass(p, op.id, tenantId, tables, dataKeys, indexKeys, batchSize, throttle, state, cp)
      if (state === 'verify' && cp.fixedThisPass === 0) break
      /* Postcondition: a pass over the data found every index under the new key. */
      if (state === 'verify' && cp.pass >= maxPasses) {
        throw new DomicileError('ERR_CONFLICT', `After ${cp.pass} passes, ${cp.fixedThisPass} blind index(es) of tenant "${tenantId}" were still written under an old index key. Rerun to resume.`)
      }
      state = 'verify'
      cp.pass++
      cp.table = null
      cp.after = null
      cp.fixedThisPass = 0
      await p.journal.advance(op.id, state, cp)
    }
    if (state === 'verify') {
      state = 'retire'
      await p.journal.advance(op.id, state, cp)
    }
    if (state === 'retire') {
      await assertNoColumnMigration(p)
      await regionTransaction(p, storeOf(cp), async (s) => {
        await s.query("DELETE FROM domicile_data_keys WHERE tenant_id = $1 AND purpose = 'index' AND key_number <> $2", [tenantId, cp.newKey])
        await s.query('INSERT INTO domicile_audit (tenant_id, type, outcome, actor, detail) VALUES ($1, $2, $3, $4, $5::jsonb)',
          [tenantId, 'key.retire-index', 'ok', p.actor, JSON.stringify({ operation: op.id, keyNumbers: cp.oldKeys })])
      })
      crashPoint('index-key-rotate:retired')
      await announce(p, tenantId, op.id, 'key:rotate-index:retire', cp)
    }
    await p.journal.finish(op.id, 'done', 'done', cp)
    await auditOperation(p, storeOf(cp), tenantId, op, 'end', { keyNumber: cp.newKey, retired: cp.oldKeys.join(','), indexes: cp.indexes, passes: cp.pass })
    p.progress.note(`index-key rotation #${op.id} done: searches use index key #${cp.newKey} only`)
    return result('done')
  } catch (e) {
    await auditOperation(p, storeOf(cp), tenantId, op, 'error', { code: e instanceof DomicileError ? e.code : 'ERR_UNKNOWN', state: op.state }).catch(() => undefined)
    throw e
  } finally {
    dataKeys.dispose()
    indexKeys.dispose()
  }
}

/** A directory change for the tenant: every process re-reads which index keys exist. */
async function announce(p: RotationParts, tenantId: string, opId: number, change: string, cp: Checkpoint): Promise<void> {
  await p.directory.update(tenantId, {}, change, undefined, {
    type: 'key.rotate-index', outcome: 'ok', ...(p.actor ? { actor: p.actor } : {}), detail: { operation: opId, step: change.split(':').pop(), keyNumber: cp.newKey },
  })
}

/** One pass over every searchable column: recomputes each index under the new key, writes back the ones that differ. */
async function rebuildPass(p: RotationParts, opId: number, tenantId: string, tables: readonly SealedTable[], dataKeys: JobKeys, indexKeys: JobKeys,
  batchSize: number, throttle: Throttle, state: 'rebuild' | 'verify', cp: Checkpoint): Promise<void> {
  const startAt = cp.table === null ? 0 : Math.max(0, tables.findIndex((t) => t.table.name === cp.table))
  let batchNo = 0
  throttle.begin()
  for (let ti = startAt; ti < tables.length; ti++) {
    const t = tables[ti]!
    if (cp.table !== t.table.name) {
      cp.table = t.table.name
      cp.after = null
    }
    const pk = t.table.primaryKey
    const cols = [pk, ...t.columns.flatMap((c) => [c.name, c.indexColumn!])].map(q).join(', ')
    for (;;) {
      const params: unknown[] = [tenantSweepParam(t.table, tenantId)]
      let after = ''
      if (cp.after !== null) {
        params.push(cp.after)
        after = ` AND ${q(pk)} > $2${t.pkCast}`
      }
      params.push(batchSize)
      const sql = `SELECT ${cols} FROM ${q(t.table.name)} WHERE ${tenantMatch(t.table, '$1')}${after} ORDER BY ${q(pk)} LIMIT $${params.length}`
      const stats = await regionTransaction(p, storeOf(cp), async (s) => {
        const rows = (await s.query<Record<string, unknown>>(sql, params)).rows
        if (rows.length === 0) return undefined
        const root = await indexKeys.get(s, cp.newKey)
        let fixed = 0
        let wanted = 0
        for (const col of t.columns) {
          const reindex = columnReindexer(tenantId, t.table, col, root)
          const updates: Array<[unknown, Uint8Array, Buffer]> = []
          try {
            for (const row of rows) {
              const v = row[col.name]
              if (!(v instanceof Uint8Array)) continue
              const dataKey = await dataKeys.get(s, readKeyNumber(v))
              const ix = reindex.indexOf(dataKey, String(row[pk]), v)
              const stored = row[col.indexColumn!]
              if (stored instanceof Uint8Array && Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength).equals(ix)) continue
              updates.push([row[pk], v, ix])
            }
          } finally {
            reindex.dispose()
          }
          wanted += updates.length
          fixed += await writeIndexes(s, tenantId, t, col, updates)
        }
        return { read: rows.length, last: String(rows[rows.length - 1]![pk]), fixed, skipped: wanted - fixed }
      })
      if (stats === undefined) break
      batchNo++
      crashPoint(`index-key-rotate:${state}:${batchNo}`)
      cp.after = stats.last
      cp.fixedThisPass += stats.fixed
      cp.indexes += stats.fixed
      cp.skipped += stats.skipped
      await p.journal.advance(opId, state, cp)
      p.progress.update({ state, done: cp.indexes, unit: 'indexes' })
      await throttle.after(stats.read)
    }
    await auditOperation(p, storeOf(cp), tenantId, { id: opId, kind: KIND }, 'checkpoint', { table: t.table.name, tableDone: 1, pass: cp.pass, indexes: cp.indexes })
  }
}

/** Writes new indexes where the row still holds the sealed value they were computed from (compare-and-set). */
async function writeIndexes(s: StoreSession, tenantId: string, t: SealedTable, col: ResolvedColumn, updates: ReadonlyArray<[unknown, Uint8Array, Buffer]>): Promise<number> {
  if (updates.length === 0) return 0
  const vp: unknown[] = [tenantSweepParam(t.table, tenantId)]
  const values = updates.map(([k, sealed, ix]) => {
    vp.push(k, sealed, ix)
    const i = vp.length
    return `($${i - 2}${t.pkCast}, $${i - 1}::bytea, $${i}::bytea)`
  })
  const r = await s.query(
    `UPDATE ${q(t.table.name)} AS t SET ${q(col.indexColumn!)} = u.i FROM (VALUES ${values.join(', ')}) AS u(k, o, i)
     WHERE ${tenantMatch(t.table, '$1', 't')} AND t.${q(t.table.primaryKey)} = u.k AND t.${q(col.name)} = u.o`, vp)
  return r.rowCount
}

/** Abandons a running index-key rotation. Safe at any step: searches keep covering every index key the region holds. */
export async function abortIndexKeyRotation(d: Domicile, tenantId: string, actor?: string): Promise<{ operation: number }> {
  const p = rotationParts(d, actor ? { actor } : {})
  const op = await p.journal.running<Checkpoint>(tenantId)
  if (!op || op.kind !== KIND) throw new DomicileError('ERR_OPERATION_NOT_FOUND', `No index-key rotation is running for tenant "${tenantId}".`)
  await p.journal.finish(op.id, 'aborted', op.state)
  await auditOperation(p, storeOf(op.checkpoint), tenantId, op, 'end', { aborted: 1, state: op.state })
  return { operation: op.id }
}
