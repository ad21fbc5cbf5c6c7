/**
 * Data-key rotation (`domicile key rotate-data TENANT`) and retirement of an old data key.
 *
 * State machine, journaled in the control plane (kind 'data-key-rotate', target the tenant id):
 *   plan ─> rotate ─> announce ─> reencrypt ─> verify ─> done
 * - plan: the new key's number (one above the tenant's highest), recorded before anything changes.
 * - rotate: in the tenant's region, one owner transaction: a new random data key wrapped under the
 *   tenant's KEK becomes the active key and every older data key is marked 'retired' (still used
 *   for opening, never for sealing). Sealing reserves budget of the highest active key only.
 * - announce: a directory change: every process drops the tenant's cached keys and reserved budget
 *   (within the directory's bound), so new writes seal under the new key at once; then the job
 *   waits for that bound and for every older transaction to end.
 * - reencrypt: the background job (src/ops/reencrypt-data.ts), batch by batch, throttled, with its
 *   checkpoint in the journal. Reads work throughout: each value names its key in its header.
 * - verify: every sealed column of the tenant is scanned for older key numbers; another pass runs
 *   if any remain.
 * Killed at any point, rerunning the command resumes from the journal.
 *
 * `retireDataKey` deletes an old key's wrapped copy, and refuses while any stored value still names
 * it: checked against the stored values (the key number in the header of every sealed value of every
 * sealed column of the tenant, with writers held off by a SHARE lock), not assumed from a job's state.
 */
import type { Domicile } from '../domicile.js'
import { DomicileError } from '../errors.js'
import { q } from '../schema/ddl.js'
import { tenantMatch } from '../schema/tenant-column.js'
import { tenantSweepParam } from './tenant-rows.js'
import { countOlderValues, reencryptPass, type ReencryptCheckpoint } from './reencrypt-data.js'
import {
  assertNoColumnMigration, auditOperation, storeOf, stillAt, batchSizeOf, claimOperation, crashPoint, JobKeys, keyNumberSql, newWrappedKey, rotatableTenant, rotationParts, regionTransaction,
  sealedTables, Throttle, u32be, waitForOlderTransactions, waitForQuiescence, type RotationOptions, type SealedTable,
} from './rotate-common.js'
import type { StoreSession } from '../regions/store-driver.js'

export interface DataKeyRotationOptions extends RotationOptions {
  /** Rows per batch (one transaction each). Default 500. */
  readonly batchSize?: number
  /** Throttle: at most this many rows read per second. Default: no limit. */
  readonly maxRowsPerSecond?: number
  /** Passes over the data before giving up on values written under an old key meanwhile. Default 3. */
  readonly maxPasses?: number
}

export interface DataKeyRotationResult {
  readonly tenant: string
  readonly region: string
  readonly operation: number
  readonly state: 'done'
  /** The data key new writes seal under. */
  readonly newKeyNumber: number
  /** Rows written back, values re-sealed, values a concurrent update had already replaced. */
  readonly rows: number
  readonly values: number
  readonly skipped: number
  readonly passes: number
  readonly resumed: boolean
  readonly elapsedMs: number
  /** Time spent in the re-encryption passes, and the rates over them. */
  readonly reencryptMs: number
  readonly valuesPerSecond: number
  readonly rowsPerSecond: number
}

const KIND = 'data-key-rotate'

/**
 * Rotates the tenant's data key and re-encrypts its stored values under the new one (see the
 * module comment). Reruns resume.
 *
 * @example
 * const r = await rotateDataKey(domicile, 'acme', { maxRowsPerSecond: 5000 })
 * // r.newKeyNumber: the key every value of acme now names
 */
export async function rotateDataKey(d: Domicile, tenantId: string, opts: DataKeyRotationOptions = {}): Promise<DataKeyRotationResult> {
  const started = Date.now()
  const p = rotationParts(d, opts)
  const batchSize = batchSizeOf(opts.batchSize, 500)
  const throttle = new Throttle(opts.maxRowsPerSecond)
  const maxPasses = opts.maxPasses ?? 3
  const tenant = await rotatableTenant(p, tenantId)
  await assertNoColumnMigration(p)
  const first: ReencryptCheckpoint = { region: tenant.region, cell: tenant.cell, newKey: 0, pass: 1, table: null, after: null, rows: 0, values: 0, skipped: 0, unreadable: 0 }
  const { op, resumed } = await claimOperation<ReencryptCheckpoint>(p, KIND, tenantId, { state: 'plan', checkpoint: first })
  const cp: ReencryptCheckpoint = { ...first, ...op.checkpoint }
  // The tenant must still live in the region the rotation started in.
  if (!stillAt(cp, tenant)) throw new DomicileError('ERR_CONFLICT', `Tenant "${tenantId}" moved since rotation #${op.id} started; abort it and start again.`)
  await auditOperation(p, storeOf(cp), tenantId, op, resumed ? 'resume' : 'start', { state: op.state })
  p.progress.note(`${resumed ? 'resuming' : 'started'} data-key rotation #${op.id} for tenant ${tenantId}`)
  const keys = new JobKeys(p, tenantId, storeOf(cp), 'data')
  let reencryptMs = 0
  try {
    let state = op.state
    if (state === 'plan') {
      const r = await p.router.withRegionAdmin(storeOf(cp), (s) => s.query<{ n: number | null }>(
        "SELECT max(key_number) AS n FROM domicile_data_keys WHERE tenant_id = $1 AND purpose = 'data'", [tenantId]))
      cp.newKey = Number(r.rows[0]?.n ?? 0) + 1
      state = 'rotate'
      await p.journal.advance(op.id, state, cp)
    }
    if (state === 'rotate') {
      const provider = await p.providers.runtime(tenant.key.provider)
      cp.newKey = await regionTransaction(p, storeOf(cp), async (s) => {
        const rows = (await s.query<{ key_number: number }>("SELECT key_number FROM domicile_data_keys WHERE tenant_id = $1 AND purpose = 'data' ORDER BY key_number FOR UPDATE", [tenantId])).rows
        const highest = rows.length === 0 ? 0 : Number(rows[rows.length - 1]!.key_number)
        // The planned key exists when this step ran before a crash (or a newer one when the budget ran out meanwhile).
        let target = Math.max(highest, cp.newKey)
        if (highest < cp.newKey) {
          const { raw, wrapped } = await newWrappedKey(provider, tenant.key, tenantId, cp.region, 'data', cp.newKey)
          raw.fill(0) // opened again from its row by whoever needs it
          const ins = await s.query(`INSERT INTO domicile_data_keys (tenant_id, purpose, key_number, wrapped, provider, key_id, status, encryptions_reserved, max_encryptions)
            VALUES ($1, 'data', $2, $3, $4, $5, 'active', 0, $6) ON CONFLICT DO NOTHING`, [tenantId, cp.newKey, wrapped, tenant.key.provider, tenant.key.keyId, p.maxEncryptionsPerKey])
          if (ins.rowCount !== 1) throw new DomicileError('ERR_CONFLICT', `Data key #${cp.newKey} of tenant "${tenantId}" was created concurrently. Rerun to resume.`)
          target = cp.newKey
        }
        await s.query("UPDATE domicile_data_keys SET status = 'retired' WHERE tenant_id = $1 AND purpose = 'data' AND key_number < $2 AND status = 'active'", [tenantId, target])
        return target
      })
      crashPoint('data-key-rotate:rotated')
      state = 'announce'
      await p.journal.advance(op.id, state, cp)
    }
    if (state === 'announce') {
      await p.directory.update(tenantId, {}, 'key:rotate-data', undefined, {
        type: 'key.rotate-data', outcome: 'ok', ...(p.actor ? { actor: p.actor } : {}), detail: { operation: op.id, keyNumber: cp.newKey },
      })
      p.progress.note(`new writes seal under data key #${cp.newKey}; waiting for every process to see it`)
      await waitForQuiescence(p, storeOf(cp))
      state = 'reencrypt'
      await p.journal.advance(op.id, state, cp)
    }
    const tables = await sealedTables(p, storeOf(cp))
    for (;;) {
      if (state === 'reencrypt') {
        const total = await p.router.withRegionAdmin(storeOf(cp), async (s) => {
          let n = 0
          for (const t of tables) {
            const older = t.columns.map((c) => `${keyNumberSql(c)} < $2`).join(' OR ')
            n += Number((await s.query<{ n: string | number }>(`SELECT count(*) AS n FROM ${q(t.table.name)} WHERE ${tenantMatch(t.table, '$1')} AND (${older})`, [tenantSweepParam(t.table, tenantId), u32be(cp.newKey)])).rows[0]!.n)
          }
          return n
        })
        const t0 = Date.now()
        await reencryptPass({ p, opId: op.id, kind: KIND, tenantId, tables, keys, batchSize, throttle, total: cp.rows + total }, cp)
        reencryptMs += Date.now() - t0
        state = 'verify'
        await p.journal.advance(op.id, state, cp)
      }
      // Checked against the data: every sealed value of the tenant, after every older transaction ended.
      await assertNoColumnMigration(p)
      await waitForOlderTransactions(p, storeOf(cp))
      const left = await p.router.withRegionAdmin(storeOf(cp), (s) => countOlderValues(s, tenantId, tables, cp.newKey))
      const remaining = [...left.values()].reduce((a, b) => a + b, 0)
      p.progress.update({ state: 'verify', done: remaining === 0 ? 1 : 0, total: 1, unit: 'checks' })
      if (remaining === 0) break
      /* Postcondition: every readable value names the new key (or the job stops and says how many do not). */
      if (cp.pass >= maxPasses || remaining === cp.unreadable) {
        const where = [...left].filter(([, n]) => n > 0).map(([c, n]) => `${c}: ${n}`).join(', ')
        throw new DomicileError('ERR_CONFLICT', `After ${cp.pass} pass(es), values of tenant "${tenantId}" still name an older data key (${where}; ${cp.unreadable} did not open). Rerun to resume; values that do not open need investigation.`)
      }
      cp.pass++
      cp.table = null
      cp.after = null
      cp.unreadable = 0
      state = 'reencrypt'
      await p.journal.advance(op.id, state, cp)
    }
    await p.journal.finish(op.id, 'done', 'done', cp)
    await auditOperation(p, storeOf(cp), tenantId, op, 'end', { keyNumber: cp.newKey, rows: cp.rows, values: cp.values, skipped: cp.skipped, passes: cp.pass })
    p.progress.note(`data-key rotation #${op.id} done: ${cp.values} value(s) in ${cp.rows} row(s) now under data key #${cp.newKey}`)
    return {
      tenant: tenantId, region: cp.region, operation: op.id, state: 'done', newKeyNumber: cp.newKey, rows: cp.rows, values: cp.values, skipped: cp.skipped,
      passes: cp.pass, resumed, elapsedMs: Date.now() - started, reencryptMs,
      valuesPerSecond: reencryptMs > 0 ? Math.round((cp.values * 1000) / reencryptMs) : 0, rowsPerSecond: reencryptMs > 0 ? Math.round((cp.rows * 1000) / reencryptMs) : 0,
    }
  } catch (e) {
    await auditOperation(p, storeOf(cp), tenantId, op, 'error', { code: e instanceof DomicileError ? e.code : 'ERR_UNKNOWN', state: op.state }).catch(() => undefined)
    throw e
  } finally {
    keys.dispose()
  }
}

export interface RetireDataKeyOptions {
  readonly actor?: string
  /** As for rotations: how long every process may take to see a directory change. */
  readonly propagationMs?: number
}

/**
 * Deletes the wrapped copy of an old data key of the tenant (it can never open anything again), and
 * refuses (ERR_CONFLICT) while any stored value still names it, which it checks by reading the key
 * number in the header of every sealed value of the tenant, with writers held off meanwhile.
 *
 * @example
 * await retireDataKey(domicile, 'acme', 1) // after rotateDataKey moved every value to key #2
 */
export async function retireDataKey(d: Domicile, tenantId: string, keyNumber: number, opts: RetireDataKeyOptions = {}): Promise<{ tenant: string; keyNumber: number; valuesChecked: number }> {
  const p = rotationParts(d, opts)
  /* Precondition: the key number to retire is an integer from 1 to 2^31-1. */
  if (!Number.isInteger(keyNumber) || keyNumber < 1 || keyNumber > 0x7fff_ffff) throw new DomicileError('ERR_INPUT_INVALID', 'keyNumber: expected an integer from 1 to 2147483647.', { path: 'keyNumber' })
  const tenant = await p.directory.get(tenantId)
  const running = await p.journal.running(tenantId)
  /* Precondition: no rotation or other operation is running for the tenant. */
  if (running) throw new DomicileError('ERR_OPERATION_RUNNING', `Operation #${running.id} (${running.kind}) is running for tenant "${tenantId}"; retire keys once it is done.`)
  await assertNoColumnMigration(p)
  const tables = await sealedTables(p, tenant)
  const valuesChecked = await regionTransaction(p, tenant, async (s) => {
    const keys = (await s.query<{ key_number: number; status: string; young: boolean }>(
      `SELECT key_number, status, (now() - created_at) < make_interval(secs => $2) AS young FROM domicile_data_keys
       WHERE tenant_id = $1 AND purpose = 'data' ORDER BY key_number FOR UPDATE`, [tenantId, p.propagationMs / 1000])).rows
    const me = keys.find((k) => Number(k.key_number) === keyNumber)
    if (!me) throw new DomicileError('ERR_KEY_NOT_FOUND', `Tenant "${tenantId}" has no data key #${keyNumber} in region "${tenant.region}".`)
    /* Precondition: the key being retired is not the one new values are sealed under. */
    if (me.status === 'active') throw new DomicileError('ERR_CONFLICT', `Data key #${keyNumber} is the active key of tenant "${tenantId}". Rotate first ("domicile key rotate-data ${tenantId}").`)
    const successor = keys.find((k) => Number(k.key_number) > keyNumber)
    /* Precondition: every process has seen the rotation that replaced the key (no sealing under it in flight). */
    if (successor?.young === true) throw new DomicileError('ERR_CONFLICT', `Data key #${keyNumber} was replaced less than ${Math.round(p.propagationMs / 1000)} s ago; processes may still be sealing under it. Retry shortly.`)
    // Writers wait until this transaction ends: no value under this key can appear between the check and the delete.
    for (const t of tables) await s.query(`LOCK TABLE ${q(t.table.name)} IN SHARE MODE`)
    const counts = await countOlderValues(s, tenantId, tables, keyNumber, keyNumber)
    const inUse = [...counts].filter(([, n]) => n > 0)
    /* Precondition: no stored value names the key. */
    if (inUse.length > 0) {
      throw new DomicileError('ERR_CONFLICT', `Data key #${keyNumber} of tenant "${tenantId}" still seals stored values (${inUse.map(([c, n]) => `${c}: ${n}`).join(', ')}). Finish "domicile key rotate-data ${tenantId}" first.`)
    }
    const checked = await sealedCount(s, tenantId, tables)
    await s.query("DELETE FROM domicile_data_keys WHERE tenant_id = $1 AND purpose = 'data' AND key_number = $2", [tenantId, keyNumber])
    await s.query('INSERT INTO domicile_audit (tenant_id, type, outcome, actor, detail) VALUES ($1, $2, $3, $4, $5::jsonb)',
      [tenantId, 'key.retire-data', 'ok', p.actor, JSON.stringify({ keyNumber, valuesChecked: checked })])
    return checked
  })
  // Every process drops its cached copy of the key.
  await p.directory.update(tenantId, {}, 'key:retire-data', undefined, { type: 'key.retire-data', outcome: 'ok', ...(p.actor ? { actor: p.actor } : {}), detail: { keyNumber } })
  return { tenant: tenantId, keyNumber, valuesChecked }
}

async function sealedCount(s: StoreSession, tenantId: string, tables: readonly SealedTable[]): Promise<number> {
  let n = 0
  for (const t of tables) {
    const r = await s.query<{ n: string | number }>(`SELECT (${t.columns.map((c) => `count(${q(c.name)})`).join(' + ')}) AS n FROM ${q(t.table.name)} WHERE ${tenantMatch(t.table, '$1')}`, [tenantSweepParam(t.table, tenantId)])
    n += Number(r.rows[0]!.n)
  }
  return n
}

/** Abandons a running data-key rotation. Safe at any step: reads work on mixed key numbers, and the new key stays active. */
export async function abortDataKeyRotation(d: Domicile, tenantId: string, actor?: string): Promise<{ operation: number }> {
  const p = rotationParts(d, actor ? { actor } : {})
  const op = await p.journal.running<ReencryptCheckpoint>(tenantId)
  if (!op || op.kind !== KIND) throw new DomicileError('ERR_OPERATION_NOT_FOUND', `No data-key rotation is running for tenant "${tenantId}".`)
  await p.journal.finish(op.id, 'aborted', op.state)
  await auditOperation(p, storeOf(op.checkpoint), tenantId, op, 'end', { aborted: 1, state: op.state })
  return { operation: op.id }
}
