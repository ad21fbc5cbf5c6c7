/**
 * Bearer tokens of the HTTP service: reading `Authorization: Bearer <token>` and comparing a token
 * with a configured secret in constant time. Both sides are hashed with SHA-256 first, so the
 * comparison takes the same time whatever the lengths and wherever the first difference is.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { DomicileError } from '../errors.js'

/** Configured secrets (admin token, metrics token) are at least this long. */
export const MIN_TOKEN_LENGTH = 16

/** The token of an `Authorization: Bearer ...` header; undefined when absent or another scheme. */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined
  const m = /^Bearer[ ]+([\x21-\x7e]+)[ ]*$/i.exec(header)
  return m ? m[1] : undefined
}

/** A configured secret, checked once: undefined (feature off) or long enough. */
export function configuredToken(value: string | undefined, name: string): string | undefined {
  if (value === undefined || value === '') return undefined
  /* Precondition: a configured bearer secret is long enough not to be guessed. */
  if (value.length < MIN_TOKEN_LENGTH || !/^[\x21-\x7e]+$/.test(value)) {
    throw new DomicileError('ERR_CONFIG_INVALID', `${name}: use at least ${MIN_TOKEN_LENGTH} printable characters without spaces, e.g. the output of "openssl rand -hex 32".`, { path: name })
  }
  return value
}

/** Constant-time equality of a presented token and the configured one. */
export function tokenMatches(given: string | undefined, expected: string): boolean {
  const a = createHash('sha256').update(given ?? '').digest()
  const b = createHash('sha256').update(expected).digest()
  return timingSafeEqual(a, b) && given !== undefined
}
