/**
 * Classifying engine errors: which ones mean "this store is gone" (fail closed with
 * ERR_REGION_UNAVAILABLE) and which are ordinary SQL errors. Messages never carry SQL parameters.
 */
import { DomicileError, isDomicileError } from '../../errors.js'
import { FROZEN_SQLSTATE } from '../tenant-context.js'

const UNAVAILABLE_NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'ENETUNREACH'])

/** True when the error means the connection or server is gone rather than the statement failed. */
export function isConnectionLoss(e: unknown): boolean {
  if (typeof e !== 'object' || e === null) return false
  const code = (e as { code?: unknown }).code
  if (typeof code === 'string') {
    if (UNAVAILABLE_NODE_CODES.has(code)) return true
    // SQLSTATE class 08 (connection exception), 57P01-57P03 (admin shutdown, crash, cannot connect now)
    if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03') return true
  }
  const msg = (e as { message?: unknown }).message
  return typeof msg === 'string' && /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|not queryable/i.test(msg)
}

export function regionUnavailable(name: string, description: string): DomicileError {
  return new DomicileError('ERR_REGION_UNAVAILABLE',
    `Store "${name}" (${description}) is unreachable. Requests for its tenants fail until it is back; other regions keep serving. Check the server and its connection settings.`)
}

/**
 * Maps a raw engine error to a DomicileError without copying its detail (which can contain row
 * values). The SQLSTATE and constraint name are kept: they identify, they don't reveal.
 */
export function mapStoreError(e: unknown, name: string, description: string): unknown {
  if (isDomicileError(e)) return e
  if (isConnectionLoss(e)) return regionUnavailable(name, description)
  const sqlState = typeof (e as { code?: unknown })?.code === 'string' ? (e as { code: string }).code : undefined
  const constraint = (e as { constraint?: unknown })?.constraint
  if (sqlState === FROZEN_SQLSTATE) {
    return new DomicileError('ERR_TENANT_MOVING', 'The tenant is in the final step of a move between regions (a write freeze of well under a second). Retry the request.')
  }
  if (sqlState === '23505') {
    return new DomicileError('ERR_CONFLICT', `A row with the same key already exists${typeof constraint === 'string' ? ` (constraint ${constraint})` : ''}. Use update, or choose another key.`)
  }
  if (sqlState === '42501') {
    const m = typeof (e as { message?: unknown })?.message === 'string' ? (e as { message: string }).message : ''
    // A row written for another tenant (WITH CHECK of the isolation policy): the caller's input.
    if (m.startsWith('new row violates row-level security policy')) {
      return new DomicileError('ERR_INPUT_INVALID', 'The statement was refused by the tenant isolation policy: a row must belong to the tenant of the scope.')
    }
    // Anything else is a privilege the role lacks (or Domicile's own refusal); such messages name
    // objects and privileges only, never values.
    const safe = /^(permission denied|must be |domicile: )/.test(m) ? `: ${m}` : ''
    return new DomicileError('ERR_PERMISSION_DENIED', `The statement was refused${safe}. Tenant scopes cannot change roles, the tenant context, or Domicile's key and audit records.`)
  }
  // Engine messages can quote values (e.g. invalid input syntax for type integer: "…"), so only
  // class 42 (syntax, undefined objects: identifiers, never parameters) keeps its text.
  const engineMessage = typeof (e as { message?: unknown })?.message === 'string' ? (e as { message: string }).message : ''
  const safe = sqlState?.startsWith('42') && engineMessage ? `: ${engineMessage}` : ''
  return new DomicileError('ERR_QUERY_FAILED', `The statement failed (SQLSTATE ${sqlState ?? 'unknown'})${safe}. The transaction is rolled back.`)
}
