/**
 * `/healthz` for a load balancer: every configured region (a `SELECT 1` on its store, in parallel)
 * and every key service that a tenant is bound to (the provider's own health call where it has one,
 * e.g. the XKS health operation; otherwise its circuit breaker). Healthy only when all are. Each
 * check is bounded by a deadline, so a region that is down answers "down" instead of hanging the probe.
 */
import type { Domicile } from '../domicile.js'
import { internalsOf } from '../domicile-internals.js'
import { isDomicileError } from '../errors.js'

export interface HealthReport {
  readonly status: 'ok' | 'degraded'
  readonly regions: Array<{ name: string; status: 'up' | 'down'; code?: string }>
  readonly keyServices: Array<{ name: string; kind: string; status: 'up' | 'down'; code?: string }>
}

interface HealthCapable {
  health?(opts?: { signal?: AbortSignal }): Promise<unknown>
}

const TIMED_OUT = 'ERR_TIMEOUT'

async function bounded<T>(ms: number, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController()
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      fn(ac.signal),
      new Promise<never>((_r, reject) => { timer = setTimeout(() => { ac.abort(); reject(Object.assign(new Error('timed out'), { code: TIMED_OUT })) }, ms) }),
    ])
  } finally {
    clearTimeout(timer)
  }
}

const codeOf = (e: unknown): string => (isDomicileError(e) ? e.code : (e as { code?: unknown })?.code === TIMED_OUT ? TIMED_OUT : 'ERR_UNEXPECTED')

/** Checks regions and key services; never throws. */
export async function checkHealth(d: Domicile, opts: { timeoutMs?: number } = {}): Promise<HealthReport> {
  const timeoutMs = opts.timeoutMs ?? 2500
  const parts = internalsOf(d)
  // Every store: each cell of a region with several is its own entry (`region/cell`).
  const regions = await Promise.all(parts.router.stores.map(async (where) => {
    const name = parts.router.label(where)
    try {
      const p = await bounded(timeoutMs, () => parts.router.probe(where))
      return p.reachable ? { name, status: 'up' as const } : { name, status: 'down' as const, ...(p.code ? { code: p.code } : {}) }
    } catch (e) {
      return { name, status: 'down' as const, code: codeOf(e) }
    }
  }))

  const keyServices: HealthReport['keyServices'] = []
  const registry = parts.providers
  if (registry) {
    const inUse = await bounded(timeoutMs, () => parts.controlPlane.withSession((s) =>
      s.query<{ provider: string }>('SELECT DISTINCT provider FROM domicile_tenants WHERE provider IS NOT NULL ORDER BY provider')))
      .then((r) => r.rows.map((x) => x.provider))
      .catch(() => undefined)
    if (inUse === undefined) {
      keyServices.push({ name: 'control-plane', kind: 'directory', status: 'down', code: 'ERR_REGION_UNAVAILABLE' })
    } else {
      keyServices.push(...await Promise.all(inUse.map(async (name) => {
        let kind = 'unknown'
        try {
          const p = await bounded(timeoutMs, () => registry.get(name))
          kind = p.runtime.kind
          const raw = p.raw as HealthCapable
          if (typeof raw.health === 'function') await bounded(timeoutMs, (signal) => raw.health!({ signal }))
          else if (p.runtime.breaker.state === 'open') return { name, kind, status: 'down' as const, code: 'ERR_KEY_PROVIDER_UNAVAILABLE' }
          return { name, kind, status: 'up' as const }
        } catch (e) {
          return { name, kind, status: 'down' as const, code: codeOf(e) }
        }
      })))
    }
  }
  const ok = regions.every((r) => r.status === 'up') && keyServices.every((k) => k.status === 'up')
  return { status: ok ? 'ok' : 'degraded', regions, keyServices }
}
