/**
 * The keystore seam of the reference key proxy: where the customer's keys live and where AES-GCM
 * runs. The proxy (keyproxy-server.ts) speaks XKS on the outside and calls this inside; key bytes
 * never cross this interface, only plaintext to seal and ciphertext to open.
 *
 * Implementations: FileKeystore (file-keystore.ts, keys sealed under a master key file) and
 * Pkcs11Keystore (pkcs11-keystore.ts, keys inside an HSM token).
 *
 * A key has a spec and a usage. XKS v1 encrypts and decrypts only with AES_256 keys; a key may be
 * restricted to ENCRYPT or DECRYPT (or neither), and keys of another spec may exist in the store.
 * `encrypt`/`decrypt` enforce both themselves.
 *
 * Errors are DomicileErrors with these codes, which the proxy maps to XKS error names:
 * - ERR_KEY_NOT_FOUND            -> KeyNotFoundException (404)
 * - ERR_KEY_REVOKED              -> InvalidStateException (400): the key is disabled
 * - ERR_KEY_INVALID              -> InvalidKeyUsageException (400): wrong spec, or usage not allowed
 * - ERR_DECRYPTION_FAILED        -> InvalidCiphertextException (400): tag check failed
 * - anything else                -> InternalException (500)
 */

export type ProxyKeyState = 'enabled' | 'disabled' | 'missing'

/** AES_256 is the XKS key spec; the file keystore can also hold AES_128 keys (refused for XKS use). */
export type ProxyKeySpec = 'AES_256' | 'AES_128'
export type ProxyKeyUsage = 'ENCRYPT' | 'DECRYPT'

export const PROXY_KEY_SPECS: readonly ProxyKeySpec[] = ['AES_256', 'AES_128']
export const FULL_USAGE: readonly ProxyKeyUsage[] = ['ENCRYPT', 'DECRYPT']

export interface ProxyKeyInfo {
  readonly state: 'enabled' | 'disabled'
  readonly keySpec: ProxyKeySpec
  readonly keyUsage: readonly ProxyKeyUsage[]
}

export interface CreateProxyKeyOptions {
  /** Human label stored with the key. Not secret. */
  readonly label?: string
  /** Default AES_256. */
  readonly keySpec?: ProxyKeySpec
  /** Default ['ENCRYPT', 'DECRYPT']; [] makes a key that can do neither. */
  readonly keyUsage?: readonly ProxyKeyUsage[]
}

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
  /** Creates a new enabled key and returns its id (a valid XKS external key id). */
  createKey(opts?: CreateProxyKeyOptions): Promise<string>
  /** Current state; read fresh from the store on every call. */
  getState(keyId: string): Promise<ProxyKeyState>
  /** State, spec and usage, read fresh; undefined for an unknown key. */
  describe(keyId: string): Promise<ProxyKeyInfo | undefined>
  /** Enables or disables a key. Throws ERR_KEY_NOT_FOUND for an unknown id. */
  setEnabled(keyId: string, enabled: boolean): Promise<void>
  /** AES-256-GCM seal with a fresh 96-bit IV and a 128-bit tag. Checks state, spec and ENCRYPT usage first. */
  encrypt(keyId: string, plaintext: Uint8Array, aad: Uint8Array): Promise<GcmSealed>
  /** AES-256-GCM open. Checks state, spec and DECRYPT usage first. Tag failure -> ERR_DECRYPTION_FAILED. */
  decrypt(keyId: string, iv: Uint8Array, ciphertext: Uint8Array, tag: Uint8Array, aad: Uint8Array): Promise<Uint8Array>
  /** Deep health check: proves the store can run a cryptographic operation. Throws if not. */
  healthCheck?(): Promise<void>
  close?(): Promise<void>
}

/** Validates create options; returns the normalised spec and usage, or a problem in words. */
export function normaliseKeyOptions(o: CreateProxyKeyOptions): { keySpec: ProxyKeySpec; keyUsage: ProxyKeyUsage[] } | string {
  const keySpec = o.keySpec ?? 'AES_256'
  if (!PROXY_KEY_SPECS.includes(keySpec)) return `keySpec must be one of ${PROXY_KEY_SPECS.join(', ')}`
  const usage = o.keyUsage ?? FULL_USAGE
  if (!Array.isArray(usage) || usage.some((u) => !FULL_USAGE.includes(u))) return 'keyUsage may hold only ENCRYPT and DECRYPT'
  return { keySpec, keyUsage: FULL_USAGE.filter((u) => usage.includes(u)) }
}
