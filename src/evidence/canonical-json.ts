/**
 * Canonical JSON for signed evidence: object keys sorted by code point, no insignificant white
 * space, numbers as JSON.stringify writes them. Two documents with the same content serialize to
 * the same bytes, so a signature over them survives re-formatting and detects any edit.
 */
import { DomicileError } from '../errors.js'

/**
 * @example
 * canonicalJson({ b: 1, a: [true, null] }) // '{"a":[true,null],"b":1}'
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'number') {
    /* Precondition: numbers in evidence are finite. */
    if (!Number.isFinite(value)) throw new DomicileError('ERR_INPUT_INVALID', 'Signed evidence holds finite numbers only.')
    return JSON.stringify(value)
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (typeof value === 'object') {
    const keys = Object.keys(value as object).filter((k) => (value as Record<string, unknown>)[k] !== undefined).sort()
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(',')}}`
  }
  throw new DomicileError('ERR_INPUT_INVALID', `Signed evidence cannot hold a value of type ${typeof value}.`)
}
