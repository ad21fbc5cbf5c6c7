/**
 * Key administration for tenants: the one provisioning step per custody level, the BYOK import
 * flow, and our side of the kill switch. Revoke and restore are directory changes: they reach
 * every running process through the control plane (LISTEN/NOTIFY push, change-log polling as the
 * fallback), which drops the tenant's cached data keys and refuses its key from then on.
 * Destruction (key state 'destroyed') is final: revoke, restore and import refuse it with
 * ERR_KEY_DESTROYED. The whole `key destroy` operation is src/ops/shred-destroy.ts.
 */
import { assertTenantId, type KeyBinding, type TenantDirectory, type TenantRecord } from '../control-plane/tenant-directory.js'
import { DomicileError, isDomicileError } from '../errors.js'
import type { ImportJob, KekDestruction, KekRef, KeyAdmin, ProvisionRequest, TenantKeyStatus } from './key-admin.js'
import type { Custody } from './key-provider.js'
import type { LocalKeyProvider } from './providers/local/local-key-provider.js'
import type { ProviderRegistry } from './provider-registry.js'

export class TenantKeyAdmin implements KeyAdmin {
  readonly #providers: ProviderRegistry
  readonly #defaults: Readonly<Record<Custody, string | undefined>>
  readonly #directory: TenantDirectory

  constructor(providers: ProviderRegistry, defaults: Readonly<Record<Custody, string | undefined>>, directory: TenantDirectory) {
    this.#providers = providers
    this.#defaults = defaults
    this.#directory = directory
  }

  async provision(tenantId: string, req: ProvisionRequest): Promise<{ key: KeyBinding; keyState: 'enabled' | 'pending-import' }> {
    /* Precondition: keys are made only for a valid tenant id (it labels the key at the provider). */
    assertTenantId(tenantId)
    if (!['kms', 'byok', 'hyok'].includes(req.custody)) throw new DomicileError('ERR_INPUT_INVALID', 'custody: expected "kms" | "byok" | "hyok".')
    const name = req.provider ?? this.#defaults[req.custody]
    if (!name) {
      throw new DomicileError('ERR_KEY_PROVIDER_UNKNOWN', req.custody === 'hyok'
        ? 'No key service is given for custody "hyok". Register the customer\'s XKS proxy with the tenant (tenant add --custody hyok --xks-endpoint URL --xks-credentials FILE [--xks-ca FILE] --key-id K), or pass --provider with a configured xks provider.'
        : `No provider is configured for custody "${req.custody}". Add one to keys.providers or pass --provider.`)
    }
    const { runtime, config } = await this.#providers.get(name)
    /* Precondition: HYOK keys live behind the customer's key service, never in our environment. */
    if (req.custody === 'hyok' && config.kind !== 'xks') {
      throw new DomicileError('ERR_INPUT_INVALID', `custody "hyok" needs an external key service ("xks" provider); "${name}" is a ${config.kind} provider, which keeps the key in our environment.`)
    }
    let keyId = req.keyId
    let keyState: 'enabled' | 'pending-import' = 'enabled'
    if (keyId === undefined) {
      if (req.custody === 'hyok' || !runtime.createKey) {
        throw new DomicileError('ERR_INPUT_INVALID', `Provider "${name}" (${config.kind}) cannot create keys for us: pass --key-id with the key's id at the provider.`)
      }
      const origin = req.custody === 'byok' ? 'import' : 'generate'
      if (origin === 'import' && config.kind !== 'local') {
        throw new DomicileError('ERR_INPUT_INVALID', `BYOK import is supported by the local provider; for ${config.kind}, import the key with the provider's own tooling and pass --key-id.`)
      }
      keyId = (await runtime.createKey({ label: tenantId, origin })).keyId
      if (origin === 'import') keyState = 'pending-import'
    } else {
      // An existing key: it must answer and be usable now, so a typo fails at provisioning.
      const st = await runtime.keyStatus(keyId)
      if (st.state === 'pending-import') keyState = 'pending-import'
      else if (st.state !== 'enabled') throw new DomicileError('ERR_KEY_REVOKED', `Key "${keyId}" at provider "${name}" is ${st.state}; enable it at the key holder first.`)
    }
    return { key: Object.freeze({ custody: req.custody, provider: name, keyId }), keyState }
  }

  async #localFor(tenantId: string): Promise<{ tenant: TenantRecord; local: LocalKeyProvider }> {
    const tenant = notDestroyed(await this.#directory.get(tenantId))
    if (!tenant.key || tenant.key.custody !== 'byok') throw new DomicileError('ERR_INPUT_INVALID', `Tenant "${tenantId}" is not a BYOK tenant; key import applies to custody "byok".`)
    const { raw, config } = await this.#providers.get(tenant.key.provider)
    if (config.kind !== 'local') throw new DomicileError('ERR_INPUT_INVALID', `Key import runs through the local provider; "${tenant.key.provider}" is ${config.kind}.`)
    return { tenant, local: raw as LocalKeyProvider }
  }

  async createImportJob(tenantId: string): Promise<ImportJob> {
    const { tenant, local } = await this.#localFor(tenantId)
    const job = await local.createImportJob(tenant.key!.keyId)
    await this.#directory.audit({ tenantId, type: 'key.import-job', outcome: 'ok', detail: { keyId: tenant.key!.keyId } }).catch(() => undefined)
    return job
  }

  async importKeyMaterial(tenantId: string, encryptedMaterial: Uint8Array, importToken: string): Promise<TenantRecord> {
    const { tenant, local } = await this.#localFor(tenantId)
    try {
      await local.importKeyMaterial(tenant.key!.keyId, { encryptedMaterial, importToken })
    } catch (e) {
      await this.#directory.audit({ tenantId, type: 'key.import', outcome: 'denied', detail: { code: isDomicileError(e) ? e.code : 'ERR_UNKNOWN' } }).catch(() => undefined)
      throw e
    }
    const audit = { type: 'key.import', outcome: 'ok', detail: { keyId: tenant.key!.keyId } }
    if (tenant.keyState === 'pending-import') return this.#directory.update(tenantId, { keyState: 'enabled' }, 'key:imported', undefined, audit)
    return this.#directory.update(tenantId, {}, 'key:imported', undefined, audit)
  }

  async revoke(tenantId: string, actor?: string): Promise<TenantRecord> {
    const t = notDestroyed(await this.#directory.get(tenantId))
    if (!t.key) throw new DomicileError('ERR_KEY_NOT_FOUND', `Tenant "${tenantId}" has no key to revoke.`)
    // The state change and its audit record commit together, or neither does.
    return this.#directory.update(tenantId, { keyState: 'revoked' }, 'key:revoke', undefined,
      { type: 'key.revoke', outcome: 'ok', ...(actor ? { actor } : {}), detail: { custody: t.key.custody, provider: t.key.provider } })
  }

  async restore(tenantId: string, actor?: string): Promise<TenantRecord> {
    const t = notDestroyed(await this.#directory.get(tenantId))
    if (!t.key) throw new DomicileError('ERR_KEY_NOT_FOUND', `Tenant "${tenantId}" has no key to restore.`)
    if (t.keyState !== 'revoked') return t
    return this.#directory.update(tenantId, { keyState: 'enabled' }, 'key:restore', undefined,
      { type: 'key.restore', outcome: 'ok', ...(actor ? { actor } : {}), detail: { custody: t.key.custody, provider: t.key.provider } })
  }

  async status(tenantId: string): Promise<TenantKeyStatus> {
    const t = await this.#directory.get(tenantId)
    const base = { tenant: t.id, custody: t.key?.custody ?? null, provider: t.key?.provider ?? null, keyId: t.key?.keyId ?? null }
    if (!t.key) return { ...base, state: 'unavailable', providerState: 'none' }
    let providerState: string
    try {
      providerState = (await (await this.#providers.runtime(t.key.provider)).keyStatus(t.key.keyId)).state
    } catch (e) {
      providerState = isDomicileError(e, 'ERR_KEY_REVOKED') ? 'disabled' : isDomicileError(e, 'ERR_KEY_NOT_FOUND') ? 'not-found' : 'unavailable'
    }
    if (t.keyState === 'destroyed') return { ...base, state: 'destroyed', providerState }
    if (t.keyState === 'revoked') return { ...base, state: 'revoked', providerState }
    if (t.keyState === 'pending-import' || providerState === 'pending-import') return { ...base, state: 'pending-import', providerState }
    if (providerState === 'enabled') return { ...base, state: 'enabled', providerState }
    if (providerState === 'disabled' || providerState === 'deleted') return { ...base, state: 'revoked', providerState }
    return { ...base, state: 'unavailable', providerState }
  }

  async markDestroyed(tenantId: string, actor: string | undefined, detail: Readonly<Record<string, string | number>>): Promise<TenantRecord> {
    const t = await this.#directory.get(tenantId)
    /* Precondition: a destroyed tenant has a key binding. */
    if (!t.key) throw new DomicileError('ERR_KEY_NOT_FOUND', `Tenant "${tenantId}" has no key to destroy.`)
    if (t.keyState === 'destroyed') return t
    // The state change and its audit record commit together, or neither does.
    return this.#directory.update(tenantId, { keyState: 'destroyed' }, 'key:destroy', undefined,
      { type: 'key.destroy', outcome: 'ok', ...(actor ? { actor } : {}), detail: { custody: t.key.custody, provider: t.key.provider, keyId: t.key.keyId, ...detail } })
  }

  async destroyKeyEncryptionKeys(tenantId: string, keys: readonly KekRef[]): Promise<KekDestruction[]> {
    const others = (await this.#directory.list()).filter((t) => t.id !== tenantId && t.key !== null)
    const seen = new Set<string>()
    const out: KekDestruction[] = []
    for (const ref of keys) {
      const id = `${ref.provider}\u0000${ref.keyId}`
      if (seen.has(id)) continue
      seen.add(id)
      const { runtime, config } = await this.#providers.get(ref.provider)
      const base = { provider: ref.provider, keyId: ref.keyId, providerKind: config.kind }
      const sharedWith = others.filter((t) => t.key!.provider === ref.provider && t.key!.keyId === ref.keyId).length
      /* Precondition: a key-encryption key another tenant is bound to is never destroyed with this tenant's. */
      if (sharedWith > 0) {
        out.push({ ...base, outcome: 'shared', sharedWith })
        continue
      }
      if (config.kind === 'xks') {
        out.push({ ...base, outcome: 'not-held' })
        continue
      }
      if (!runtime.destroyKey) {
        out.push({ ...base, outcome: 'unsupported' })
        continue
      }
      try {
        const r = await runtime.destroyKey(ref.keyId)
        out.push({ ...base, outcome: r.state, ...(r.deletionDate ? { deletionDate: r.deletionDate.toISOString() } : {}) })
      } catch (e) {
        // An earlier run destroyed it and was interrupted before it could say so.
        if (!isDomicileError(e, 'ERR_KEY_NOT_FOUND')) throw e
        out.push({ ...base, outcome: 'already-gone' })
      }
    }
    return out
  }

  async deleteMaterial(tenantId: string, actor?: string): Promise<TenantRecord> {
    const { tenant } = await this.#localFor(tenantId)
    const binding = tenant.key!
    const { runtime } = await this.#providers.get(binding.provider)
    /* Precondition: the provider can delete imported key material. */
    if (!runtime.deleteKeyMaterial) throw new DomicileError('ERR_INPUT_INVALID', `Provider "${binding.provider}" cannot delete imported key material.`)
    await runtime.deleteKeyMaterial(binding.keyId)
    const audit = { type: 'key.delete-material', outcome: 'ok', ...(actor ? { actor } : {}), detail: { custody: binding.custody, provider: binding.provider, keyId: binding.keyId } }
    return this.#directory.update(tenantId, { keyState: 'pending-import' }, 'key:delete-material', undefined, audit)
  }

  async close(): Promise<void> {
    await this.#providers.close()
  }
}

/** Refuses any key administration on a destroyed key: destruction cannot be undone. */
function notDestroyed(t: TenantRecord): TenantRecord {
  /* Precondition: the tenant's key is not destroyed. */
  if (t.keyState === 'destroyed') {
    throw new DomicileError('ERR_KEY_DESTROYED', `The key of tenant "${t.id}" was destroyed; this cannot be undone. Its sealed fields cannot be recovered by anyone.`)
  }
  return t
}
