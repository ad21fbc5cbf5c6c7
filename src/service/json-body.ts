/**
 * JSON in and out of the HTTP service: a request body that must be one JSON object (text without
 * NUL characters, which PostgreSQL text cannot store), and rows serialised for a response (sealed
 * values as "[sealed]" through their own toJSON, bigints as strings, bytes as \x hex like the CLI).
 */
import type { Context } from 'hono'
import { DomicileError } from '../errors.js'

/** The request body as a JSON object; ERR_INPUT_INVALID otherwise. Never echoes the body. */
export async function jsonObjectBody(c: Context): Promise<Record<string, unknown>> {
  let v: unknown
  try {
    v = JSON.parse(await c.req.text())
  } catch {
    throw new DomicileError('ERR_INPUT_INVALID', 'The request body is not valid JSON. Send one JSON object with Content-Type: application/json.')
  }
  /* Precondition: the body is one JSON object. */
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new DomicileError('ERR_INPUT_INVALID', 'The request body must be one JSON object (column or field -> value).')
  }
  for (const [k, x] of Object.entries(v)) {
    /* Precondition: text values hold no NUL character. */
    if (typeof x === 'string' && x.includes('\u0000')) {
      throw new DomicileError('ERR_INPUT_INVALID', `The value of "${k}" contains a NUL character (\\u0000), which a text column cannot store. Remove it.`, { path: k })
    }
  }
  return v as Record<string, unknown>
}

/** JSON text for a response body. */
export function toResponseJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => {
    if (typeof x === 'bigint') return x.toString()
    if (x instanceof Uint8Array) return `\\x${Buffer.from(x.buffer, x.byteOffset, x.byteLength).toString('hex')}`
    return x
  })
}

/** A JSON response with the service's serialisation. */
export function json(c: Context, v: unknown, status: 200 | 201 = 200): Response {
  return c.body(toResponseJson(v), status, { 'Content-Type': 'application/json; charset=utf-8' })
}
