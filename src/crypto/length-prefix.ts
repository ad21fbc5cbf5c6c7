/**
 * Length-prefixed encoding: the unambiguous way we turn several fields into one byte string
 * (AAD, HKDF info). Each part is written as a 4-byte big-endian length followed by its bytes, so
 * ("ab", "c") and ("a", "bc") can never encode to the same bytes. Strings are UTF-8.
 */

export type LengthPrefixPart = string | Uint8Array

function partLength(part: LengthPrefixPart): number {
  return typeof part === 'string' ? Buffer.byteLength(part, 'utf8') : part.byteLength
}

/**
 * Concatenates `parts`, each preceded by its uint32 big-endian byte length. (A part cannot exceed
 * the uint32 range: Node buffers and strings are shorter than 2^32 bytes.)
 *
 * @example
 * encodeLengthPrefixed(['ab', 'c']).toString('hex') // '000000026162' + '0000000163'
 */
export function encodeLengthPrefixed(parts: readonly LengthPrefixPart[]): Buffer {
  let size = 0
  for (const p of parts) size += 4 + partLength(p)
  const out = Buffer.alloc(size)
  let o = 0
  for (const p of parts) {
    const len = partLength(p)
    out.writeUInt32BE(len, o)
    o += 4
    if (typeof p === 'string') out.write(p, o, len, 'utf8')
    else out.set(p, o)
    o += len
  }
  return out
}
