/**
 * Wiring of key custody from config: provider instances (lazily created), the runtime wrapper,
 * the data-key cache, the keyring and field encryption. Called only from the entry point.
 */
import type { DomicileConfig } from '../config/config-types.js'
import type { TenantDirectory } from '../control-plane/tenant-directory.js'
import type { ScopeFieldsFactory } from '../fields/scope-fields-factory.js'
import type { KeyAdmin } from './key-admin.js'

export function wireKeys(_config: DomicileConfig, _directory: TenantDirectory): { keys?: KeyAdmin; fields?: ScopeFieldsFactory } {
  return {}
}
