/**
 * `key destroy`: the irreversible shred of one tenant, as a journaled operation (kind 'key-destroy',
 * target the tenant id), so it never overlaps a move or a rotation of the same tenant and a killed
 * run resumes where it stopped.
 *
 *   kill-switch    key state 'destroyed' + its `key.destroy` audit record (one control-plane
 *                  transaction): every process refuses the key from here on. The point of no return.
 *   destroy-kek    the key-encryption keys (the binding's and any its wrapped data keys name) are
 *                  destroyed where we hold material: local keystore file overwritten and removed,
 *                  PKCS#11 C_DestroyObject, AWS KMS ScheduleKeyDeletion. HYOK: nothing of ours to
 *                  destroy (the customer's key stays with the customer). A key another tenant is bound
 *                  to is kept.
 *   delete-copies  every wrapped copy of the tenant's data and index keys is deleted from every region
 *                  store (owner session), the table vacuumed, and the count checked to be zero.
 *
 * Each step is idempotent, so resuming repeats at most the step that was running. Audit: the
 * control plane records `key.destroy` with the state change; the tenant's region records start,
 * checkpoints and end with the actor (src/ops/ops-audit.ts). Identifiers and counts only.
 */
import type { Domicile } from '../domicile.js'
import { internalsOf } from '../domicile-internals.js'
import { DomicileError } from '../errors.js'
import type { KekDestruction, KekRef } from '../keys/key-admin.js'
import type { Operation, OperationJournal } from './operation-journal.js'
import { appendOperationAudit } from './ops-audit.js'
import { silentProgress, type Progress } from './progress.js'

export interface DestroyTenantKeyOptions {
  /** Who destroys (recorded in the journal and the audit). */
  readonly actor?: string
  readonly progress?: Progress
}

/** One wrapped data or index key, by identifiers only. */
export interface WrappedKeyRef {
  readonly region: string
  readonly purpose: 'data' | 'index'
  readonly keyNumber: number
  readonly provider: string
  readonly keyId: string
}

export interface DestroyTenantKeyResult {
  readonly tenantId: string
  readonly operationId: number
  /** True when an interrupted destruction of this tenant was completed. */
  readonly resumed: boolean
  /** When the key state became 'destroyed' (ISO). */
  readonly destroyedAt: string
  readonly keks: readonly KekDestruction[]
  /** The wrapped keys that existed when the kill switch fell, which were destroyed. */
  readonly wrappedKeys: readonly WrappedKeyRef[]
  /** Rows deleted from domicile_data_keys, per region. */
  readonly deleted: readonly { readonly region: string; readonly rows: number }[]
  readonly elapsedMs: number
}

/** The journal checkpoint of a destruction (identifiers only). */
export interface DestroyCheckpoint extends Record<string, unknown> {
  readonly binding: { readonly custody: string; readonly provider: string; readonly keyId: string }
  readonly destroyedAt?: string
  readonly wrappedKeys?: readonly WrappedKeyRef[]
  readonly keks?: readonly KekDestruction[]
  readonly deleted?: readonly { readonly region: string; readonly rows: number }[]
}

/**
 * Destroys the tenant's key material and every wrapped copy of its keys; resumes an interrupted
 * destruction of the same tenant. Cannot be undone.
 *
 * @example
 * const r = await destroyTenantKey(domicile, 'acme', { actor: 'ops@example.com' })
 * console.log(r.keks.map((k) => k.outcome)) // ['destroyed']
 */
export async function destroyTenantKey(domicile: Domicile, tenantId: string, opts: DestroyTenantKeyOptions = {}): Promise<DestroyTenantKeyResult> {
  const started = performance.now()
  const parts = internalsOf(domicile)
  const { journal, keys, directory, router } = parts
  /* Precondition: the instance has key custody and an operations journal. */
  if (!journal || !keys) throw new DomicileError('ERR_KEY_PROVIDER_UNKNOWN', 'No key providers are configured for this instance, so there is no key to destroy.')
  const progress = opts.progress ?? silentProgress
  const tenant = await directory.get(tenantId)
  const running = await runningFor(journal, tenantId)
  let op: Operation<DestroyCheckpoint>
  let resumed = false
  if (running?.kind === 'key-destroy') {
    op = running as Operation<DestroyCheckpoint>
    resumed = true
    progress.note(`resuming the destruction of tenant ${tenantId} (operation #${op.id}, at "${op.state}")`)
  } else {
    /* Precondition: no other operation (move, rotation, migration) runs for the tenant. */
    if (running) {
      throw new DomicileError('ERR_OPERATION_RUNNING', `Operation #${running.id} (${running.kind}, at "${running.state}") is running for tenant "${tenantId}". Let it finish or abort it before destroying the key; operations on one tenant never overlap.`)
    }
    /* Precondition: the tenant has a key binding. */
    if (!tenant.key) throw new DomicileError('ERR_KEY_NOT_FOUND', `Tenant "${tenantId}" has no key binding, so there is no key to destroy.`)
    /* Precondition: the tenant's key is not destroyed already. */
    if (tenant.keyState === 'destroyed') {
      throw new DomicileError('ERR_KEY_DESTROYED', `The key of tenant "${tenantId}" is already destroyed. Run "domicile shred verify ${tenantId} --out FILE" for a certificate.`)
    }
    const binding = { custody: tenant.key.custody, provider: tenant.key.provider, keyId: tenant.key.keyId }
    op = await journal.start<DestroyCheckpoint>({ kind: 'key-destroy', tenantId, target: tenantId, state: 'kill-switch', checkpoint: { binding }, ...(opts.actor ? { actor: opts.actor } : {}) })
    await appendOperationAudit(router, tenant, tenantId, [{ type: 'key.destroy.start', outcome: 'ok', actor: opts.actor ?? null, detail: { operation: op.id, provider: binding.provider, keyId: binding.keyId } }])
  }
  const actor = opts.actor ?? op.actor ?? undefined
  let cp: DestroyCheckpoint = op.checkpoint
  let state = op.state

  if (state === 'kill-switch') {
    progress.update({ state, done: 0, total: 1, unit: 'steps' })
    const rec = await keys.markDestroyed(tenantId, actor, { operation: op.id })
    // What the kill switch left to destroy: every wrapped key of the tenant, in every region.
    const wrappedKeys = await inventory(domicile, tenantId)
    cp = { ...cp, destroyedAt: rec.updatedAt.toISOString(), wrappedKeys }
    state = 'destroy-kek'
    await journal.advance(op.id, state, cp)
    progress.note(`key state of ${tenantId} is 'destroyed'; ${wrappedKeys.length} wrapped key(s) to delete`)
  }

  if (state === 'destroy-kek') {
    const refs = kekRefs(cp)
    progress.update({ state, done: 0, total: refs.length, unit: 'keys' })
    const keks = await keys.destroyKeyEncryptionKeys(tenantId, refs)
    cp = { ...cp, keks }
    state = 'delete-copies'
    await journal.advance(op.id, state, cp)
    progress.update({ state: 'destroy-kek', done: refs.length, total: refs.length, unit: 'keys' })
    await appendOperationAudit(router, tenant, tenantId, [{ type: 'key.destroy.checkpoint', outcome: 'ok', actor: actor ?? null,
      detail: { operation: op.id, state, keks: keks.map((k) => `${k.provider}:${k.keyId}:${k.outcome}`).join(',') } }])
  }

  if (state === 'delete-copies') {
    // Rows an interrupted run of this step deleted are not counted again; `wrappedKeys` lists them all.
    cp = { ...cp, deleted: await deleteWrappedCopies(domicile, tenantId, progress) }
    await journal.finish(op.id, 'done', 'done', cp)
    await appendOperationAudit(router, tenant, tenantId, [{ type: 'key.destroy.end', outcome: 'ok', actor: actor ?? null,
      detail: { operation: op.id, wrappedKeysDeleted: cp.deleted!.reduce((n, d) => n + d.rows, 0), elapsedMs: Math.round(performance.now() - started) } }])
    await directory.audit({ tenantId, type: 'key.destroy.complete', outcome: 'ok', ...(actor ? { actor } : {}), detail: { operation: op.id } })
  }

  return {
    tenantId,
    operationId: op.id,
    resumed,
    destroyedAt: cp.destroyedAt ?? new Date().toISOString(),
    keks: cp.keks ?? [],
    wrappedKeys: cp.wrappedKeys ?? [],
    deleted: cp.deleted ?? [],
    elapsedMs: Math.round(performance.now() - started),
  }
}

/** The running operation that concerns a tenant: on its id as target, or naming it as its tenant. */
export async function runningFor(journal: OperationJournal, tenantId: string): Promise<Operation | undefined> {
  const onTarget = await journal.running(tenantId)
  if (onTarget) return onTarget
  return (await journal.list({ tenantId, limit: 20 })).find((o) => o.status === 'running')
}

/** Every wrapped data and index key of a tenant in every region (owner sessions; identifiers only). */
export async function inventory(domicile: Domicile, tenantId: string): Promise<WrappedKeyRef[]> {
  const { router } = internalsOf(domicile)
  const out: WrappedKeyRef[] = []
  for (const where of router.stores) {
    const region = where.region // the wrap context names the region (every cell of it)
    const r = await router.withRegionAdmin(where, (s) => s.query<{ purpose: 'data' | 'index'; key_number: number; provider: string; key_id: string }>(
      'SELECT purpose, key_number, provider, key_id FROM domicile_data_keys WHERE tenant_id = $1 ORDER BY purpose, key_number', [tenantId]))
    for (const row of r.rows) out.push({ region, purpose: row.purpose, keyNumber: Number(row.key_number), provider: row.provider, keyId: row.key_id })
  }
  return out
}

/** The binding's key first, then every other key-encryption key a wrapped key names. */
function kekRefs(cp: DestroyCheckpoint): KekRef[] {
  const refs: KekRef[] = [{ provider: cp.binding.provider, keyId: cp.binding.keyId }]
  for (const k of cp.wrappedKeys ?? []) {
    if (!refs.some((r) => r.provider === k.provider && r.keyId === k.keyId)) refs.push({ provider: k.provider, keyId: k.keyId })
  }
  return refs
}

/**
 * Deletes the tenant's rows from domicile_data_keys in every region, vacuums the table (dead row
 * versions holding the wrapped keys become free space), and checks none is left.
 */
async function deleteWrappedCopies(domicile: Domicile, tenantId: string, progress: Progress): Promise<{ region: string; rows: number }[]> {
  const { router } = internalsOf(domicile)
  const out: { region: string; rows: number }[] = []
  const regions = router.stores
  for (const [i, where] of regions.entries()) {
    const region = router.label(where)
    const rows = await router.withRegionAdmin(where, async (s) => {
      const del = await s.query('DELETE FROM domicile_data_keys WHERE tenant_id = $1', [tenantId])
      try {
        await s.exec('VACUUM domicile_data_keys')
      } catch {
        // Best effort: autovacuum gets there later; the certificate names dead row versions among what it cannot vouch for.
      }
      const left = await s.query<{ n: string | number }>('SELECT count(*) AS n FROM domicile_data_keys WHERE tenant_id = $1', [tenantId])
      /* Precondition: no wrapped copy of the tenant's keys is left in the region. */
      if (Number(left.rows[0]?.n ?? 0) !== 0) {
        throw new DomicileError('ERR_CONFLICT', `A wrapped key of tenant "${tenantId}" appeared in region ${region} while it was being destroyed. Run "domicile key destroy ${tenantId}" again to finish.`)
      }
      return del.rowCount ?? 0
    })
    out.push({ region, rows })
    progress.update({ state: 'delete-copies', done: i + 1, total: regions.length, unit: 'regions' })
  }
  return out
}
