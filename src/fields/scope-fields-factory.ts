/**
 * The seam between the data layer and field encryption: given a tenant and its open transaction,
 * produce the object that seals, indexes and reveals that tenant's sensitive fields.
 */
import type { TenantRecord } from '../control-plane/tenant-directory.js'
import type { FieldProtection } from '../data/field-protection.js'
import type { Revealer } from '../data/tenant-scope.js'
import type { TenantTransaction } from '../regions/router.js'

export interface ScopeFieldsFactory {
  forTransaction(tenant: TenantRecord, tx: TenantTransaction): (FieldProtection & Revealer) | undefined
}
