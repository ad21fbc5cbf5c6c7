/**
 * The keystore seam of the reference key proxy: where the customer's AES-256 keys live and where
 * AES-GCM runs. The proxy (keyproxy-server.ts) speaks XKS on the outside and calls this inside; key
 * bytes never cross this interface, only plaintext to seal and ciphertext to open.
 *
 * Implementations: FileKeystore (file-keystore.ts, keys sealed under a master key file) and
 * Pkcs11Keystore (pkcs11-keystore.ts, keys inside an HSM token).
 *
 * Errors are DomicileErrors with these codes, which the proxy maps to XKS error names:
 * - ERR_KEY_NOT_FOUND            -> KeyNotFoundException (404)
 * - ERR_KEY_REVOKED              -> InvalidStateException (400): the key is disabled
 * - ERR_DECRYPTION_FAILED        -> InvalidCiphertextException (400): tag check failed
 * - anything else                -> InternalException (500)
 */

export type ProxyKeyState = 'enabled' | 'disabled' | 'missing'

export interface GcmSealed {
  readonly iv: Uint8Array
  readonly ciphertext: Uint8Array
  readonly tag: Uint8Array
}

export interface ProxyKeystore {
  /** Vendor of the key manager, for GetHealthStatus (`ekmVendor`). */
  readonly vendor: string
  /** Model of the key manager, for GetHealthStatus (`ekmFleetDetails[].model`). */
  readonly model: string
  /** Creates a new enabled AES-256 key and returns its id (a valid XKS external key id). */
  createKey(label?: string): Promise<string>
  /** Current state; read fresh from the store on every call. */
  getState(keyId: string): Promise<ProxyKeyState>
  /** Enables or disables a key. Throws ERR_KEY_NOT_FOUND for an unknown id. */
  setEnabled(keyId: string, enabled: boolean): Promise<void>
  /** AES-256-GCM seal with a fresh 96-bit IV and a 128-bit tag. Checks the key's state first. */
  encrypt(keyId: string, plaintext: Uint8Array, aad: Uint8Array): Promise<GcmSealed>
  /** AES-256-GCM open. Checks the key's state first. Tag failure -> ERR_DECRYPTION_FAILED. */
  decrypt(keyId: string, iv: Uint8Array, ciphertext: Uint8Array, tag: Uint8Array, aad: Uint8Array): Promise<Uint8Array>
  /** Deep health check: proves the store can run a cryptographic operation. Throws if not. */
  healthCheck?(): Promise<void>
  close?(): Promise<void>
}
