/**
 * Key administration as the control plane sees it: bind a key to a tenant (one provisioning step
 * per custody level), the BYOK import flow, and the kill switch (revoke / restore / status).
 */
import type { KeyBinding, TenantRecord } from '../control-plane/tenant-directory.js'
import type { Custody } from './key-provider.js'

export type TenantKeyState = 'enabled' | 'revoked' | 'pending-import' | 'unavailable'

export interface TenantKeyStatus {
  readonly tenant: string
  readonly custody: Custody | null
  readonly provider: string | null
  readonly keyId: string | null
  readonly state: TenantKeyState
  /** The provider's own view, when it could be asked. */
  readonly providerState?: string
}

export interface ProvisionRequest {
  readonly custody: Custody
  readonly provider?: string
  /** Existing key reference (HYOK key at the customer's proxy, KMS key ARN). */
  readonly keyId?: string
}

export interface ImportJob {
  readonly wrappingPublicKeyPem: string
  readonly importToken: string
  readonly expiresAt: Date
}

export interface KeyAdmin {
  /** Creates or binds the tenant's key-encryption key; returns the binding and its initial state. */
  provision(tenantId: string, req: ProvisionRequest): Promise<{ key: KeyBinding; keyState: 'enabled' | 'pending-import' }>
  createImportJob(tenantId: string): Promise<ImportJob>
  importKeyMaterial(tenantId: string, encryptedMaterial: Uint8Array, importToken: string): Promise<TenantRecord>
  revoke(tenantId: string, actor?: string): Promise<TenantRecord>
  restore(tenantId: string, actor?: string): Promise<TenantRecord>
  status(tenantId: string): Promise<TenantKeyStatus>
  close(): Promise<void>
}
