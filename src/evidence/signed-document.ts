/**
 * Signed evidence documents: `{ payload, signature: { alg: 'Ed25519', keyId, value } }`, where the
 * signature covers the canonical JSON of `{ kind, payload }` (src/evidence/canonical-json.ts). A
 * document of one kind cannot be passed off as another, and any edit of the payload, the kind or
 * the signature fails verification.
 */
import { sign, verify, type KeyObject } from 'node:crypto'
import { DomicileError } from '../errors.js'
import { canonicalJson } from './canonical-json.js'
import { keyIdOf, type SigningKey } from './signing-key.js'

export interface SignedDocument<P = Record<string, unknown>> {
  readonly kind: string
  readonly payload: P
  readonly signature: { readonly alg: 'Ed25519'; readonly keyId: string; readonly value: string }
}

const message = (kind: string, payload: unknown) => Buffer.from(canonicalJson({ kind, payload }), 'utf8')

/**
 * @example
 * const doc = signDocument(key, 'domicile.shred-certificate/v1', { tenant: 'acme', ... })
 */
export function signDocument<P>(key: SigningKey, kind: string, payload: P): SignedDocument<P> {
  const value = sign(null, message(kind, payload), key.privateKey).toString('base64')
  return { kind, payload, signature: { alg: 'Ed25519', keyId: key.keyId, value } }
}

/** Why a document did not verify; `ok` when it did. */
export type VerifyResult = { readonly ok: true; readonly keyId: string } | { readonly ok: false; readonly reason: string }

/** Verifies a parsed document against a public key (and, if given, the expected kind). */
export function verifyDocument(doc: unknown, publicKey: KeyObject, expectedKind?: string): VerifyResult {
  if (typeof doc !== 'object' || doc === null) return { ok: false, reason: 'not a signed document (expected a JSON object)' }
  const d = doc as Partial<SignedDocument>
  if (typeof d.kind !== 'string' || typeof d.payload !== 'object' || d.payload === null || typeof d.signature !== 'object' || d.signature === null) {
    return { ok: false, reason: 'not a signed document (expected kind, payload and signature)' }
  }
  if (expectedKind !== undefined && d.kind !== expectedKind) return { ok: false, reason: `a "${d.kind}" document, expected "${expectedKind}"` }
  const s = d.signature
  if (s.alg !== 'Ed25519' || typeof s.value !== 'string' || typeof s.keyId !== 'string') return { ok: false, reason: 'unsupported or malformed signature' }
  const keyId = keyIdOf(publicKey)
  if (s.keyId !== keyId) return { ok: false, reason: `signed by key ${s.keyId}, not by this key (${keyId})` }
  let ok = false
  try {
    ok = verify(null, message(d.kind, d.payload), publicKey, Buffer.from(s.value, 'base64'))
  } catch (e) {
    if (!(e instanceof Error)) throw e
    ok = false
  }
  return ok ? { ok: true, keyId } : { ok: false, reason: 'the signature does not match the content: the document was edited or damaged' }
}

/** Parses JSON text into a document or throws ERR_INPUT_INVALID (the file is not JSON). */
export function parseDocument(text: string): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch {
    throw new DomicileError('ERR_INPUT_INVALID', 'The file is not JSON. Pass the signed document as written.')
  }
}
