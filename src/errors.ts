/**
 * One error base class for the whole package, with a stable `code` union.
 *
 * Rules (see docs/ARCHITECTURE.md):
 * - Messages say what went wrong and what to do. They never carry parameter values, plaintext,
 *   key material or ciphertext.
 * - Decryption failures are a single opaque error (`ERR_DECRYPTION_FAILED`) with no `cause`,
 *   so that no caller can distinguish a bad tag from a bad key from a bad format: no oracle.
 * - `isDomicileError` uses a `Symbol.for` brand so two copies of the package still agree.
 */

export type DomicileErrorCode =
  // configuration and input
  | 'ERR_CONFIG_INVALID'
  | 'ERR_INPUT_INVALID'
  | 'ERR_SCHEMA_INVALID'
  | 'ERR_TABLE_UNKNOWN'
  | 'ERR_COLUMN_UNKNOWN'
  | 'ERR_QUERY_UNSUPPORTED'
  | 'ERR_NOT_MIGRATED'
  | 'ERR_CLOSED'
  // tenants and regions
  | 'ERR_TENANT_INVALID'
  | 'ERR_TENANT_UNKNOWN'
  | 'ERR_TENANT_EXISTS'
  | 'ERR_TENANT_SUSPENDED'
  /** Retryable: the tenant is in the short write freeze of a move between regions or cells. */
  | 'ERR_TENANT_MOVING'
  | 'ERR_REGION_UNKNOWN'
  /** A cell name that the region does not list (regions.R.cells). */
  | 'ERR_CELL_UNKNOWN'
  | 'ERR_REGION_UNAVAILABLE'
  | 'ERR_REGION_MISMATCH'
  | 'ERR_ROW_NOT_FOUND'
  | 'ERR_CONFLICT'
  | 'ERR_QUERY_FAILED'
  | 'ERR_PERMISSION_DENIED'
  // keys
  | 'ERR_KEY_NOT_FOUND'
  | 'ERR_KEY_REVOKED'
  | 'ERR_KEY_PENDING_IMPORT'
  | 'ERR_KEY_PROVIDER_UNAVAILABLE'
  | 'ERR_KEY_PROVIDER_UNKNOWN'
  | 'ERR_KEY_IMPORT_INVALID'
  | 'ERR_KEY_USAGE_EXHAUSTED'
  | 'ERR_KEY_INVALID'
  /** The tenant's key-encryption key was destroyed: irreversible. */
  | 'ERR_KEY_DESTROYED'
  // online operations
  /** Another operation (move, rotation, migration, destruction) is running for the same tenant or column. */
  | 'ERR_OPERATION_RUNNING'
  | 'ERR_OPERATION_NOT_FOUND'
  // crypto
  | 'ERR_DECRYPTION_FAILED'
  /** A signed document (residency report, shred certificate) does not verify: edited, or signed by another key. */
  | 'ERR_SIGNATURE_INVALID'
  /** An audit hash chain does not verify: a record was edited, deleted, inserted or reordered. */
  | 'ERR_AUDIT_CHAIN_BROKEN'
  /** `domicile lint` found a residency problem (personal data in a global table, a direct store-driver import). */
  | 'ERR_LINT_FAILED'
  // the HTTP service (src/service/)
  /** No or wrong credentials. */
  | 'ERR_UNAUTHORIZED'
  /** Credentials are valid but lack the permission the request needs. */
  | 'ERR_FORBIDDEN'
  /** No admin token is configured: the admin API is off, never open. */
  | 'ERR_ADMIN_DISABLED'
  | 'ERR_PAYLOAD_TOO_LARGE'
  /** The request did not finish within the service's deadline. */
  | 'ERR_TIMEOUT'
  /** No such route. */
  | 'ERR_NOT_FOUND'
  /** Not a DomicileError: a bug or an unexpected failure; details are never sent. */
  | 'ERR_UNEXPECTED'

const BRAND = Symbol.for('domicile.error')

export class DomicileError extends Error {
  readonly code: DomicileErrorCode
  /** Where in an input (config path, column name) the problem is; never a value. */
  readonly path?: string

  constructor(code: DomicileErrorCode, message: string, options?: ErrorOptions & { path?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'DomicileError'
    this.code = code
    if (options?.path !== undefined) this.path = options.path
    Object.defineProperty(this, BRAND, { value: true })
  }

  toJSON(): { name: string; code: DomicileErrorCode; message: string; path?: string } {
    return { name: this.name, code: this.code, message: this.message, ...(this.path === undefined ? {} : { path: this.path }) }
  }
}

export function isDomicileError(e: unknown, code?: DomicileErrorCode): e is DomicileError {
  return typeof e === 'object' && e !== null && (e as Record<symbol, unknown>)[BRAND] === true &&
    (code === undefined || (e as DomicileError).code === code)
}

/**
 * The one decryption failure. It has no cause and a fixed message: callers learn that opening
 * failed and nothing about why.
 */
export class DecryptionFailedError extends DomicileError {
  constructor() {
    super('ERR_DECRYPTION_FAILED', 'Decryption failed. The value is corrupt, was moved from another row, column or tenant, or its key is gone.')
    this.name = 'DecryptionFailedError'
  }
}
