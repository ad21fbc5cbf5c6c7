/**
 * The audit chain's hash, computed in Node from the stored fields (node:crypto), so verification
 * does not depend on any function inside the database it checks. The byte encoding is the one
 * src/schema/audit-chain-ddl.ts computes at insert:
 *
 *   hash = SHA-256(prev_hash || F(label) || int8(chain_pos) || int8(id) || F(tenant_id) || F(at)
 *                  || F(type) || F(outcome) || F(actor) || F(detail))
 *
 * int8: 8 bytes big-endian; F(null) = ff ff ff ff; F(s) = 4-byte big-endian length of UTF-8(s),
 * then UTF-8(s); `at` as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (UTC); `detail` as jsonb's text form.
 */
import { createHash } from 'node:crypto'

/** The previous hash of the first record of a chain. */
export const GENESIS_HASH: Buffer = Buffer.alloc(32)

/** One record's hashed fields, as the database renders them (text, or null). */
export interface ChainFields {
  readonly position: bigint
  readonly id: bigint
  readonly tenantId: string | null
  /** `at` rendered in UTC as YYYY-MM-DDTHH:MM:SS.ffffffZ. */
  readonly at: string
  readonly type: string
  readonly outcome: string
  readonly actor: string | null
  /** `detail::text`. */
  readonly detail: string
}

const NULL_FIELD = Buffer.from([0xff, 0xff, 0xff, 0xff])

function field(v: string | null): Buffer[] {
  if (v === null) return [NULL_FIELD]
  const bytes = Buffer.from(v, 'utf8')
  const len = Buffer.alloc(4)
  len.writeUInt32BE(bytes.length)
  return [len, bytes]
}

function int8(v: bigint): Buffer {
  const b = Buffer.alloc(8)
  b.writeBigInt64BE(v)
  return b
}

/** SHA-256(prev || encoding of the record under `label`). */
export function chainHash(label: string, prev: Uint8Array, r: ChainFields): Buffer {
  const h = createHash('sha256')
  for (const part of [prev, ...field(label), int8(r.position), int8(r.id), ...field(r.tenantId), ...field(r.at),
    ...field(r.type), ...field(r.outcome), ...field(r.actor), ...field(r.detail)]) h.update(part)
  return h.digest()
}
