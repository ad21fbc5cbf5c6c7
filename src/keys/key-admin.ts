/**
 * Key administration as the control plane sees it: bind a key to a tenant (one provisioning step
 * per custody level), the BYOK import flow, the kill switch (revoke / restore / status), and the
 * irreversible steps of shredding (destroy the key-encryption keys, delete imported material).
 */
import type { KeyBinding, TenantRecord } from '../control-plane/tenant-directory.js'
import type { Custody, ProviderKind } from './key-provider.js'

export type TenantKeyState = 'enabled' | 'revoked' | 'pending-import' | 'destroyed' | 'unavailable'

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

/** A key-encryption key as a tenant's binding or its wrapped data keys name it. */
export interface KekRef {
  readonly provider: string
  readonly keyId: string
}

/**
 * What a destruction did to one key-encryption key:
 * - destroyed: its material is gone at the provider now (local keystore, PKCS#11 C_DestroyObject);
 * - pending-deletion: the provider deletes it at `deletionDate` and refuses it until then (AWS KMS);
 * - not-held: we hold no material (HYOK: the key lives at the customer's key service);
 * - shared: another tenant's binding uses the same key, so it was kept (only this tenant's wrapped
 *   data keys were destroyed);
 * - already-gone: the provider no longer knows the key (an earlier, interrupted run destroyed it);
 * - unsupported: the provider cannot destroy keys (material stays; the wrapped copies are what is destroyed).
 */
export interface KekDestruction extends KekRef {
  readonly providerKind: ProviderKind
  readonly outcome: 'destroyed' | 'pending-deletion' | 'not-held' | 'shared' | 'already-gone' | 'unsupported'
  /** ISO time of a scheduled deletion ('pending-deletion'). */
  readonly deletionDate?: string
  /** How many other tenants are bound to the key ('shared'). */
  readonly sharedWith?: number
}

export interface KeyAdmin {
  /** Creates or binds the tenant's key-encryption key; returns the binding and its initial state. */
  provision(tenantId: string, req: ProvisionRequest): Promise<{ key: KeyBinding; keyState: 'enabled' | 'pending-import' }>
  createImportJob(tenantId: string): Promise<ImportJob>
  importKeyMaterial(tenantId: string, encryptedMaterial: Uint8Array, importToken: string): Promise<TenantRecord>
  revoke(tenantId: string, actor?: string): Promise<TenantRecord>
  restore(tenantId: string, actor?: string): Promise<TenantRecord>
  status(tenantId: string): Promise<TenantKeyStatus>
  /**
   * The point of no return of `key destroy`: key state 'destroyed' (every process refuses the key from
   * then on), with its `key.destroy` audit record in the same control-plane transaction. Idempotent.
   */
  markDestroyed(tenantId: string, actor: string | undefined, detail: Readonly<Record<string, string | number>>): Promise<TenantRecord>
  /** Destroys each key-encryption key where we hold its material, unless another tenant is bound to it. */
  destroyKeyEncryptionKeys(tenantId: string, keys: readonly KekRef[]): Promise<KekDestruction[]>
  /**
   * The customer-side deletion of imported BYOK material (local provider), as AWS KMS
   * DeleteImportedKeyMaterial: the key stays, its material is gone, the tenant's key state becomes
   * 'pending-import'. Sealed data is unreadable until the customer re-imports the SAME material.
   */
  deleteMaterial(tenantId: string, actor?: string): Promise<TenantRecord>
  close(): Promise<void>
}
