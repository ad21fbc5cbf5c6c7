/**
 * Replication of global tables inside a long-lived process (`domicile serve`, an application):
 * a pass every `intervalMs` (default 1 s) and at once when the control plane announces a write
 * (NOTIFY domicile_global), so a running application converges within about a second of a write
 * made anywhere, without a restart. A region that fails is retried with backoff (up to 5 s) while
 * the others go on; it catches up in order when it answers again. Passes never overlap. The loop
 * ends when `stop()` is called or the instance is closed.
 */
import type { Domicile } from '../domicile.js'
import { internalsOf } from '../domicile-internals.js'
import { isDomicileError } from '../errors.js'
import { GLOBAL_CHANNEL } from './global-write.js'
import { replicaNames, replicateRegion, type RegionReplication } from './global-replicator.js'

export interface GlobalReplicationOptions {
  /** Poll interval in ms (default 1000, at least 50). */
  readonly intervalMs?: number
  /** Longest wait before retrying a region that failed (default 5000 ms). */
  readonly maxBackoffMs?: number
  /** Called with each region that failed a pass (code and message only: no row values). */
  readonly onRegionError?: (r: RegionReplication) => void
}

/** Stops the loop; resolves when a pass in flight has finished. */
export type StopGlobalReplication = () => Promise<void>

/**
 * Starts replicating the control plane's global tables to every region this process serves.
 *
 * @example
 * ```ts
 * const stop = startGlobalReplication(domicile, { intervalMs: 1000 })
 * // ... on shutdown:
 * await stop()
 * ```
 */
export function startGlobalReplication(d: Domicile, opts: GlobalReplicationOptions = {}): StopGlobalReplication {
  const intervalMs = Math.max(50, opts.intervalMs ?? 1000)
  const maxBackoffMs = Math.max(intervalMs, opts.maxBackoffMs ?? 5000)
  const failures = new Map<string, { count: number; retryAt: number }>()
  let stopped = false
  let running: Promise<void> | undefined
  let again = false
  let timer: NodeJS.Timeout | undefined
  let unlisten: (() => Promise<void>) | undefined

  const pass = async (): Promise<void> => {
    const now = Date.now()
    const due = replicaNames(d).filter((r) => (failures.get(r)?.retryAt ?? 0) <= now)
    const results = await Promise.all(due.map((r) => replicateRegion(d, r)))
    for (const r of results) {
      if (r.ok) {
        failures.delete(r.region)
        continue
      }
      if (r.code === 'ERR_CLOSED') {
        stopped = true
        return
      }
      const count = (failures.get(r.region)?.count ?? 0) + 1
      failures.set(r.region, { count, retryAt: Date.now() + Math.min(maxBackoffMs, intervalMs * 2 ** (count - 1)) })
      opts.onRegionError?.(r)
    }
  }

  const kick = (): void => {
    if (stopped) return
    if (running) {
      again = true
      return
    }
    running = (async () => {
      do {
        again = false
        try {
          await pass()
        } catch (e) {
          // A failure outside a region pass must not end the loop, nor pass silently.
          if (isDomicileError(e, 'ERR_CLOSED')) stopped = true
          else process.emitWarning(`Domicile global replication: a pass failed (${isDomicileError(e) ? e.code : (e as Error)?.name ?? 'error'}); retrying.`, 'DomicileWarning')
        }
      } while (again && !stopped)
    })().finally(() => {
      running = undefined
      if (!stopped) schedule()
    })
  }

  const schedule = (): void => {
    if (timer) clearTimeout(timer)
    timer = setTimeout(kick, intervalMs)
    timer.unref()
  }

  internalsOf(d).controlPlane.listen(GLOBAL_CHANNEL, () => kick()).then((u) => {
    if (stopped) void u().catch(() => undefined)
    else unlisten = u
  }, () => undefined) // no push channel: the poll alone still converges within intervalMs
  kick()

  return async () => {
    stopped = true
    if (timer) clearTimeout(timer)
    await unlisten?.().catch(() => undefined)
    await running
  }
}
