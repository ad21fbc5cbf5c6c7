/**
 * How the HTTP service answers an error: `{ "error": { "code", "message" } }` with a status decided
 * here, in one place, from the stable error code. DomicileErrors keep their code and message (the
 * library's messages never carry parameter values, plaintext or key material); anything else is a
 * 500 `ERR_UNEXPECTED` with a generic message. Never a stack trace, a cause or a `path`.
 */
import { DomicileError, isDomicileError, type DomicileErrorCode } from '../errors.js'

/** A DomicileError raised by the HTTP layer itself (auth, limits, routing). */
export function serviceError(code: DomicileErrorCode, message: string): DomicileError {
  return new DomicileError(code, message)
}

const STATUS: Readonly<Record<DomicileErrorCode, number>> = {
  // input
  ERR_INPUT_INVALID: 400,
  ERR_CONFIG_INVALID: 400,
  ERR_SCHEMA_INVALID: 400,
  ERR_TENANT_INVALID: 400,
  ERR_COLUMN_UNKNOWN: 400,
  ERR_QUERY_UNSUPPORTED: 400,
  ERR_REGION_UNKNOWN: 400,
  ERR_CELL_UNKNOWN: 400,
  ERR_KEY_PROVIDER_UNKNOWN: 400,
  ERR_KEY_IMPORT_INVALID: 400,
  // not found
  ERR_TABLE_UNKNOWN: 404,
  ERR_TENANT_UNKNOWN: 404,
  ERR_ROW_NOT_FOUND: 404,
  ERR_OPERATION_NOT_FOUND: 404,
  ERR_NOT_FOUND: 404,
  // state conflicts
  ERR_TENANT_EXISTS: 409,
  ERR_CONFLICT: 409,
  ERR_OPERATION_RUNNING: 409,
  ERR_KEY_NOT_FOUND: 409,
  ERR_KEY_PENDING_IMPORT: 409,
  // the tenant or its key is locked by an operator or its customer
  ERR_TENANT_SUSPENDED: 423,
  ERR_KEY_REVOKED: 423,
  ERR_KEY_DESTROYED: 410,
  // auth
  ERR_UNAUTHORIZED: 401,
  ERR_FORBIDDEN: 403,
  ERR_ADMIN_DISABLED: 403,
  ERR_PERMISSION_DENIED: 403,
  ERR_PAYLOAD_TOO_LARGE: 413,
  // retryable: something we depend on is down or busy
  ERR_TENANT_MOVING: 503,
  ERR_REGION_UNAVAILABLE: 503,
  ERR_KEY_PROVIDER_UNAVAILABLE: 503,
  ERR_KEY_USAGE_EXHAUSTED: 503,
  ERR_NOT_MIGRATED: 503,
  ERR_CLOSED: 503,
  ERR_TIMEOUT: 503,
  // our fault or an alarm
  ERR_REGION_MISMATCH: 500,
  ERR_QUERY_FAILED: 500,
  ERR_KEY_INVALID: 500,
  ERR_DECRYPTION_FAILED: 500,
  ERR_SIGNATURE_INVALID: 422,
  ERR_LINT_FAILED: 422,
  ERR_AUDIT_CHAIN_BROKEN: 500,
  ERR_UNEXPECTED: 500,
}

/** Codes a client may retry after a short wait (a `Retry-After` header goes with them). */
const RETRYABLE: ReadonlySet<string> = new Set(['ERR_TENANT_MOVING', 'ERR_REGION_UNAVAILABLE', 'ERR_KEY_PROVIDER_UNAVAILABLE', 'ERR_TIMEOUT', 'ERR_CLOSED'])

/** The HTTP status for an error code (500 for a code this table does not know). */
export function statusFor(code: string): number {
  return Object.hasOwn(STATUS, code) ? STATUS[code as DomicileErrorCode] : 500
}

export interface ErrorBody {
  readonly error: { readonly code: string; readonly message: string }
}

export interface ErrorAnswer {
  readonly status: number
  readonly body: ErrorBody
  readonly headers: Readonly<Record<string, string>>
}

const UNEXPECTED = 'The service failed unexpectedly. The error was logged without request data; retry, and report it if it persists.'

/** The answer for any thrown value. Only the code and the library's own message leave the process. */
export function errorAnswer(e: unknown): ErrorAnswer {
  const code: string = isDomicileError(e) ? e.code : 'ERR_UNEXPECTED'
  const message = isDomicileError(e) ? e.message : UNEXPECTED
  const status = statusFor(code)
  const headers: Record<string, string> = {}
  if (code === 'ERR_UNAUTHORIZED') headers['WWW-Authenticate'] = 'Bearer realm="domicile"'
  if (RETRYABLE.has(code)) headers['Retry-After'] = '1'
  return { status, body: { error: { code, message } }, headers }
}
