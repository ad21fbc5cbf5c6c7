/**
 * Wiring of key custody from config: provider registry (lazily created, runtime-wrapped), the
 * data-key cache, the keyring, field encryption and key administration. The keyring listens to
 * directory changes, so a revoke in any process drops this process's cached keys for the tenant.
 * Called only from the entry point.
 */
import type { DomicileConfig } from '../config/config-types.js'
import type { TenantDirectory } from '../control-plane/tenant-directory.js'
import { fieldEncryption } from '../fields/field-encryptor.js'
import type { ScopeFieldsFactory } from '../fields/scope-fields-factory.js'
import { DataKeyCache } from './data-key-cache.js'
import type { KeyAdmin } from './key-admin.js'
import { Keyring } from './keyring.js'
import { ProviderRegistry } from './provider-registry.js'
import { TenantKeyAdmin } from './tenant-key-admin.js'

export interface WiredKeys {
  readonly keys: KeyAdmin
  readonly fields: ScopeFieldsFactory
  readonly keyring: Keyring
  readonly providers: ProviderRegistry
}

export function wireKeys(config: DomicileConfig, directory: TenantDirectory): WiredKeys {
  const providers = new ProviderRegistry(config.keys.providers)
  const keyring = new Keyring({
    provider: (name) => providers.runtime(name),
    cache: new DataKeyCache(),
    cacheTtlMs: config.keys.cacheTtlMs,
    maxEncryptionsPerKey: config.keys.maxEncryptionsPerKey,
    reservationBlock: config.keys.reservationBlock,
  })
  directory.onChange((tenantId) => keyring.forgetTenant(tenantId))
  return { keys: new TenantKeyAdmin(providers, config.keys.defaults, directory), fields: fieldEncryption(keyring), keyring, providers }
}
