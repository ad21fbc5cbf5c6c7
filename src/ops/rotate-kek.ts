/**
 * Key-encryption-key rotation (`domicile key rotate TENANT [--key-id K]`): the tenant's data keys and
 * index keys are rewrapped from the old KEK to a new one; no row table is read or written, so the
 * cost grows with the number of keys, never with rows.
 *
 * State machine, journaled in the control plane (kind 'key-rotate', target the tenant id):
 *   plan ─> [await-import] ─> rewrap ─> bind ─> sweep ─> done
 * - plan: the new KEK. kms: a new key at the provider (createKey) or --key-id; hyok: --key-id (a new
 *   key the customer created on their proxy; it must answer 'enabled'); byok: a new key id at the
 *   local provider awaiting the customer's material (await-import) or --key-id of imported material.
 * - await-import (byok): the customer imports new material into the new key id exactly as for a
 *   new tenant (`rotationImportJob`, `importRotationMaterial`), then reruns the command.
 * - rewrap: in the tenant's region, on the owner's login, one transaction per batch of key rows:
 *   unwrap under the row's KEK, wrap under the new one (same wrap context: tenant, region, purpose,
 *   number), write back. A row holds (wrapped, provider, key id) together, so a reader unwraps each
 *   row under the KEK it names: old ciphertext stays readable throughout.
 * - bind: the directory binding changes to the new key (control plane, with its audit record);
 *   every process sees it within the directory's bound and drops its cached keys.
 * - sweep: after that bound and after every older transaction ended, rows a process created under
 *   the old binding meanwhile are rewrapped too; done when no key row names the old KEK.
 * Killed at any point, rerunning the command resumes from the journal.
 */
import type { KeyBinding } from '../control-plane/tenant-directory.js'
import type { Domicile } from '../domicile.js'
import { DomicileError } from '../errors.js'
import type { ImportJob } from '../keys/key-admin.js'
import { keyWrapContext } from '../keys/keyring.js'
import type { LocalKeyProvider } from '../keys/providers/local/local-key-provider.js'
import type { StoreSession } from '../regions/store-driver.js'
import {
  auditOperation, storeOf, stillAt, batchSizeOf, claimOperation, crashPoint, rotatableTenant, rotationParts, regionTransaction, waitForQuiescence,
  type RotationOptions, type RotationParts,
} from './rotate-common.js'

export interface KekRotationOptions extends RotationOptions {
  /** The new key's id at the provider (hyok: required; kms/byok: an existing enabled key). */
  readonly keyId?: string
  /** Key rows per transaction. Default 100. */
  readonly batchSize?: number
}

export interface KekRotationResult {
  readonly tenant: string
  readonly region: string
  readonly operation: number
  /** 'done', or 'await-import' (byok: import the new material, then rerun). */
  readonly state: 'done' | 'await-import'
  readonly from: KeyBinding
  readonly to: KeyBinding
  /** Key rows rewrapped (data and index keys), the sweep included. */
  readonly keys: number
  readonly resumed: boolean
  readonly elapsedMs: number
}

interface Checkpoint extends Record<string, unknown> {
  from: KeyBinding
  to?: KeyBinding
  region: string
  cell?: string
  keys: number
}

const KIND = 'key-rotate'

/**
 * Rotates the tenant's key-encryption key (see the module comment). Reruns resume.
 *
 * @example
 * const r = await rotateKek(domicile, 'acme', { actor: 'ops@example.com' })
 * // r.state === 'done', r.keys === number of data and index keys rewrapped
 */
export async function rotateKek(d: Domicile, tenantId: string, opts: KekRotationOptions = {}): Promise<KekRotationResult> {
  const p = rotationParts(d, opts)
  const run = await rotateUntilSweep(p, tenantId, opts)
  if ('state' in run) return run
  await run.guard(() => waitForQuiescence(p, storeOf(run.cp)))
  return sweepAndFinish(p, run)
}

export interface BulkKekRotationOptions extends Omit<KekRotationOptions, 'keyId'> {
  /** Tenants rotated at the same time. Default 8. */
  readonly concurrency?: number
}

/** One tenant's outcome in a bulk rotation: its result, or the code of the error that stopped it (rerun to resume). */
export type BulkKekOutcome = { readonly tenant: string; readonly result: KekRotationResult } | { readonly tenant: string; readonly error: string }

/**
 * Rotates the KEK of many tenants (each to a new key of its own), sharing one wait for the
 * directory's bound per region between the binding change and the sweep instead of one per tenant.
 * A tenant that fails does not stop the others; rerun to resume it.
 *
 * @example
 * const outcomes = await rotateKeks(domicile, ['acme', 'globex'], { concurrency: 16 })
 */
export async function rotateKeks(d: Domicile, tenantIds: readonly string[], opts: BulkKekRotationOptions = {}): Promise<BulkKekOutcome[]> {
  const p = rotationParts(d, opts)
  const concurrency = opts.concurrency ?? 8
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256) throw new DomicileError('ERR_INPUT_INVALID', 'concurrency: expected an integer from 1 to 256.', { path: 'concurrency' })
  const outcomes = new Map<string, BulkKekOutcome>()
  const runs: KekRun[] = []
  const fail = (tenant: string, e: unknown) => outcomes.set(tenant, { tenant, error: e instanceof DomicileError ? e.code : 'ERR_UNKNOWN' })
  let done = 0
  await eachLimited(tenantIds, concurrency, async (t) => {
    try {
      const run = await rotateUntilSweep(p, t, opts)
      if ('state' in run) outcomes.set(t, { tenant: t, result: run })
      else runs.push(run)
    } catch (e) {
      fail(t, e)
    }
    p.progress.update({ state: 'rewrap', done: ++done, total: tenantIds.length, unit: 'tenants' })
  })
  const stores = new Map(runs.map((r) => [p.router.label(storeOf(r.cp)), storeOf(r.cp)]))
  await Promise.all([...stores.values()].map((where) => waitForQuiescence(p, where)))
  done = 0
  await eachLimited(runs, concurrency, async (run) => {
    try {
      outcomes.set(run.tenantId, { tenant: run.tenantId, result: await sweepAndFinish(p, run) })
    } catch (e) {
      fail(run.tenantId, e)
    }
    p.progress.update({ state: 'sweep', done: ++done, total: runs.length, unit: 'tenants' })
  })
  return tenantIds.map((t) => outcomes.get(t)!)
}

async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]!)
  }))
}

/** A rotation between its binding change and its sweep. */
interface KekRun {
  readonly tenantId: string
  readonly op: { id: number; kind: typeof KIND }
  readonly cp: Checkpoint
  readonly resumed: boolean
  readonly started: number
  readonly batch: number
  /** Runs `fn`, recording an error in the region's audit before rethrowing it. */
  guard<T>(fn: () => Promise<T>): Promise<T>
}

/** plan, [await-import], rewrap, bind: a result when it stops early (awaiting import), else the run to sweep. */
async function rotateUntilSweep(p: RotationParts, tenantId: string, opts: KekRotationOptions): Promise<KekRotationResult | KekRun> {
  const started = Date.now()
  const batch = batchSizeOf(opts.batchSize, 100)
  const tenant = await rotatableTenant(p, tenantId)
  /* Precondition: a key id names a key other than the current one. */
  if (opts.keyId !== undefined && (opts.keyId === '' || opts.keyId === tenant.key.keyId)) {
    throw new DomicileError('ERR_INPUT_INVALID', '--key-id: name a new key, not the tenant\'s current one.', { path: 'keyId' })
  }
  const { op, resumed } = await claimOperation<Checkpoint>(p, KIND, tenantId,
    { state: 'plan', checkpoint: { from: tenant.key, region: tenant.region, cell: tenant.cell, keys: 0 } }, { idleStates: ['await-import'] })
  const cp: Checkpoint = { ...op.checkpoint }
  // The tenant must still live in the region the rotation started in.
  if (!stillAt(cp, tenant)) throw new DomicileError('ERR_CONFLICT', `Tenant "${tenantId}" moved since rotation #${op.id} started; abort it and start again.`)
  const guard = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn()
    } catch (e) {
      await auditOperation(p, storeOf(cp), tenantId, op, 'error', { code: e instanceof DomicileError ? e.code : 'ERR_UNKNOWN' }).catch(() => undefined)
      throw e
    }
  }
  await auditOperation(p, storeOf(cp), tenantId, op, resumed ? 'resume' : 'start', { state: op.state })
  p.progress.note(`${resumed ? 'resuming' : 'started'} key rotation #${op.id} for tenant ${tenantId}`)
  return guard(async () => {
    let state = op.state
    if (state === 'plan' || state === 'await-import') {
      if (!cp.to) {
        cp.to = await newKek(p, cp.from, tenantId, opts.keyId)
        await p.journal.advance(op.id, 'plan', cp) // a resume uses this key, never mints another
      }
      if (opts.keyId !== undefined && opts.keyId !== cp.to.keyId) {
        throw new DomicileError('ERR_INPUT_INVALID', `Rotation #${op.id} of tenant "${tenantId}" already targets another key id; rerun without --key-id to resume it, or abort it first.`, { path: 'keyId' })
      }
      const st = await (await p.providers.runtime(cp.to.provider)).keyStatus(cp.to.keyId)
      if (st.state === 'pending-import') {
        await p.journal.advance(op.id, 'await-import', cp)
        p.progress.note(`key ${cp.to.keyId} awaits the customer's key material: import it, then rerun`)
        return result(tenantId, op.id, 'await-import', cp, resumed, started)
      }
      /* Precondition: the new key-encryption key is usable. */
      if (st.state !== 'enabled') throw new DomicileError('ERR_KEY_REVOKED', `The new key "${cp.to.keyId}" at provider "${cp.to.provider}" is ${st.state}; enable it at the key holder and rerun.`)
      state = 'rewrap'
      await p.journal.advance(op.id, state, cp)
      crashPoint('key-rotate:planned')
    }
    const to = cp.to!
    if (state === 'rewrap') {
      await rewrapAll(p, op.id, tenantId, to, cp, batch)
      state = 'bind'
      await p.journal.advance(op.id, state, cp)
    }
    if (state === 'bind') {
      const now = await p.directory.get(tenantId)
      if (!sameKey(now.key, to)) {
        await p.directory.update(tenantId, { key: to }, 'key:rotate', undefined, {
          type: 'key.rotate', outcome: 'ok', ...(p.actor ? { actor: p.actor } : {}),
          detail: { operation: op.id, custody: to.custody, provider: to.provider, fromKeyId: cp.from.keyId, toKeyId: to.keyId },
        })
      }
      crashPoint('key-rotate:bound')
      state = 'sweep'
      await p.journal.advance(op.id, state, cp)
    }
    return { tenantId, op: { id: op.id, kind: KIND }, cp, resumed, started, batch, guard }
  })
}

/**
 * sweep, done: after the directory's bound (the caller waited), keys a process created under the
 * old binding before it saw the change are rewrapped too; done when no key row names another KEK.
 */
async function sweepAndFinish(p: RotationParts, run: KekRun): Promise<KekRotationResult> {
  const { tenantId, op, cp } = run
  const to = cp.to!
  return run.guard(async () => {
    await rewrapAll(p, op.id, tenantId, to, cp, run.batch)
    const left = await p.router.withRegionAdmin(storeOf(cp), (s) => notUnder(s, tenantId, to))
    /* Postcondition: no key row of the tenant names another KEK. */
    if (left > 0) throw new DomicileError('ERR_CONFLICT', `${left} key(s) of tenant "${tenantId}" were created under the old key during the rotation. Rerun to rewrap them.`)
    await p.journal.finish(op.id, 'done', 'done', cp)
    await auditOperation(p, storeOf(cp), tenantId, op, 'end', { keys: cp.keys, toKeyId: to.keyId, provider: to.provider })
    p.progress.note(`rotation #${op.id} done: ${cp.keys} key(s) rewrapped under ${to.keyId}`)
    return result(tenantId, op.id, 'done', cp, run.resumed, run.started)
  })
}

function result(tenant: string, operation: number, state: 'done' | 'await-import', cp: Checkpoint, resumed: boolean, started: number): KekRotationResult {
  return { tenant, region: cp.region, operation, state, from: cp.from, to: cp.to!, keys: cp.keys, resumed, elapsedMs: Date.now() - started }
}

const sameKey = (a: KeyBinding | null, b: KeyBinding): boolean => a !== null && a.provider === b.provider && a.keyId === b.keyId

/** The new KEK binding: same custody and provider, a new key id. */
async function newKek(p: RotationParts, from: KeyBinding, tenantId: string, keyId: string | undefined): Promise<KeyBinding> {
  const { runtime, config } = await p.providers.get(from.provider)
  if (keyId !== undefined) {
    if (keyId === '' || keyId === from.keyId) throw new DomicileError('ERR_INPUT_INVALID', '--key-id: name a new key, not the tenant\'s current one.', { path: 'keyId' })
    return Object.freeze({ custody: from.custody, provider: from.provider, keyId })
  }
  // A HYOK key lives on the customer's proxy: we cannot mint it.
  if (from.custody === 'hyok' || !runtime.createKey) {
    throw new DomicileError('ERR_INPUT_INVALID', `Provider "${from.provider}" (${config.kind}) cannot create keys for us: create the new key at the key holder and pass --key-id.`, { path: 'keyId' })
  }
  if (from.custody === 'byok' && config.kind !== 'local') {
    throw new DomicileError('ERR_INPUT_INVALID', `BYOK import runs through the local provider; for ${config.kind}, import new material with the provider's own tooling and pass --key-id.`, { path: 'keyId' })
  }
  const created = await runtime.createKey({ label: tenantId, origin: from.custody === 'byok' ? 'import' : 'generate' })
  return Object.freeze({ custody: from.custody, provider: from.provider, keyId: created.keyId })
}

/** Rows of the tenant's keys not under `to` (any purpose). */
async function notUnder(s: StoreSession, tenantId: string, to: KeyBinding): Promise<number> {
  const r = await s.query<{ n: string | number }>('SELECT count(*) AS n FROM domicile_data_keys WHERE tenant_id = $1 AND NOT (provider = $2 AND key_id = $3)', [tenantId, to.provider, to.keyId])
  return Number(r.rows[0]!.n)
}

/** Rewraps every key row of the tenant not under `to`, one owner transaction per batch. Reads no row table. */
async function rewrapAll(p: RotationParts, opId: number, tenantId: string, to: KeyBinding, cp: Checkpoint, batch: number): Promise<void> {
  const target = await p.providers.runtime(to.provider)
  const total = cp.keys + await p.router.withRegionAdmin(storeOf(cp), (s) => notUnder(s, tenantId, to))
  p.progress.update({ state: 'rewrap', done: cp.keys, total, unit: 'keys' })
  for (let n = 1; ; n++) {
    const done = await regionTransaction(p, storeOf(cp), async (s) => {
      const r = await s.query<{ purpose: 'data' | 'index'; key_number: number; wrapped: Uint8Array; provider: string; key_id: string }>(
        `SELECT purpose, key_number, wrapped, provider, key_id FROM domicile_data_keys
         WHERE tenant_id = $1 AND NOT (provider = $2 AND key_id = $3) ORDER BY purpose, key_number LIMIT $4 FOR UPDATE`,
        [tenantId, to.provider, to.keyId, batch])
      for (const row of r.rows) {
        const context = keyWrapContext(tenantId, cp.region, row.purpose, Number(row.key_number))
        const source = await p.providers.runtime(row.provider)
        const raw = await source.unwrapKey({ keyId: row.key_id, ciphertext: new Uint8Array(row.wrapped), context })
        let wrapped: Uint8Array
        try {
          wrapped = (await target.wrapKey({ keyId: to.keyId, plaintextKey: raw, context })).ciphertext
        } finally {
          raw.fill(0)
        }
        await s.query('UPDATE domicile_data_keys SET wrapped = $4, provider = $5, key_id = $6 WHERE tenant_id = $1 AND purpose = $2 AND key_number = $3',
          [tenantId, row.purpose, row.key_number, wrapped, to.provider, to.keyId])
      }
      return r.rows.length
    })
    if (done === 0) return
    crashPoint(`key-rotate:batch:${n}`)
    cp.keys += done
    await p.journal.advance(opId, 'rewrap', cp)
    await auditOperation(p, storeOf(cp), tenantId, { id: opId, kind: KIND }, 'checkpoint', { keys: cp.keys })
    p.progress.update({ state: 'rewrap', done: cp.keys, total: Math.max(total, cp.keys), unit: 'keys' })
  }
}

/**
 * BYOK rotation, customer side: the import job (RSA wrapping key and token) for the new key id a
 * rotation awaits (state 'await-import'). Same flow as `domicile key import-job` for a new tenant.
 */
export async function rotationImportJob(d: Domicile, tenantId: string): Promise<ImportJob & { keyId: string }> {
  const { local, to } = await awaitingImport(d, tenantId)
  const job = await local.createImportJob(to.keyId)
  return { ...job, keyId: to.keyId }
}

/** BYOK rotation, customer side: imports the wrapped new material into the new key id; then rerun the rotation. */
export async function importRotationMaterial(d: Domicile, tenantId: string, encryptedMaterial: Uint8Array, importToken: string): Promise<{ keyId: string }> {
  const { local, to, p } = await awaitingImport(d, tenantId)
  await local.importKeyMaterial(to.keyId, { encryptedMaterial, importToken })
  await p.directory.audit({ tenantId, type: 'key.rotate.import', outcome: 'ok', ...(p.actor ? { actor: p.actor } : {}), detail: { keyId: to.keyId } }).catch(() => undefined)
  return { keyId: to.keyId }
}

async function awaitingImport(d: Domicile, tenantId: string): Promise<{ p: RotationParts; local: LocalKeyProvider; to: KeyBinding }> {
  const p = rotationParts(d, {})
  const op = await p.journal.running<Checkpoint>(tenantId)
  /* Precondition: a BYOK rotation awaits the customer's material. */
  if (!op || op.kind !== KIND || op.state !== 'await-import' || !op.checkpoint.to) {
    throw new DomicileError('ERR_OPERATION_NOT_FOUND', `No key rotation of tenant "${tenantId}" awaits key material. Start one with "domicile key rotate ${tenantId}".`)
  }
  const to = op.checkpoint.to
  const { raw, config } = await p.providers.get(to.provider)
  if (config.kind !== 'local') throw new DomicileError('ERR_INPUT_INVALID', `Key import runs through the local provider; "${to.provider}" is ${config.kind}.`)
  return { p, local: raw as LocalKeyProvider, to }
}

/** Abandons a running KEK rotation. Safe at any step: each key row names the KEK it is wrapped under, and both stay enabled. */
export async function abortKekRotation(d: Domicile, tenantId: string, actor?: string): Promise<{ operation: number }> {
  const p = rotationParts(d, actor ? { actor } : {})
  const op = await p.journal.running<Checkpoint>(tenantId)
  if (!op || op.kind !== KIND) throw new DomicileError('ERR_OPERATION_NOT_FOUND', `No key rotation is running for tenant "${tenantId}".`)
  await p.journal.finish(op.id, 'aborted', op.state)
  await auditOperation(p, storeOf(op.checkpoint), tenantId, op, 'end', { aborted: 1, state: op.state })
  return { operation: op.id }
}
