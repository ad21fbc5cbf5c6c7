/**
 * The fault-and-load suite's workload: several concurrent clients doing inserts, updates, finds and
 * reveals for many tenants through the public API (withTenant and the one-shot `tenant()` path),
 * every random choice drawn from a seeded generator (chaos-rng.ts).
 *
 * Each client keeps a model (ChaosModel) of every write it was told succeeded: a row's last
 * acknowledged value, or, when a write failed in a way that may or may not have committed (the
 * region went away during COMMIT), every value the row may now hold. Clients own their rows (no two
 * clients write one row), so the model is exact. Reads check what they get against the model as they
 * go (a wrong result is a violation, not an error). Every sensitive plaintext carries the marker
 * PII_MARKER, so a raw scan of the stores (chaos-invariants.ts) finds any that was stored unsealed.
 *
 * @example
 * const model = new ChaosModel()
 * await seedTenants(d, model, tenants, 5)
 * const w = startWorkload(d, model, { clients: 6, rng, tenants })
 * await sleep(5000)
 * const result = await w.stop()
 * summarize(result.ops, { region: 'eu-west-1' })   // { count, errors, p50, p99, ... }
 */
import { performance } from 'node:perf_hooks'
import { isDomicileError, type Domicile } from '../../src/index.js'
import { isSealedValue } from '../../src/fields/sealed-value.js'
import type { Rng } from './chaos-rng.js'

/** In every sensitive plaintext the workload writes (and in its hex form, 70696...): found raw = stored unsealed. */
export const PII_MARKER = 'pii~chaos~'

/** The suite's tenant table: two sealed columns (one searchable) and plain ones. */
export const CHAOS_SCHEMA = `export default {
  customers: {
    scope: 'tenant',
    primaryKey: 'id',
    columns: {
      id: { type: 'text' },
      name: { type: 'text' },
      email: { type: 'text', nullable: true, sensitive: { searchable: true, normalize: ['trim', 'lower'] } },
      tax_id: { type: 'text', nullable: true, sensitive: true },
      plan: { type: 'text', nullable: true },
      rev: { type: 'integer' },
    },
    indexes: ['plan'],
  },
}
`

export type Expected = Readonly<Record<string, unknown>>

export interface RowState {
  readonly tenant: string
  readonly table: string
  readonly id: string
  /** The row as last acknowledged; null = absent. */
  value: Expected | null
  /** Set when a write's outcome is unknown: every state the row may be in now. */
  maybe?: Array<Expected | null>
  /** Writes acknowledged for this row. */
  acked: number
  /** The client that writes this row (no other client does). */
  readonly owner: string
  /** Rows written by one transaction share a group: all present or none. */
  readonly group?: string
}

/** One write as the model sees it (what a child process reports to its parent, line by line). */
export interface WriteEvent {
  readonly tenant: string
  readonly table: string
  readonly id: string
  readonly value: Expected | null
  readonly owner: string
  readonly group?: string
}

export class ChaosModel {
  readonly rows = new Map<string, RowState>()
  /** Told of every write before it is sent (attempt) and once it is acknowledged (ack). */
  listener?: { attempt?(w: WriteEvent): void; ack?(w: WriteEvent): void }

  static key(tenant: string, table: string, id: string): string {
    return `${tenant}\u0000${table}\u0000${id}`
  }

  get(tenant: string, table: string, id: string): RowState | undefined {
    return this.rows.get(ChaosModel.key(tenant, table, id))
  }

  #state(tenant: string, table: string, id: string, owner: string, group?: string): RowState {
    const k = ChaosModel.key(tenant, table, id)
    let s = this.rows.get(k)
    if (!s) {
      s = { tenant, table, id, value: null, acked: 0, owner, ...(group ? { group } : {}) }
      this.rows.set(k, s)
    }
    return s
  }

  /** A write is about to be sent (no state change here; a listener may record it). */
  attempt(tenant: string, table: string, id: string, value: Expected | null, owner: string, group?: string): void {
    this.listener?.attempt?.({ tenant, table, id, value, owner, ...(group ? { group } : {}) })
  }

  /** A write was acknowledged: the row now holds `value` (null: deleted). */
  ack(tenant: string, table: string, id: string, value: Expected | null, owner: string, group?: string): void {
    this.listener?.ack?.({ tenant, table, id, value, owner, ...(group ? { group } : {}) })
    const s = this.#state(tenant, table, id, owner, group)
    s.value = value
    delete s.maybe
    s.acked++
  }

  /** A write is known not to have happened (its transaction rolled back): the row holds what it held. Not counted as acknowledged. */
  absent(tenant: string, table: string, id: string, owner: string, group?: string): void {
    const s = this.#state(tenant, table, id, owner, group)
    delete s.maybe
  }

  /** A write failed without saying whether it committed: the row holds what it held, or `attempted`. */
  uncertain(tenant: string, table: string, id: string, attempted: Expected | null, owner: string, group?: string): void {
    const s = this.#state(tenant, table, id, owner, group)
    s.maybe = [...(s.maybe ?? [s.value]), attempted]
  }

  /** Rows whose state is known (reads can check them, writes can build on them). */
  certainRows(owner: string, tenant: string): RowState[] {
    const out: RowState[] = []
    for (const s of this.rows.values()) if (s.owner === owner && s.tenant === tenant && !s.maybe && s.value !== null) out.push(s)
    return out
  }

  tenants(): Set<string> {
    return new Set([...this.rows.values()].map((s) => s.tenant))
  }

  acknowledged(): number {
    let n = 0
    for (const s of this.rows.values()) n += s.acked
    return n
  }

  uncertainCount(): number {
    let n = 0
    for (const s of this.rows.values()) if (s.maybe) n++
    return n
  }
}

export interface TenantPlacement {
  readonly id: string
  readonly region: string
}

export type OpKind = 'insert' | 'insert-batch' | 'update' | 'find' | 'reveal'

export interface OpRecord {
  readonly region: string
  readonly tenant: string
  readonly kind: OpKind
  /** Start, ms since the workload started. */
  readonly at: number
  readonly ms: number
  readonly ok: boolean
  readonly code?: string
}

export interface WorkloadOptions {
  readonly clients: number
  readonly rng: Rng
  readonly tenants: readonly TenantPlacement[]
  /** Relative weights; default insert 30, insert-batch 5, update 25, find 20, reveal 20. */
  readonly mix?: Partial<Record<OpKind, number>>
  /** Pause between a client's operations (ms); default 0. */
  readonly pauseMs?: number
  /** Retry a write refused with the retryable ERR_TENANT_MOVING (a move's write freeze). Default true. */
  readonly retryMoving?: boolean
  /** Distinguishes this run's row ids from another's on the same model. */
  readonly tag?: string
  /** Only the tenants it accepts; default all. */
  readonly tenantFilter?: (t: TenantPlacement) => boolean
}

export interface WorkloadResult {
  readonly ops: OpRecord[]
  readonly elapsedMs: number
  /** Reads that returned something other than the model says (must stay empty). */
  readonly violations: string[]
  /** Error messages seen (checked for plaintext by the caller). */
  readonly errorMessages: string[]
  /** The errors themselves (the first 500), for a leak capture's `error()`. */
  readonly errors: unknown[]
  readonly retriedMoving: number
}

export interface RunningWorkload {
  /** Ops completed so far (live view). */
  readonly ops: readonly OpRecord[]
  stop(): Promise<WorkloadResult>
}

const EMAIL = (t: string, id: string) => `${PII_MARKER}${t}.${id}@example.test`
const TAX = (t: string, id: string, rev: number) => `${PII_MARKER}tax-${t}-${id}-${rev}`
const PLANS = ['free', 'pro', 'team', null] as const

function customer(t: string, id: string, rev: number, plan: string | null): Expected {
  return { id, name: `Customer ${id}`, email: EMAIL(t, id), tax_id: TAX(t, id, rev), plan, rev }
}

/** `n` customers per tenant, one transaction per tenant, acknowledged in the model (owner "seed"). */
export async function seedTenants(d: Domicile, model: ChaosModel, tenants: readonly TenantPlacement[], n: number, parallel = 4): Promise<void> {
  const queue = [...tenants]
  const worker = async () => {
    for (let t = queue.shift(); t; t = queue.shift()) {
      const rows = Array.from({ length: n }, (_, i) => customer(t.id, `seed-${i}`, 0, PLANS[i % PLANS.length]!))
      await d.withTenant(t.id, async (s) => {
        for (const r of rows) await s.table('customers').insert({ ...r })
      })
      for (const r of rows) model.ack(t.id, 'customers', String(r.id), r, 'seed', `seed-${t.id}`)
    }
  }
  await Promise.all(Array.from({ length: parallel }, worker))
}

const codeOf = (e: unknown): string => (isDomicileError(e) ? e.code : 'ERR_UNTYPED')

/** Starts `clients` concurrent loops; stop() ends them after their current operation. */
export function startWorkload(d: Domicile, model: ChaosModel, opts: WorkloadOptions): RunningWorkload {
  const ops: OpRecord[] = []
  const violations: string[] = []
  const errorMessages: string[] = []
  const errors: unknown[] = []
  let retriedMoving = 0
  let stopping = false
  const started = performance.now()
  const mix = { insert: 30, 'insert-batch': 5, update: 25, find: 20, reveal: 20, ...(opts.mix ?? {}) }
  const kinds = Object.keys(mix) as OpKind[]
  const totalWeight = kinds.reduce((a, k) => a + mix[k], 0)
  const tenants = opts.tenantFilter ? opts.tenants.filter(opts.tenantFilter) : opts.tenants
  const tag = opts.tag ?? 'w'
  const retryMoving = opts.retryMoving ?? true

  /** Runs fn; retries ERR_TENANT_MOVING (a move's short freeze) when asked. */
  const attempt = async <T>(fn: () => Promise<T>): Promise<T> => {
    for (;;) {
      try {
        return await fn()
      } catch (e) {
        if (retryMoving && isDomicileError(e, 'ERR_TENANT_MOVING') && !stopping) {
          retriedMoving++
          await new Promise((r) => setTimeout(r, 10))
          continue
        }
        throw e
      }
    }
  }

  const client = async (c: number) => {
    const rng = opts.rng.fork(`client-${c}`)
    const owner = `${tag}${c}`
    let seq = 0
    while (!stopping) {
      const t = rng.pick(tenants)
      let r = rng.next() * totalWeight
      let kind: OpKind = kinds[0]!
      for (const k of kinds) {
        if ((r -= mix[k]) < 0) {
          kind = k
          break
        }
      }
      const mine = model.certainRows(owner, t.id)
      if (mine.length === 0 && kind !== 'insert-batch') kind = 'insert'
      const oneShot = rng.chance(0.4)
      const t0 = performance.now()
      let failure: unknown
      try {
        if (kind === 'insert') {
          const id = `${owner}-${seq++}`
          const row = customer(t.id, id, 0, rng.pick(PLANS))
          model.attempt(t.id, 'customers', id, row, owner)
          try {
            await attempt(() => (oneShot
              ? d.tenant(t.id).table('customers').insert({ ...row })
              : d.withTenant(t.id, (s) => s.table('customers').insert({ ...row }))))
            model.ack(t.id, 'customers', id, row, owner)
          } catch (e) {
            model.uncertain(t.id, 'customers', id, row, owner)
            throw e
          }
        } else if (kind === 'insert-batch') {
          const group = `${owner}-g${seq}`
          const rows = Array.from({ length: rng.int(2, 5) }, () => customer(t.id, `${owner}-${seq++}`, 0, rng.pick(PLANS)))
          for (const row of rows) model.attempt(t.id, 'customers', String(row.id), row, owner, group)
          try {
            await attempt(() => d.withTenant(t.id, async (s) => {
              for (const row of rows) await s.table('customers').insert({ ...row })
            }))
            for (const row of rows) model.ack(t.id, 'customers', String(row.id), row, owner, group)
          } catch (e) {
            for (const row of rows) model.uncertain(t.id, 'customers', String(row.id), row, owner, group)
            throw e
          }
        } else if (kind === 'update') {
          const s0 = rng.pick(mine)
          const rev = Number(s0.value!.rev) + 1
          const next = { ...s0.value!, tax_id: TAX(t.id, s0.id, rev), rev, plan: rng.pick(PLANS) }
          const patch = { tax_id: next.tax_id, rev, plan: next.plan }
          model.attempt(t.id, 'customers', s0.id, next, owner)
          try {
            const updated = await attempt(() => (oneShot
              ? d.tenant(t.id).table('customers').update(s0.id, patch)
              : d.withTenant(t.id, (s) => s.table('customers').update(s0.id, patch))))
            if (updated === undefined) violations.push(`update of ${t.id}/${s0.id}: row not found`)
            model.ack(t.id, 'customers', s0.id, next, owner)
          } catch (e) {
            model.uncertain(t.id, 'customers', s0.id, next, owner)
            throw e
          }
        } else if (kind === 'find') {
          const s0 = rng.pick(mine)
          // Normalised search: other case, surrounding spaces.
          const probe = `  ${String(s0.value!.email).toUpperCase()} `
          const found = await attempt(() => (oneShot
            ? d.tenant(t.id).table('customers').find({ email: probe })
            : d.withTenant(t.id, (s) => s.table('customers').find({ email: probe }))))
          const ids = found.map((x) => String(x.id))
          if (ids.length !== 1 || ids[0] !== s0.id) violations.push(`find in ${t.id}: expected [${s0.id}], got [${ids.join(', ')}]`)
          for (const x of found) if (x.email !== null && !isSealedValue(x.email)) violations.push(`find in ${t.id}: email came back unsealed`)
        } else {
          const s0 = rng.pick(mine)
          const got = await attempt(() => d.withTenant(t.id, async (s) => {
            const row = await s.table('customers').get(s0.id)
            if (!row) return undefined
            if (rng.chance(0.5)) return s.reveal(row.tax_id, { purpose: 'chaos: check a value', actor: owner })
            const [open] = await s.revealRows([row], { purpose: 'chaos: check a row', actor: owner, columns: ['tax_id', 'email'] })
            return open?.tax_id
          }))
          if (got !== s0.value!.tax_id) violations.push(`reveal in ${t.id}/${s0.id}: ${got === undefined ? 'row missing' : 'wrong plaintext'}`)
        }
      } catch (e) {
        failure = e
        errorMessages.push(e instanceof Error ? `${e.message}\n${e.stack ?? ''}` : String(e))
        if (errors.length < 500) errors.push(e)
      }
      const ms = performance.now() - t0
      ops.push({ region: t.region, tenant: t.id, kind, at: t0 - started, ms, ok: failure === undefined, ...(failure !== undefined ? { code: codeOf(failure) } : {}) })
      if (opts.pauseMs) await new Promise((res) => setTimeout(res, opts.pauseMs))
      else if (failure !== undefined) await new Promise((res) => setTimeout(res, 5)) // no hot loop on a dead region
    }
  }
  const loops = Array.from({ length: opts.clients }, (_, c) => client(c))
  return {
    ops,
    async stop() {
      stopping = true
      await Promise.all(loops)
      return { ops, elapsedMs: performance.now() - started, violations, errorMessages, errors, retriedMoving }
    },
  }
}

/** Runs the workload for `durationMs`; `during` runs alongside (faults), its result awaited too. */
export async function runWorkload<T = void>(d: Domicile, model: ChaosModel, opts: WorkloadOptions & { durationMs: number }, during?: (w: RunningWorkload) => Promise<T>): Promise<WorkloadResult & { during: T | undefined }> {
  const w = startWorkload(d, model, opts)
  const side = during ? during(w) : Promise.resolve(undefined)
  await new Promise((r) => setTimeout(r, opts.durationMs))
  // A fault script that outlasts the duration is awaited before the clients stop.
  const sideResult = await side
  const result = await w.stop()
  return { ...result, during: sideResult }
}

export interface LatencySummary {
  readonly count: number
  readonly errors: number
  readonly errorRate: number
  readonly p50: number
  readonly p99: number
  readonly max: number
  /** Operations per second over `spanMs`. */
  readonly throughput: number
  readonly codes: Readonly<Record<string, number>>
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[i]!
}

export function summarize(ops: readonly OpRecord[], spanMs: number, filter: (o: OpRecord) => boolean = () => true): LatencySummary {
  const sel = ops.filter(filter)
  const ok = sel.filter((o) => o.ok).map((o) => o.ms).sort((a, b) => a - b)
  const codes: Record<string, number> = {}
  for (const o of sel) if (!o.ok) codes[o.code!] = (codes[o.code!] ?? 0) + 1
  const errors = sel.length - ok.length
  const round = (x: number) => Math.round(x * 10) / 10
  return {
    count: sel.length,
    errors,
    errorRate: sel.length ? errors / sel.length : 0,
    p50: round(percentile(ok, 50)),
    p99: round(percentile(ok, 99)),
    max: round(ok.at(-1) ?? 0),
    throughput: round(sel.length / (spanMs / 1000)),
    codes,
  }
}
