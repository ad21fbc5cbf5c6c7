/**
 * The tenant's data and index keys in a move. A wrapped key is bound to its region (the wrap
 * context names it), so each key is unwrapped under the source region's context and wrapped again
 * under the target's through the tenant's key provider (HYOK: the customer's proxy), checked by
 * unwrapping the new copy, and stored in the target with the same key number (sealed values name
 * their key by number), status and nonce-budget counters. The plaintext key lives only between
 * those calls and is zeroed after.
 */
import { timingSafeEqual } from 'node:crypto'
import { DomicileError } from '../errors.js'
import type { KeyProvider } from '../keys/key-provider.js'
import { keyWrapContext } from '../keys/keyring.js'
import type { StoreSession } from '../regions/store-driver.js'

interface KeyRow {
  purpose: 'data' | 'index'
  key_number: number
  wrapped: Buffer
  provider: string
  key_id: string
  status: 'active' | 'retired'
  encryptions_reserved: string
  max_encryptions: string
  created_at: string
}

const SELECT_KEYS = `SELECT purpose, key_number, wrapped, provider, key_id, status, encryptions_reserved::text AS encryptions_reserved,
  max_encryptions::text AS max_encryptions, created_at::text AS created_at FROM domicile_data_keys WHERE tenant_id = $1 ORDER BY purpose, key_number`

const keyName = (k: Pick<KeyRow, 'purpose' | 'key_number'>) => `${k.purpose}#${k.key_number}`

export async function readKeys(s: StoreSession, tenantId: string): Promise<KeyRow[]> {
  return (await s.query<KeyRow>(SELECT_KEYS, [tenantId])).rows
}

export interface KeySyncResult {
  /** Keys rewrapped and stored in the target by this call. */
  readonly rewrapped: number
  /** Keys whose status or counters were brought level. */
  readonly updated: number
  /** Keys in the target now. */
  readonly total: number
}

/**
 * Brings the target's copy of the tenant's keys level with the source: rewraps keys the target
 * lacks, carries status and budget counters over (a counter never goes down), removes target keys
 * the source does not have (left by an interrupted earlier attempt).
 */
export async function syncKeys(opts: {
  readonly tenantId: string
  readonly from: string
  readonly to: string
  readonly source: StoreSession
  readonly target: StoreSession
  readonly provider: (name: string) => Promise<KeyProvider>
  readonly signal?: AbortSignal
  /**
   * 'mirror' (before the cutover, the source is the tenant's home): the target's keys become the
   * source's, including status; target keys the source lacks (an interrupted earlier attempt) are
   * deleted. 'counters' (after the cutover, the target is the home): only budget counters are raised
   * where the source reserved more; nothing is rewrapped, changed back or deleted.
   */
  readonly mode: 'mirror' | 'counters'
}): Promise<KeySyncResult> {
  const { tenantId, from, to } = opts
  const [src, dst] = await Promise.all([readKeys(opts.source, tenantId), readKeys(opts.target, tenantId)])
  const have = new Map(dst.map((k) => [keyName(k), k]))
  let rewrapped = 0
  let updated = 0
  for (const k of src) {
    const there = have.get(keyName(k))
    have.delete(keyName(k))
    if (there) {
      if (opts.mode === 'counters') {
        if (BigInt(k.encryptions_reserved) > BigInt(there.encryptions_reserved)) {
          await opts.target.query('UPDATE domicile_data_keys SET encryptions_reserved = greatest(encryptions_reserved, $4::bigint) WHERE tenant_id = $1 AND purpose = $2 AND key_number = $3',
            [tenantId, k.purpose, k.key_number, k.encryptions_reserved])
          updated++
        }
        continue
      }
      if (there.status !== k.status || there.encryptions_reserved !== k.encryptions_reserved || there.max_encryptions !== k.max_encryptions) {
        await opts.target.query(
          `UPDATE domicile_data_keys SET status = $4, encryptions_reserved = greatest(encryptions_reserved, $5::bigint), max_encryptions = $6::bigint
           WHERE tenant_id = $1 AND purpose = $2 AND key_number = $3`, [tenantId, k.purpose, k.key_number, k.status, k.encryptions_reserved, k.max_encryptions])
        updated++
      }
      continue
    }
    if (opts.mode === 'counters') continue
    const provider = await opts.provider(k.provider)
    const callOpts = opts.signal ? { signal: opts.signal } : {}
    const plain = await provider.unwrapKey({ keyId: k.key_id, ciphertext: k.wrapped, context: keyWrapContext(tenantId, from, k.purpose, k.key_number) }, callOpts)
    let check: Uint8Array | undefined
    try {
      const wrapped = await provider.wrapKey({ keyId: k.key_id, plaintextKey: plain, context: keyWrapContext(tenantId, to, k.purpose, k.key_number) }, callOpts)
      check = await provider.unwrapKey({ keyId: wrapped.keyId, ciphertext: wrapped.ciphertext, context: keyWrapContext(tenantId, to, k.purpose, k.key_number) }, callOpts)
      /* Precondition: the target's copy of a key unwraps, under the target's context, to the same key. */
      if (check.length !== plain.length || !timingSafeEqual(check, plain)) {
        throw new DomicileError('ERR_DECRYPTION_FAILED', 'A key rewrapped for the target region did not unwrap to the same key. Nothing was cut over; check the key provider, then resume the move.')
      }
      await opts.target.query(
        `INSERT INTO domicile_data_keys (tenant_id, purpose, key_number, wrapped, provider, key_id, status, encryptions_reserved, max_encryptions, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8::bigint, $9::bigint, $10::timestamptz)`,
        [tenantId, k.purpose, k.key_number, Buffer.from(wrapped.ciphertext), k.provider, wrapped.keyId, k.status, k.encryptions_reserved, k.max_encryptions, k.created_at])
      rewrapped++
    } finally {
      plain.fill(0)
      check?.fill(0)
    }
  }
  if (opts.mode === 'mirror') for (const stale of have.values()) {
    await opts.target.query('DELETE FROM domicile_data_keys WHERE tenant_id = $1 AND purpose = $2 AND key_number = $3', [tenantId, stale.purpose, stale.key_number])
    updated++
  }
  return { rewrapped, updated, total: src.length }
}

/** Unwraps every key of the tenant in a region under that region's context (the keys open there). */
export async function checkKeysOpen(s: StoreSession, tenantId: string, region: string, provider: (name: string) => Promise<KeyProvider>): Promise<number> {
  const keys = await readKeys(s, tenantId)
  for (const k of keys) {
    const p = await provider(k.provider)
    const plain = await p.unwrapKey({ keyId: k.key_id, ciphertext: k.wrapped, context: keyWrapContext(tenantId, region, k.purpose, k.key_number) })
    plain.fill(0)
  }
  return keys.length
}

/** Deletes the tenant's wrapped keys from a store, in the caller's transaction. */
export async function deleteKeys(s: StoreSession, tenantId: string): Promise<number> {
  return (await s.query('DELETE FROM domicile_data_keys WHERE tenant_id = $1', [tenantId])).rowCount
}

export async function countKeys(s: StoreSession, tenantId: string): Promise<number> {
  const r = await s.query<{ n: string }>('SELECT count(*)::text AS n FROM domicile_data_keys WHERE tenant_id = $1', [tenantId])
  return Number(r.rows[0]?.n ?? 0)
}
