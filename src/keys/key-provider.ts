/**
 * The key-provider seam: the one interface every key custody backend implements.
 *
 * A provider holds key-encryption keys (KEKs) and wraps / unwraps tenant data keys under them.
 * Providers stay short: length checks, context binding, deadlines and the audit trace live once in
 * `RuntimeKeyProvider` (runtime-key-provider.ts), which wraps every provider.
 *
 * Core code never imports a vendor SDK: pkcs11js, the AWS SDK and HTTP clients live only in their
 * own provider module under providers/, imported lazily.
 */

import type { AuditSink } from '../audit/audit-sink.js'

/** How much of the key the customer holds. */
export type Custody = 'kms' | 'byok' | 'hyok'

export type ProviderKind = 'local' | 'pkcs11' | 'xks' | 'aws-kms'

/**
 * What a wrapped key is bound to. Providers must authenticate it (AES-GCM AAD, KMS encryption
 * context, XKS additionalAuthenticatedData): a wrapped key unwrapped under any other context fails.
 * The region in the context is why a wrapped data key copied to another region's store does not
 * unwrap there.
 */
export interface WrapContext {
  readonly tenantId: string
  readonly region: string
  readonly dataKeyId: string
  /** 'data' for field data keys, 'index' for the blind-index root key. */
  readonly purpose: 'data' | 'index'
}

export interface WrapRequest {
  /** Provider-specific key-encryption-key id (the `keyId` of the tenant's binding). */
  readonly keyId: string
  /** 32 bytes. The runtime wrapper checks the length before the provider sees it. */
  readonly plaintextKey: Uint8Array
  readonly context: WrapContext
}

export interface WrappedKey {
  readonly keyId: string
  /** Opaque to everyone but the provider. Stored in the tenant's region store. */
  readonly ciphertext: Uint8Array
}

export interface UnwrapRequest {
  readonly keyId: string
  readonly ciphertext: Uint8Array
  readonly context: WrapContext
}

/**
 * - enabled: usable
 * - disabled: the holder turned it off (revoked); may come back
 * - pending-import: BYOK key created, customer material not imported yet
 * - deleted: key material gone (BYOK material deleted); re-import of the same material restores it
 * - unavailable: the provider could not be asked (network, HSM down)
 */
export type KeyState = 'enabled' | 'disabled' | 'pending-import' | 'deleted' | 'unavailable'

export interface KeyStatus {
  readonly keyId: string
  readonly state: KeyState
}

/** Every remote call has a deadline; the runtime wrapper always passes a signal. */
export interface OpOptions {
  readonly signal?: AbortSignal
  /**
   * Where the runtime wrapper records this one call, instead of its own sink (e.g. the audit log
   * of the tenant's region, in the transaction that needed the key). Providers ignore it.
   */
  readonly audit?: AuditSink
}

export interface CreateKeyRequest {
  /** Human label stored with the key (tenant id, typically). Not secret. */
  readonly label: string
  /** 'generate': the provider makes the key material (kms rung). 'import': BYOK, starts pending-import. */
  readonly origin: 'generate' | 'import'
}

/**
 * What `destroyKey` did. 'destroyed': the key material is gone at the provider now (local keystore
 * file overwritten and removed, PKCS#11 C_DestroyObject). 'pending-deletion': the provider deletes it
 * at `deletionDate` and refuses every use until then (AWS KMS ScheduleKeyDeletion; its holder can
 * still cancel the deletion at the provider before that date).
 */
export interface DestroyKeyResult {
  readonly keyId: string
  readonly state: 'destroyed' | 'pending-deletion'
  /** When a scheduled deletion takes effect ('pending-deletion' only). */
  readonly deletionDate?: Date
}

/**
 * Errors a provider throws are `DomicileError`s with these codes:
 * - ERR_KEY_REVOKED: the key is disabled or its material deleted (the kill switch)
 * - ERR_KEY_PENDING_IMPORT: BYOK key has no material yet
 * - ERR_KEY_NOT_FOUND: no such key id at this provider
 * - ERR_KEY_PROVIDER_UNAVAILABLE: timeout, unreachable, HSM/proxy error
 * - ERR_DECRYPTION_FAILED: unwrap failed for any other reason (wrong context, tampered) — opaque
 */
export interface KeyProvider {
  readonly kind: ProviderKind
  /** Instance name from config, e.g. "local", "hsm-eu", "acme-xks". */
  readonly name: string
  wrapKey(req: WrapRequest, opts?: OpOptions): Promise<WrappedKey>
  unwrapKey(req: UnwrapRequest, opts?: OpOptions): Promise<Uint8Array>
  keyStatus(keyId: string, opts?: OpOptions): Promise<KeyStatus>
  /** Providers that can mint keys (local, pkcs11, keyproxy-backed admin) implement this. */
  createKey?(req: CreateKeyRequest, opts?: OpOptions): Promise<{ keyId: string }>
  /**
   * Destroys the key-encryption key where the provider holds its material: irreversible, every key
   * wrapped under it stops unwrapping for good. Providers that hold no material (xks: the key lives
   * at the customer's proxy) do not implement it.
   */
  destroyKey?(keyId: string, opts?: OpOptions): Promise<DestroyKeyResult>
  /**
   * Deletes imported (BYOK) key material, as AWS KMS DeleteImportedKeyMaterial: the key stays, its
   * material is gone (state 'deleted'); only a re-import of the same material brings it back.
   */
  deleteKeyMaterial?(keyId: string, opts?: OpOptions): Promise<void>
  close?(): Promise<void>
}

/** Canonical, unambiguous byte encoding of a wrap context (used as AAD by providers). */
export function encodeWrapContext(ctx: WrapContext): Uint8Array {
  // JSON with a fixed key order; every field is a validated slug/id so no escaping surprises.
  return new TextEncoder().encode(
    JSON.stringify({ v: 1, tenant: ctx.tenantId, region: ctx.region, dek: ctx.dataKeyId, purpose: ctx.purpose }),
  )
}
