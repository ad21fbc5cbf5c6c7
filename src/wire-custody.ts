/**
 * Wiring of key custody and field encryption from config, above both `keys/` and `fields/`:
 * the provider registry (lazily created, runtime-wrapped, audited: calls made for a tenant
 * transaction in the tenant's region, other calls in the control plane), the data-key cache, the
 * keyring (which checks the directory's current entry at every key use and drops a tenant's cached
 * keys when its entry changes in any process), field encryption and key administration.
 * Called only from the entry point (`createDomicile`).
 */
import { controlPlaneAuditSink } from './audit/control-plane-audit-sink.js'
import type { DomicileConfig } from './config/config-types.js'
import { KeyServiceStore } from './control-plane/key-services.js'
import type { TenantDirectory } from './control-plane/tenant-directory.js'
import type { StoreDriver } from './regions/store-driver.js'
import { fieldEncryption } from './fields/field-encryptor.js'
import type { ScopeFieldsFactory } from './fields/scope-fields-factory.js'
import { DataKeyCache } from './keys/data-key-cache.js'
import type { KeyAdmin } from './keys/key-admin.js'
import { Keyring } from './keys/keyring.js'
import { ProviderRegistry } from './keys/provider-registry.js'
import { TenantKeyAdmin } from './keys/tenant-key-admin.js'

export interface WiredCustody {
  readonly keys: KeyAdmin
  readonly fields: ScopeFieldsFactory
  readonly keyring: Keyring
  readonly providers: ProviderRegistry
}

export function wireCustody(config: DomicileConfig, directory: TenantDirectory, controlPlane: StoreDriver): WiredCustody {
  // Provider calls made for a tenant transaction are recorded in the tenant's region (the keyring
  // passes that sink per call); the others (provisioning, status, import) in the control plane.
  const providers = new ProviderRegistry(config.keys.providers, { audit: controlPlaneAuditSink(directory) })
  const keyring = new Keyring({
    provider: (name) => providers.runtime(name),
    cache: new DataKeyCache(),
    directory,
    cacheTtlMs: config.keys.cacheTtlMs,
    maxEncryptionsPerKey: config.keys.maxEncryptionsPerKey,
    reservationBlock: config.keys.reservationBlock,
  })
  directory.onChange((tenantId) => keyring.forgetTenant(tenantId))
  // Customers' own key services (HYOK), registered per tenant in the control plane, credentials sealed
  // under the provider-managed default key (docs/ONBOARDING.md).
  providers.useKeyServices(new KeyServiceStore(controlPlane, { sealProvider: config.keys.defaults.kms }))
  providers.followDirectory(directory) // a changed entry re-resolves the tenant's key service (update-key-service)
  return { keys: new TenantKeyAdmin(providers, config.keys.defaults, directory), fields: fieldEncryption(keyring), keyring, providers }
}
