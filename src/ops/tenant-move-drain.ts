/**
 * The drain at the start of a move's write freeze. Once the directory says "moving", processes
 * refuse new scopes of the tenant; a tenant transaction that began before they learnt it may still
 * be open on the source store. Every tenant transaction reads `domicile_stamp` in its first
 * statement and holds that lock until it ends, so the transactions open at the freeze are the ones
 * holding it: this waits until each of them (by virtual transaction id) has ended. It blocks no
 * one (other tenants' transactions run on); it only waits, within a bound.
 */
import type { StoreSession } from '../regions/store-driver.js'
import { setTimeout as delay } from 'node:timers/promises'

export interface DrainResult {
  /** Transactions that were open and were waited for. */
  readonly waitedFor: number
  /** Whether they all ended within the bound. */
  readonly drained: boolean
  readonly ms: number
}

/** Waits (polling every few ms) until the tenant transactions open on the store now have ended. */
export async function drainOpenTransactions(s: StoreSession, timeoutMs: number): Promise<DrainResult> {
  const started = performance.now()
  const r = await s.query<{ vx: string[] | null }>(
    `SELECT array_agg(DISTINCT v.virtualxid) AS vx FROM pg_locks l
     JOIN pg_locks v ON v.pid = l.pid AND v.locktype = 'virtualxid' AND v.granted
     WHERE l.locktype = 'relation' AND l.relation = 'domicile_stamp'::regclass
       AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND l.pid <> pg_backend_pid()`)
  const open = r.rows[0]?.vx ?? []
  if (open.length === 0) return { waitedFor: 0, drained: true, ms: performance.now() - started }
  for (;;) {
    const left = await s.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'virtualxid' AND granted AND virtualxid = ANY($1::text[])`, [open])
    if (Number(left.rows[0]?.n ?? 0) === 0) return { waitedFor: open.length, drained: true, ms: performance.now() - started }
    if (performance.now() - started > timeoutMs) return { waitedFor: open.length, drained: false, ms: performance.now() - started }
    await delay(3)
  }
}
