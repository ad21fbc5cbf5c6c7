/**
 * Length-prefixed encoding: the unambiguous way we turn several fields into one byte string
 * (AAD, HKDF info). Each part is written as a 4-byte big-endian length followed by its bytes, so
 * ("ab", "c") and ("a", "bc") can never encode to the same bytes. Strings are UTF-8.
 */

import { DomicileError } from '../errors.js'

export type LengthPrefixPart = string | Uint8Array

/** Largest part we encode (the length field is a uint32). */
const MAX_PART = 0xffff_ffff

function partLength(part: LengthPrefixPart): number {
  return typeof part === 'string' ? Buffer.byteLength(part, 'utf8') : part.byteLength
}

/** Number of bytes `encodeLengthPrefixed(parts)` produces. */
export function lengthPrefixedSize(parts: readonly LengthPrefixPart[]): number {
  let n = 0
  for (const p of parts) n += 4 + partLength(p)
  return n
}

/**
 * Writes one part (uint32 BE length, then bytes) into `target` at `offset`; returns the new offset.
 * The caller sizes `target` (see `lengthPrefixedSize`).
 */
export function writeLengthPrefixed(target: Buffer, offset: number, part: LengthPrefixPart): number {
  const len = partLength(part)
  /* Precondition: a part fits a uint32 length field. */
  if (len > MAX_PART) throw new DomicileError('ERR_INPUT_INVALID', 'A length-prefixed part is longer than 2^32-1 bytes. Shorten the identifier.')
  target.writeUInt32BE(len, offset)
  offset += 4
  if (typeof part === 'string') target.write(part, offset, len, 'utf8')
  else target.set(part, offset)
  return offset + len
}

/**
 * Concatenates `parts`, each preceded by its uint32 big-endian byte length.
 *
 * @example
 * encodeLengthPrefixed(['ab', 'c']).toString('hex') // '000000026162' + '0000000163'
 */
export function encodeLengthPrefixed(parts: readonly LengthPrefixPart[]): Buffer {
  const out = Buffer.alloc(lengthPrefixedSize(parts))
  let o = 0
  for (const p of parts) o = writeLengthPrefixed(out, o, p)
  return out
}
