/**
 * Key administration for tenants: the one provisioning step per custody level, the BYOK import
 * flow, and our side of the kill switch. Revoke and restore are directory changes: they reach
 * every running process through the control plane (LISTEN/NOTIFY push, change-log polling as the
 * fallback), which drops the tenant's cached data keys and refuses its key from then on.
 */
import type { KeyBinding, TenantDirectory, TenantRecord } from '../control-plane/tenant-directory.js'
import { DomicileError, isDomicileError } from '../errors.js'
import type { ImportJob, KeyAdmin, ProvisionRequest, TenantKeyStatus } from './key-admin.js'
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
    if (!['kms', 'byok', 'hyok'].includes(req.custody)) throw new DomicileError('ERR_INPUT_INVALID', 'custody: expected "kms" | "byok" | "hyok".')
    const name = req.provider ?? this.#defaults[req.custody]
    if (!name) {
      throw new DomicileError('ERR_KEY_PROVIDER_UNKNOWN', `No provider is configured for custody "${req.custody}". Add one to keys.providers (an "xks" provider for hyok) or pass --provider.`)
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
    const tenant = await this.#directory.get(tenantId)
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
    const t = await this.#directory.get(tenantId)
    if (!t.key) throw new DomicileError('ERR_KEY_NOT_FOUND', `Tenant "${tenantId}" has no key to revoke.`)
    // The state change and its audit record commit together, or neither does.
    return this.#directory.update(tenantId, { keyState: 'revoked' }, 'key:revoke', undefined,
      { type: 'key.revoke', outcome: 'ok', ...(actor ? { actor } : {}), detail: { custody: t.key.custody, provider: t.key.provider } })
  }

  async restore(tenantId: string, actor?: string): Promise<TenantRecord> {
    const t = await this.#directory.get(tenantId)
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
      providerState = isDomicileError(e, 'ERR_KEY_REVOKED') ? 'disabled' : 'unavailable'
    }
    if (t.keyState === 'revoked') return { ...base, state: 'revoked', providerState }
    if (t.keyState === 'pending-import' || providerState === 'pending-import') return { ...base, state: 'pending-import', providerState }
    if (providerState === 'enabled') return { ...base, state: 'enabled', providerState }
    if (providerState === 'disabled' || providerState === 'deleted') return { ...base, state: 'revoked', providerState }
    return { ...base, state: 'unavailable', providerState }
  }

  async close(): Promise<void> {
    await this.#providers.close()
  }
}
