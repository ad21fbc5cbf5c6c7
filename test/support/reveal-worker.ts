/**
 * Test support: a reveal worker, i.e. one "app server" as a separate Node process, for the
 * kill-switch timing tests. It builds its own Domicile from a config file, warms its data-key
 * cache with one successful reveal per tenant, then keeps revealing each tenant's sensitive field
 * and reports every change of outcome on stdout, one JSON object per line:
 *
 *   {"event":"ready","pid":123,"at":1700000000000}
 *   {"event":"dark","tenant":"t-kms","code":"ERR_KEY_REVOKED","at":...,"reveals":57}
 *   {"event":"recovered","tenant":"t-kms","at":...,"reveals":80}
 *   {"event":"changed","tenant":"t-kms","at":...}      (a directory change reached this process)
 *   {"event":"fatal","message":"..."}                  (warm-up failed; exit status 1)
 *
 * A line "scope <tenant>" on stdin opens ONE withTenant scope for that tenant that keeps revealing
 * inside it (the open scope of a long request or job): it prints
 *   {"event":"scope-open","tenant":"t-kms","at":...}     (after its first successful reveal)
 *   {"event":"dark","tenant":"t-kms@open-scope","code":"ERR_KEY_REVOKED","at":...,"reveals":31}
 * and the scope ends at its first failure (or when the worker stops).
 *
 * "dark" is printed on the first failed reveal after a success, and again if the error code
 * changes; "recovered" on the first success after a failure. `at` is Date.now() when the outcome
 * was observed (same host clock as the test). Values are never printed.
 *
 * Usage: node --import tsx test/support/reveal-worker.ts <configPath> <tenant>...
 * Each tenant must hold row REVEAL_ROW_ID ('c1') in table `customers` with a sealed `tax_id`.
 * Env: REVEAL_INTERVAL_MS (pause between reveals per tenant, default 20),
 *      REVEAL_WORKER_MAX_MS (self-imposed lifetime, default 60000).
 * Exits when stdin closes, on SIGTERM/SIGINT, or after its lifetime.
 */
import { setTimeout as delay } from 'node:timers/promises'
import { createDomicile, isDomicileError, type Domicile } from '../../src/index.js'

const ROW_ID = 'c1'
const INTERVAL_MS = Number(process.env.REVEAL_INTERVAL_MS ?? 20)
const MAX_MS = Number(process.env.REVEAL_WORKER_MAX_MS ?? 60_000)
const WARMUP_DEADLINE_MS = 20_000

type Outcome = 'ok' | string

function emit(obj: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`)
}

function codeOf(e: unknown): string {
  return isDomicileError(e) ? e.code : 'ERR_UNKNOWN'
}

/** One reveal of the tenant's sealed tax_id; 'ok' or the error code. */
async function revealOnce(d: Domicile, tenant: string): Promise<Outcome> {
  try {
    const value = await d.withTenant(tenant, async (scope) => {
      const row = await scope.table('customers').get(ROW_ID)
      if (!row) throw new Error('row missing')
      return scope.reveal(row.tax_id, { purpose: 'kill-switch timing probe', actor: `reveal-worker-${process.pid}` })
    })
    return typeof value === 'string' && value.length > 0 ? 'ok' : 'ERR_UNEXPECTED_VALUE'
  } catch (e) {
    return codeOf(e)
  }
}

let domicile: Domicile | undefined

/** One scope that keeps revealing inside itself until a reveal fails or the worker stops. */
async function openScope(d: Domicile, tenant: string, stopping: () => boolean): Promise<void> {
  let reveals = 0
  try {
    await d.withTenant(tenant, async (scope) => {
      const row = await scope.table('customers').get(ROW_ID)
      if (!row) throw new Error('row missing')
      while (!stopping()) {
        await scope.reveal(row.tax_id, { purpose: 'kill-switch timing probe (open scope)', actor: `reveal-worker-${process.pid}` })
        if (reveals++ === 0) emit({ event: 'scope-open', tenant, at: Date.now() })
        await delay(INTERVAL_MS)
      }
    })
  } catch (e) {
    emit({ event: 'dark', tenant: `${tenant}@open-scope`, code: codeOf(e), at: Date.now(), reveals })
  }
}

async function main(): Promise<number> {
  const [configPath, ...tenants] = process.argv.slice(2)
  if (!configPath || tenants.length === 0) {
    emit({ event: 'fatal', message: 'usage: reveal-worker.ts <configPath> <tenant>...' })
    return 2
  }
  let stopping = false
  let wake: () => void = () => undefined
  const stopped = new Promise<void>((r) => { wake = r })
  const stop = (): void => {
    if (stopping) return
    stopping = true
    wake()
  }
  const scopes: Array<Promise<void>> = []
  let pending = ''
  process.stdin.setEncoding('utf8').on('data', (chunk: string) => {
    pending += chunk
    for (let nl = pending.indexOf('\n'); nl !== -1; nl = pending.indexOf('\n')) {
      const [cmd, tenant] = pending.slice(0, nl).trim().split(/\s+/)
      pending = pending.slice(nl + 1)
      if (cmd === 'scope' && tenant && domicile) scopes.push(openScope(domicile, tenant, () => stopping))
    }
  })
  process.stdin.on('end', stop).on('close', stop).on('error', stop).resume()
  process.on('SIGTERM', stop).on('SIGINT', stop)
  const lifetime = setTimeout(stop, MAX_MS)

  const d = await createDomicile({ configPath })
  domicile = d
  try {
    d.directory.onChange((tenant) => emit({ event: 'changed', tenant, at: Date.now() }))
    // Warm-up: one successful reveal per tenant, so each data key is HOT in this process's cache.
    const deadline = Date.now() + WARMUP_DEADLINE_MS
    for (const t of tenants) {
      let last = await revealOnce(d, t)
      while (last !== 'ok' && !stopping && Date.now() < deadline) {
        await delay(50)
        last = await revealOnce(d, t)
      }
      if (last !== 'ok') {
        emit({ event: 'fatal', message: `warm-up reveal for ${t} failed: ${last}` })
        return 1
      }
    }
    emit({ event: 'ready', pid: process.pid, at: Date.now() })

    const loops = tenants.map(async (t) => {
      let state: Outcome = 'ok'
      let reveals = 0
      while (!stopping) {
        const now = await revealOnce(d, t)
        reveals++
        if (now !== state) {
          emit(now === 'ok' ? { event: 'recovered', tenant: t, at: Date.now(), reveals } : { event: 'dark', tenant: t, code: now, at: Date.now(), reveals })
          state = now
        }
        await Promise.race([delay(INTERVAL_MS), stopped])
      }
    })
    await Promise.all(loops)
    await Promise.all(scopes)
    return 0
  } finally {
    clearTimeout(lifetime)
    await d.close().catch(() => undefined)
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    emit({ event: 'fatal', message: isDomicileError(e) ? `${e.code}: ${e.message}` : String(e) })
    process.exit(1)
  },
)
