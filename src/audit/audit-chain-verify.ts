/**
 * Verification of the audit hash chains (docs/ARCHITECTURE.md "Audit"; the chain itself is
 * src/schema/audit-chain-ddl.ts): every region's `domicile_audit` and the control plane's
 * `domicile_control_audit`, read as the owner in one REPEATABLE READ snapshot, streamed in
 * position order a page at a time, every hash recomputed in Node (src/audit/audit-chain-hash.ts).
 *
 * It names the first bad position and what is wrong there:
 * - `hash-mismatch`: the record's fields (or its stored hash) were edited;
 * - `prev-mismatch`: the record does not follow the one before it (a record inserted before it,
 *   records reordered, or a predecessor edited together with its hash);
 * - `missing`: no record at a position below the head (a deleted record);
 * - `unexpected-position`: a position below 1;
 * - `truncated`: the chain head says more records than exist (the tail was deleted);
 * - `head-mismatch`: the last record's hash is not the head's;
 * - `beyond-head`: a record positioned after the head (inserted without the chain);
 * - `unchained`: a committed record without a position (written with the trigger disabled);
 * - `head-missing`: the store has no chain head (not migrated).
 *
 * What it cannot see: someone holding the owner role who rewrites a whole chain from some position
 * on, head included, with the (public) algorithm. Record the head hash elsewhere to catch that.
 *
 * Sits on top of the Domicile instance (uses its internal owner sessions), with report/.
 */
import type { Domicile } from '../domicile.js'
import { internalsOf } from '../domicile-internals.js'
import { DomicileError, isDomicileError } from '../errors.js'
import type { StoreSession } from '../regions/store-driver.js'
import { CHAIN_TIME_FORMAT, CONTROL_AUDIT_CHAIN, REGION_AUDIT_CHAIN, type AuditChainTable } from '../schema/audit-chain-ddl.js'
import { chainHash, GENESIS_HASH } from './audit-chain-hash.js'

/**
 * The error code of a broken chain. ERR_CONFLICT until ERR_AUDIT_CHAIN_BROKEN is in src/errors.ts;
 * kept in this one constant.
 */
export const AUDIT_CHAIN_BROKEN_CODE = 'ERR_AUDIT_CHAIN_BROKEN' as const

export type ChainProblem =
  | 'hash-mismatch' | 'prev-mismatch' | 'missing' | 'unexpected-position' | 'truncated'
  | 'head-mismatch' | 'beyond-head' | 'unchained' | 'head-missing'

export interface ChainBreak {
  /** The first bad position (null for a record with no position at all). */
  readonly position: number | null
  readonly problem: ChainProblem
  /** The record's id in the table, when there is a record. */
  readonly id?: string
  readonly message: string
}

export interface ChainVerification {
  /** A region's name, or `control-plane`. */
  readonly store: string
  readonly table: string
  readonly ok: boolean
  /** Records verified (positions 1..records are intact). */
  readonly records: number
  /** The chain head: its position and hash (hex), to record elsewhere (anchoring). */
  readonly head: { readonly position: number; readonly hash: string } | null
  /** Records chained at the upgrade that created the chain (stored before it existed). */
  readonly backfilled: number
  readonly firstBad?: ChainBreak
}

export interface AuditVerification {
  /** Every chain checked is intact and every store answered. */
  readonly ok: boolean
  readonly chains: readonly ChainVerification[]
  /** Stores that could not be checked. */
  readonly unavailable: ReadonlyArray<{ readonly store: string; readonly code: string; readonly message: string }>
}

export interface VerifyOptions {
  /** Only this region. */
  readonly region?: string
  /** Only the control plane. */
  readonly controlPlane?: boolean
  /** Records per page (default 1000). */
  readonly pageSize?: number
}

interface ChainRow {
  pos: string
  id: string
  tenant_id: string | null
  at: string
  type: string
  outcome: string
  actor: string | null
  detail: string
  prev_hash: Uint8Array | null
  hash: Uint8Array | null
}

const bytes = (b: Uint8Array | null | undefined): Buffer | null => (b == null ? null : Buffer.from(b.buffer, b.byteOffset, b.byteLength))
const num = (v: bigint): number => Number(v)

function rowsSql(c: AuditChainTable, first: boolean): string {
  return `SELECT chain_pos::text AS pos, id::text AS id, tenant_id, to_char(at AT TIME ZONE 'UTC', '${CHAIN_TIME_FORMAT}') AS at,
    type, outcome, actor, detail::text AS detail, prev_hash, hash
  FROM ${c.table} WHERE ${first ? 'chain_pos IS NOT NULL' : 'chain_pos > $1::bigint'} ORDER BY chain_pos LIMIT ${first ? '$1' : '$2'}`
}

/** Verifies one chain on an owner session of its store. */
export async function verifyChainOn(s: StoreSession, store: string, c: AuditChainTable, pageSize = 1000): Promise<ChainVerification> {
  /* Precondition: a page holds at least one record. */
  if (!Number.isInteger(pageSize) || pageSize < 1) throw new DomicileError('ERR_INPUT_INVALID', 'pageSize: expected a positive integer.')
  await s.exec('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
  try {
    const r = await verifySnapshot(s, store, c, pageSize)
    await s.exec('COMMIT')
    return r
  } catch (e) {
    await s.exec('ROLLBACK').catch(() => undefined)
    throw e
  }
}

async function verifySnapshot(s: StoreSession, store: string, c: AuditChainTable, pageSize: number): Promise<ChainVerification> {
  const exists = await s.query<{ t: string | null }>(`SELECT to_regclass('${c.head}')::text AS t`)
  const headRow = exists.rows[0]?.t
    ? (await s.query<{ position: string; hash: Uint8Array; backfilled: string }>(`SELECT position::text AS position, hash, backfilled::text AS backfilled FROM ${c.head} WHERE singleton`)).rows[0]
    : undefined
  const base = { store, table: c.table }
  if (!headRow) {
    return { ...base, ok: false, records: 0, head: null, backfilled: 0,
      firstBad: { position: null, problem: 'head-missing', message: `${c.table} has no chain head: run "domicile migrate" on ${store}.` } }
  }
  const headPos = BigInt(headRow.position)
  const headHash = bytes(headRow.hash)!
  const done = (records: bigint, firstBad?: ChainBreak): ChainVerification => ({
    ...base, ok: firstBad === undefined, records: num(records), head: { position: num(headPos), hash: headHash.toString('hex') },
    backfilled: Number(headRow.backfilled), ...(firstBad ? { firstBad } : {}),
  })
  const broken = (position: bigint | null, problem: ChainProblem, what: string, id?: string): ChainBreak => ({
    position: position === null ? null : num(position), problem, ...(id === undefined ? {} : { id }),
    message: `${store} ${c.table}: ${what}. Records from this position on cannot be trusted; compare them with a backup and with a head hash recorded elsewhere.`,
  })

  let expected = 1n
  let prev: Buffer = GENESIS_HASH
  let last: string | null = null
  for (;;) {
    const page: { rows: ChainRow[] } = last === null
      ? await s.query<ChainRow>(rowsSql(c, true), [pageSize])
      : await s.query<ChainRow>(rowsSql(c, false), [last, pageSize])
    for (const row of page.rows) {
      const pos = BigInt(row.pos)
      if (pos > headPos) break
      if (pos < expected) return done(expected - 1n, broken(pos, 'unexpected-position', `record id ${row.id} has position ${pos}; positions start at 1`, row.id))
      if (pos > expected) return done(expected - 1n, broken(expected, 'missing', `no record at position ${expected} (the next one is at ${pos}): a record was deleted`))
      const stored = bytes(row.hash)
      const storedPrev = bytes(row.prev_hash)
      if (storedPrev === null || !storedPrev.equals(prev)) {
        return done(expected - 1n, broken(pos, 'prev-mismatch', `the record at position ${pos} (id ${row.id}) does not follow the record before it: a record was inserted or reordered there, or its predecessor rewritten`, row.id))
      }
      const computed = chainHash(c.label, prev, {
        position: pos, id: BigInt(row.id), tenantId: row.tenant_id, at: row.at, type: row.type,
        outcome: row.outcome, actor: row.actor, detail: row.detail,
      })
      if (stored === null || !stored.equals(computed)) {
        return done(expected - 1n, broken(pos, 'hash-mismatch', `the record at position ${pos} (id ${row.id}) was edited: its hash does not match its fields`, row.id))
      }
      prev = computed
      expected++
    }
    const tail: ChainRow | undefined = page.rows.at(-1)
    if (page.rows.length < pageSize || tail === undefined || BigInt(tail.pos) >= headPos) break
    last = tail.pos
  }
  const verified = expected - 1n
  if (verified < headPos) {
    return done(verified, broken(expected, 'truncated', `the chain head says ${headPos} records but the chain ends at position ${verified}: records at the end were deleted`))
  }
  if (!prev.equals(headHash)) {
    return done(verified, broken(headPos, 'head-mismatch', `the chain head's hash is not the hash of the record at position ${headPos}`))
  }
  const beyond = await s.query<{ pos: string; id: string }>(`SELECT chain_pos::text AS pos, id::text AS id FROM ${c.table} WHERE chain_pos > $1::bigint ORDER BY chain_pos LIMIT 1`, [headPos.toString()])
  const b = beyond.rows[0]
  if (b) return done(verified, broken(BigInt(b.pos), 'beyond-head', `record id ${b.id} is at position ${b.pos}, after the chain head (${headPos}): it was not appended through the chain`, b.id))
  const loose = await s.query<{ id: string }>(`SELECT id::text AS id FROM ${c.table} WHERE chain_pos IS NULL ORDER BY id LIMIT 1`)
  const u = loose.rows[0]
  if (u) return done(verified, broken(null, 'unchained', `record id ${u.id} has no chain position: it was written with the chain's trigger disabled`, u.id))
  return done(verified)
}

/**
 * Verifies the audit chains of every region store (each cell of a region has its own chain) and
 * the control plane (or only `region`'s cells, or only the control plane). A store that cannot be reached is listed in `unavailable`, never skipped silently.
 */
export async function verifyAuditChains(d: Domicile, opts: VerifyOptions = {}): Promise<AuditVerification> {
  const p = internalsOf(d)
  /* Precondition: a named region is one of the configured regions (or `region/cell`, one of its cells). */
  const one = opts.region?.includes('/') ? p.router.resolve(opts.region) : undefined
  if (opts.region !== undefined && one === undefined && !p.router.regionNames.includes(opts.region)) {
    throw new DomicileError('ERR_REGION_UNKNOWN', `Unknown region "${opts.region.slice(0, 64)}". Configured regions: ${p.router.regionNames.join(', ')}.`)
  }
  // Every cell of the region(s): each store keeps its own chain.
  const stores = opts.controlPlane ? [] : one ? [one] : p.router.storesOf(opts.region)
  const withControlPlane = opts.controlPlane === true || opts.region === undefined
  const chains: ChainVerification[] = []
  const unavailable: Array<{ store: string; code: string; message: string }> = []
  const attempt = async (store: string, run: () => Promise<ChainVerification>): Promise<void> => {
    try {
      chains.push(await run())
    } catch (e) {
      if (!isDomicileError(e)) throw e
      unavailable.push({ store, code: e.code, message: e.message })
    }
  }
  for (const where of stores) {
    const label = p.router.label(where)
    await attempt(label, () => p.router.withRegionAdmin(where, (s) => verifyChainOn(s, label, REGION_AUDIT_CHAIN, opts.pageSize)))
  }
  if (withControlPlane) {
    await attempt('control-plane', () => p.controlPlane.withSession((s) => verifyChainOn(s, 'control-plane', CONTROL_AUDIT_CHAIN, opts.pageSize), { role: 'owner' }))
  }
  return { ok: unavailable.length === 0 && chains.every((c) => c.ok), chains, unavailable }
}
