/**
 * Test support for the adoption end-to-end test (test/integration/adopt-e2e.test.ts): the
 * application's workload, running while it is adopted, and the model of what it wrote.
 *
 * The model starts as the fixture database as it is (read with the owner's login before anything
 * else runs) and takes every write the workload was told succeeded. The workload first writes as
 * the application always did (plain `pg` on the owner's login: INSERT/UPDATE/DELETE on contacts,
 * campaigns, ads, invoices, companies); once `useDomicile(d)` is called it reads and writes through
 * Domicile (`d.tenant(id).table(t)`, `d.withTenant` for two statements in one transaction, sealed
 * values revealed with a purpose), retrying only the retryable codes ERR_TENANT_MOVING and
 * ERR_CONFLICT. Any other failure is recorded in `stats.errors` and the write is not in the model.
 *
 * Each worker owns a fixed set of tenants (company c belongs to worker (c - 1) % workers), so a
 * tenant's writes are sequential and its model is exact; reads compare with the model as they go.
 *
 * @example
 * const model = await loadAdoptModel(ownerClient)
 * const w = startAdoptWorkload({ plainUrl, model, focus: ['2', '7'] })
 * await w.acknowledgedAtLeast(20)
 * w.useDomicile(app)
 * await w.stop()
 */
import pg from 'pg'
import { isDomicileError, type Domicile } from '../../src/index.js'
import { ADOPT_FIXTURE_IBANS } from './adopt-fixture.js'
import { mulberry32 } from './seeded-random.js'

/** The tenant tables the model tracks, and the columns compared in each (as text, null for NULL). */
export const TRACKED = {
  companies: ['name', 'plan_id', 'billing_email'],
  campaigns: ['name', 'cost_model', 'state', 'budget'],
  ads: ['campaign_id', 'name', 'target_url', 'impressions', 'clicks'],
  contacts: ['email', 'full_name', 'phone', 'notes'],
  invoices: ['contact_id', 'amount_cents', 'payer_iban', 'paid'],
} as const satisfies Record<string, readonly string[]>

export type TrackedTable = keyof typeof TRACKED
export const TRACKED_TABLES = Object.keys(TRACKED) as TrackedTable[]
/** The columns that become sealed (revealed for the comparison). */
export const SENSITIVE: Readonly<Record<TrackedTable, readonly string[]>> = {
  companies: [], campaigns: [], ads: [], contacts: ['email', 'full_name'], invoices: ['payer_iban'],
}

export type ExpectedRow = Record<string, string | null>

/** A value as the model holds it: text, like `value::text` in SQL. */
export function norm(v: unknown): string | null {
  if (v === null || v === undefined) return null
  if (v instanceof Date) return v.toISOString()
  return String(v)
}

/** Expected rows: table → tenant id → row key → tracked columns. */
export class AdoptModel {
  readonly #rows = new Map<TrackedTable, Map<string, Map<string, ExpectedRow>>>()

  constructor() {
    for (const t of TRACKED_TABLES) this.#rows.set(t, new Map())
  }

  rows(table: TrackedTable, tenant: string): Map<string, ExpectedRow> {
    const byTenant = this.#rows.get(table)!
    let m = byTenant.get(tenant)
    if (!m) byTenant.set(tenant, (m = new Map()))
    return m
  }

  set(table: TrackedTable, tenant: string, key: string, row: ExpectedRow): void {
    this.rows(table, tenant).set(key, row)
  }

  tenants(): string[] {
    const out = new Set<string>()
    for (const byTenant of this.#rows.values()) for (const t of byTenant.keys()) out.add(t)
    return [...out].sort((a, b) => Number(a) - Number(b))
  }

  count(table?: TrackedTable): number {
    let n = 0
    for (const [t, byTenant] of this.#rows) if (table === undefined || t === table) for (const m of byTenant.values()) n += m.size
    return n
  }
}

const q = (s: string) => `"${s}"`

/** Reads the tracked tables as they are (owner or superuser login; no row-level security applies). */
export async function loadAdoptModel(client: pg.Client): Promise<AdoptModel> {
  const model = new AdoptModel()
  for (const table of TRACKED_TABLES) {
    const cols = TRACKED[table].map((c) => `${q(c)}::text AS ${q(c)}`).join(', ')
    const tenantCol = table === 'companies' ? 'id' : 'company_id'
    const r = await client.query(`SELECT ${tenantCol}::text AS tenant, id::text AS key, ${cols} FROM ${table}`)
    for (const row of r.rows as Array<Record<string, string | null>>) {
      const { tenant, key, ...rest } = row
      model.set(table, tenant!, key!, rest)
    }
  }
  return model
}

export interface WorkloadStats {
  /** Acknowledged writes (each statement or transaction the workload was told succeeded). */
  acknowledged: number
  byMode: { plain: number; domicile: number }
  /** Acknowledged writes per phase label (see `phase`). */
  byPhase: Record<string, number>
  /** Reads compared with the model. */
  reads: number
  /** Retries per retryable code (Domicile's, or the SQLSTATE of a deadlock or serialization failure on the plain path). */
  retried: Record<string, number>
  /** The same per phase label. */
  retriedInPhase: Record<string, Record<string, number>>
  /** Longest time one write or read waited through retries (ms). */
  longestRetryMs: number
  /** Everything that failed for another reason, or a read that differed from the model. */
  errors: string[]
}

export interface AdoptWorkload {
  readonly model: AdoptModel
  readonly stats: WorkloadStats
  /** A label counted in `stats.byPhase` for the writes acknowledged from now on. */
  phase: string
  /** From now on every read and write goes through Domicile. */
  useDomicile(d: Domicile): void
  /** Inserts a contact, a campaign with an ad, and an invoice for the tenant now (acknowledged ones join the model). */
  insertEach(tenant: string): Promise<void>
  /** Resolves once `stats.acknowledged` reaches n (rejects after `timeoutMs`, default 30 s). */
  acknowledgedAtLeast(n: number, timeoutMs?: number): Promise<void>
  /** Stops after the operations in flight (idempotent). */
  stop(): Promise<void>
}

export interface AdoptWorkloadOptions {
  /** The application's own login on its database (plain writes before the switch). */
  readonly plainUrl: string
  readonly model: AdoptModel
  /** Tenants written to more often (a third of each worker's operations when it owns one). */
  readonly focus?: readonly string[]
  readonly workers?: number
  /** Pause between two operations of a worker (ms). Default 5. */
  readonly pauseMs?: number
  readonly seed?: number
  /** Give up retrying one operation after this long (ms); then it is an error. Default 30 000. */
  readonly retryForMs?: number
}

const RETRYABLE = ['ERR_TENANT_MOVING', 'ERR_CONFLICT'] as const
const PURPOSE = { purpose: 'adoption e2e: workload read-back', actor: 'workload' }


class Failure extends Error {}

/** Starts the workload (plain mode). */
export function startAdoptWorkload(opts: AdoptWorkloadOptions): AdoptWorkload {
  const { model } = opts
  const workers = opts.workers ?? 4
  const pauseMs = opts.pauseMs ?? 5
  const retryForMs = opts.retryForMs ?? 30_000
  const focus = new Set(opts.focus ?? [])
  const stats: WorkloadStats = { acknowledged: 0, byMode: { plain: 0, domicile: 0 }, byPhase: {}, reads: 0, retried: {}, retriedInPhase: {}, longestRetryMs: 0, errors: [] }
  const pool = new pg.Pool({ connectionString: opts.plainUrl, max: workers })
  let domicile: Domicile | undefined
  let stopping = false
  let stopped: Promise<void> | undefined
  let seq = 0
  const waiters: Array<{ n: number; resolve: () => void }> = []
  const api: AdoptWorkload = {
    model, stats, phase: 'start',
    useDomicile(d) { domicile = d },
    async insertEach(tenant) {
      const r = mulberry32(seq)
      for (const x of [0.1, 0.4, 0.7]) await operate(r, tenant, x)
    },
    acknowledgedAtLeast(n, timeoutMs = 30_000) {
      if (stats.acknowledged >= n) return Promise.resolve()
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the workload acknowledged ${stats.acknowledged} writes in ${timeoutMs} ms, expected ${n} (errors: ${stats.errors.slice(0, 3).join(' | ')})`)), timeoutMs)
        waiters.push({ n, resolve: () => { clearTimeout(timer); resolve() } })
      })
    },
    stop() {
      stopping = true
      return (stopped ??= Promise.all(loops).then(() => pool.end()))
    },
  }

  const ack = (mode: 'plain' | 'domicile') => {
    stats.acknowledged++
    stats.byMode[mode]++
    stats.byPhase[api.phase] = (stats.byPhase[api.phase] ?? 0) + 1
    for (let i = waiters.length - 1; i >= 0; i--) if (stats.acknowledged >= waiters[i]!.n) waiters.splice(i, 1)[0]!.resolve()
  }

  /** Runs fn, retrying the retryable codes; true if it succeeded, false (recorded) otherwise. */
  async function attempt(what: string, fn: () => Promise<void>): Promise<boolean> {
    const started = Date.now()
    for (;;) {
      try {
        await fn()
        stats.longestRetryMs = Math.max(stats.longestRetryMs, Date.now() - started)
        return true
      } catch (e) {
        const code = isDomicileError(e) ? e.code : undefined
        // An insert that leaves its key to the database never collides with an existing row: a
        // duplicate key (ERR_CONFLICT from a unique violation) is a failure, not a race to retry
        // (retrying would draw the next value and hide a sequence behind the rows it must exceed).
        const duplicateKey = code === 'ERR_CONFLICT' && /same key already exists/.test((e as Error).message)
        // On the plain path the application retries what PostgreSQL rolled back as a deadlock
        // victim or a serialization failure (nothing of it was written), as applications do.
        const sqlState = code === undefined ? (e as { code?: unknown })?.code : undefined
        const retry = code !== undefined ? !duplicateKey && (RETRYABLE as readonly string[]).includes(code) : sqlState === '40P01' || sqlState === '40001'
        if (retry && Date.now() - started < retryForMs) {
          const k = (code ?? sqlState) as string
          stats.retried[k] = (stats.retried[k] ?? 0) + 1
          const inPhase = (stats.retriedInPhase[api.phase] ??= {})
          inPhase[k] = (inPhase[k] ?? 0) + 1
          await new Promise((r) => setTimeout(r, 10))
          continue
        }
        const detail = e instanceof Failure ? e.message : isDomicileError(e) ? `${e.code}: ${e.message}` : `${(e as { code?: string }).code ?? ''} ${String((e as Error)?.message ?? e)}`
        stats.errors.push(`${what}: ${detail}`)
        return false
      }
    }
  }

  const pick = <T>(r: () => number, xs: readonly T[]): T | undefined => (xs.length === 0 ? undefined : xs[Math.floor(r() * xs.length)])
  const keysOf = (table: TrackedTable, tenant: string) => [...model.rows(table, tenant).keys()]

  function differs(what: string, want: ExpectedRow | undefined, got: Record<string, unknown> | undefined, cols: readonly string[]): void {
    if (want === undefined && got === undefined) return
    if (want === undefined || got === undefined) throw new Failure(`${what}: ${got === undefined ? 'row missing' : 'row not in the model'}`)
    const bad = cols.filter((c) => norm(got[c]) !== want[c])
    if (bad.length > 0) throw new Failure(`${what}: ${bad.join(', ')} differ from the last acknowledged write`)
  }

  async function operate(r: () => number, c: string, forced?: number): Promise<void> {
    const d = domicile
    const mode = d ? 'domicile' : 'plain'
    const n = ++seq
    const x = forced ?? r()
    const cid = Number(c)
    if (x < 0.2) {
      // insert a contact
      const v = { email: `wl${n}@customer${cid}.example.com`, full_name: `Person W${n}`, phone: `+1 202 555 ${String(n % 10000).padStart(4, '0')}`, notes: `wl:${n}` }
      let key = ''
      if (await attempt(`insert contacts (tenant ${c}, ${mode})`, async () => {
        if (d) key = norm((await d.tenant(c).table('contacts').insert(v)).id)!
        else key = (await pool.query('INSERT INTO contacts (company_id, email, full_name, phone, notes) VALUES ($1, $2, $3, $4, $5) RETURNING id::text AS id', [cid, v.email, v.full_name, v.phone, v.notes])).rows[0].id
      })) {
        model.set('contacts', c, key, { ...v })
        ack(mode)
      }
    } else if (x < 0.35) {
      // update a contact's e-mail and name
      const key = pick(r, keysOf('contacts', c))
      if (key === undefined) return
      const patch = { email: `upd${n}@customer${cid}.example.com`, full_name: `Person U${n}` }
      if (await attempt(`update contacts ${key} (tenant ${c}, ${mode})`, async () => {
        if (d) {
          if ((await d.tenant(c).table('contacts').update(key, patch)) === undefined) throw new Failure('update found no row')
        } else if ((await pool.query('UPDATE contacts SET email = $3, full_name = $4 WHERE company_id = $1 AND id = $2', [cid, key, patch.email, patch.full_name])).rowCount !== 1) throw new Failure('update found no row')
      })) {
        model.set('contacts', c, key, { ...model.rows('contacts', c).get(key)!, ...patch })
        ack(mode)
      }
    } else if (x < 0.45) {
      // a campaign and an ad of it, in one transaction
      const camp = { name: `WL campaign ${n}`, cost_model: 'cpc', state: 'active', budget: `${n % 1000}.50` }
      const ad = { name: `WL ad ${n}`, target_url: `https://shop.example.com/wl/${n}`, impressions: '0', clicks: '0' }
      let ck = ''
      let ak = ''
      if (await attempt(`insert campaigns+ads (tenant ${c}, ${mode})`, async () => {
        if (d) {
          await d.withTenant(c, async (s) => {
            ck = norm((await s.table('campaigns').insert(camp)).id)!
            ak = norm((await s.table('ads').insert({ ...ad, campaign_id: ck })).id)!
          })
        } else {
          const client = await pool.connect()
          try {
            await client.query('BEGIN')
            ck = (await client.query('INSERT INTO campaigns (company_id, name, cost_model, state, budget) VALUES ($1, $2, $3, $4, $5) RETURNING id::text AS id', [cid, camp.name, camp.cost_model, camp.state, camp.budget])).rows[0].id
            ak = (await client.query('INSERT INTO ads (company_id, campaign_id, name, target_url, impressions, clicks) VALUES ($1, $2, $3, $4, 0, 0) RETURNING id::text AS id', [cid, ck, ad.name, ad.target_url])).rows[0].id
            await client.query('COMMIT')
          } catch (e) {
            await client.query('ROLLBACK').catch(() => undefined)
            throw e
          } finally {
            client.release()
          }
        }
      })) {
        model.set('campaigns', c, ck, { ...camp })
        model.set('ads', c, ak, { ...ad, campaign_id: ck })
        ack(mode)
      }
    } else if (x < 0.55) {
      // one more click on an ad (read, then write)
      const key = pick(r, keysOf('ads', c))
      if (key === undefined) return
      const want = model.rows('ads', c).get(key)!
      const clicks = String(Number(want.clicks) + 1)
      if (await attempt(`update ads ${key} (tenant ${c}, ${mode})`, async () => {
        if (d) {
          await d.withTenant(c, async (s) => {
            const row = await s.table('ads').get(key)
            differs(`ads ${key} read before its update (tenant ${c})`, want, row, TRACKED.ads)
            if ((await s.table('ads').update(key, { clicks })) === undefined) throw new Failure('update found no row')
          })
        } else if ((await pool.query('UPDATE ads SET clicks = $3 WHERE company_id = $1 AND id = $2', [cid, key, clicks])).rowCount !== 1) throw new Failure('update found no row')
      })) {
        model.set('ads', c, key, { ...want, clicks })
        ack(mode)
      }
    } else if (x < 0.6) {
      // delete an ad the workload added
      const key = pick(r, keysOf('ads', c).filter((k) => model.rows('ads', c).get(k)!.name!.startsWith('WL ad ')))
      if (key === undefined) return
      if (await attempt(`delete ads ${key} (tenant ${c}, ${mode})`, async () => {
        if (d) {
          if (!(await d.tenant(c).table('ads').delete(key))) throw new Failure('delete found no row')
        } else if ((await pool.query('DELETE FROM ads WHERE company_id = $1 AND id = $2', [cid, key])).rowCount !== 1) throw new Failure('delete found no row')
      })) {
        model.rows('ads', c).delete(key)
        ack(mode)
      }
    } else if (x < 0.75) {
      // an invoice for one of the company's contacts
      const contact = pick(r, keysOf('contacts', c))
      if (contact === undefined) return
      const v = { contact_id: contact, amount_cents: String(100 + (n % 5000)), payer_iban: ADOPT_FIXTURE_IBANS[n % ADOPT_FIXTURE_IBANS.length]!, paid: 'false' }
      let key = ''
      if (await attempt(`insert invoices (tenant ${c}, ${mode})`, async () => {
        if (d) key = norm((await d.tenant(c).table('invoices').insert({ contact_id: contact, amount_cents: Number(v.amount_cents), payer_iban: v.payer_iban, paid: false })).id)!
        else key = (await pool.query('INSERT INTO invoices (company_id, contact_id, amount_cents, payer_iban, paid) VALUES ($1, $2, $3, $4, false) RETURNING id::text AS id', [cid, contact, Number(v.amount_cents), v.payer_iban])).rows[0].id
      })) {
        model.set('invoices', c, key, v)
        ack(mode)
      }
    } else if (x < 0.85) {
      // an invoice is paid (and its amount corrected)
      const key = pick(r, keysOf('invoices', c))
      if (key === undefined) return
      const patch = { paid: 'true', amount_cents: String(200 + (n % 7000)) }
      if (await attempt(`update invoices ${key} (tenant ${c}, ${mode})`, async () => {
        if (d) {
          if ((await d.tenant(c).table('invoices').update(key, { paid: true, amount_cents: Number(patch.amount_cents) })) === undefined) throw new Failure('update found no row')
        } else if ((await pool.query('UPDATE invoices SET paid = true, amount_cents = $3 WHERE company_id = $1 AND id = $2', [cid, key, Number(patch.amount_cents)])).rowCount !== 1) throw new Failure('update found no row')
      })) {
        model.set('invoices', c, key, { ...model.rows('invoices', c).get(key)!, ...patch })
        ack(mode)
      }
    } else if (x < 0.9) {
      // the company's billing address (the tenants table, keyed by the tenant id)
      const billing_email = `billing${n}@company${cid}.example.com`
      if (await attempt(`update companies ${c} (${mode})`, async () => {
        if (d) {
          if ((await d.tenant(c).table('companies').update(c, { billing_email })) === undefined) throw new Failure('update found no row')
        } else if ((await pool.query('UPDATE companies SET billing_email = $2 WHERE id = $1', [cid, billing_email])).rowCount !== 1) throw new Failure('update found no row')
      })) {
        model.set('companies', c, c, { ...model.rows('companies', c).get(c)!, billing_email })
        ack(mode)
      }
    } else {
      // reads: a contact (revealed) and an invoice, compared with the last acknowledged writes
      const contact = pick(r, keysOf('contacts', c))
      const invoice = pick(r, keysOf('invoices', c))
      const campaign = pick(r, keysOf('campaigns', c))
      await attempt(`read (tenant ${c}, ${mode})`, async () => {
        if (d) {
          await d.withTenant(c, async (s) => {
            if (contact !== undefined) {
              const row = await s.table('contacts').get(contact)
              const [open] = row ? await s.revealRows([row], PURPOSE) : [undefined]
              differs(`contacts ${contact} (tenant ${c})`, model.rows('contacts', c).get(contact), open, TRACKED.contacts)
            }
            if (invoice !== undefined) {
              const row = await s.table('invoices').get(invoice)
              const [open] = row ? await s.revealRows([row], PURPOSE) : [undefined]
              differs(`invoices ${invoice} (tenant ${c})`, model.rows('invoices', c).get(invoice), open, TRACKED.invoices)
            }
          })
          if (campaign !== undefined) {
            // find on a plain column, one statement
            const ads = await d.tenant(c).table('ads').find({ campaign_id: campaign }, { limit: 1000 })
            const want = [...model.rows('ads', c)].filter(([, a]) => a.campaign_id === campaign).map(([k]) => k).sort()
            const got = ads.map((a) => norm(a.id)!).sort()
            if (JSON.stringify(got) !== JSON.stringify(want)) throw new Failure(`ads of campaign ${campaign} (tenant ${c}): ${got.length} found, ${want.length} expected`)
          }
        } else {
          if (contact !== undefined) {
            const row = (await pool.query('SELECT email, full_name, phone, notes FROM contacts WHERE company_id = $1 AND id = $2', [cid, contact])).rows[0]
            differs(`contacts ${contact} (tenant ${c}, plain)`, model.rows('contacts', c).get(contact), row, TRACKED.contacts)
          }
        }
      })
      stats.reads++
    }
  }

  const loops: Array<Promise<void>> = []
  const tenants = model.tenants()
  for (let w = 0; w < workers; w++) {
    const mine = tenants.filter((t) => (Number(t) - 1) % workers === w)
    const mineFocus = mine.filter((t) => focus.has(t))
    const r = mulberry32((opts.seed ?? 1) * 1000 + w)
    loops.push((async () => {
      while (!stopping) {
        const c = mineFocus.length > 0 && r() < 1 / 3 ? pick(r, mineFocus)! : pick(r, mine)
        if (c === undefined) return
        try {
          await operate(r, c)
        } catch (e) {
          stats.errors.push(`workload: ${String((e as Error)?.stack ?? e)}`)
        }
        if (pauseMs > 0) await new Promise((res) => setTimeout(res, pauseMs))
      }
    })())
  }
  return api
}

/** Each tracked table's rows in one store: `table/tenant/key` → how many rows carry that key (owner or superuser login). */
export async function storeRowKeys(client: pg.Client): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  for (const table of TRACKED_TABLES) {
    const tenantCol = table === 'companies' ? 'id' : 'company_id'
    const r = await client.query(`SELECT ${tenantCol}::text AS tenant, id::text AS key, count(*)::int AS n FROM ${table} GROUP BY 1, 2`)
    for (const row of r.rows as Array<{ tenant: string; key: string; n: number }>) out.set(`${table}/${row.tenant}/${row.key}`, row.n)
  }
  return out
}

/**
 * Every tracked row of a tenant as it reads through Domicile, sealed columns revealed: table → key →
 * row. One transaction per page of `pageRows` (the cursor carries over): each revealed value is one
 * audit record, chained at commit, and a chain of a few hundred links per commit is cheaper than
 * one of thousands. Read when nothing writes to the tenant.
 */
export async function readThroughDomicile(d: Domicile, tenant: string, opts: { pageRows?: number; timing?: { listMs: number; revealMs: number; commitMs: number } } = {}): Promise<Map<TrackedTable, Map<string, Record<string, unknown>>>> {
  const out = new Map<TrackedTable, Map<string, Record<string, unknown>>>()
  const timing = opts.timing
  for (const table of TRACKED_TABLES) {
    const rows = new Map<string, Record<string, unknown>>()
    let cursor: string | undefined
    do {
      const t0 = performance.now()
      let t2 = 0
      cursor = await d.withTenant(tenant, async (s) => {
        const page = await s.table(table).list({ limit: opts.pageRows ?? 250, ...(cursor ? { cursor } : {}) })
        const t1 = performance.now()
        const open = SENSITIVE[table].length > 0 ? await s.revealRows(page.rows, { purpose: 'adoption e2e: compare with the workload', actor: 'test', columns: SENSITIVE[table] }) : page.rows
        t2 = performance.now()
        if (timing) {
          timing.listMs += t1 - t0
          timing.revealMs += t2 - t1
        }
        for (const r of open) rows.set(table === 'companies' ? tenant : norm(r.id)!, r)
        return page.nextCursor
      })
      if (timing) timing.commitMs += performance.now() - t2
    } while (cursor)
    out.set(table, rows)
  }
  return out
}

/** Differences between what a tenant reads and the model (at most `limit`, described without values). */
export function compareTenant(model: AdoptModel, tenant: string, got: Map<TrackedTable, Map<string, Record<string, unknown>>>, limit = 10): string[] {
  const out: string[] = []
  for (const table of TRACKED_TABLES) {
    const want = model.rows(table, tenant)
    const have = got.get(table) ?? new Map()
    for (const [key, row] of want) {
      if (out.length >= limit) return out
      const r = have.get(key)
      if (!r) { out.push(`tenant ${tenant}: ${table} ${key} missing`); continue }
      const bad = TRACKED[table].filter((c) => norm(r[c]) !== row[c])
      if (bad.length > 0) out.push(`tenant ${tenant}: ${table} ${key}: ${bad.join(', ')} differ`)
    }
    for (const key of have.keys()) {
      if (out.length >= limit) return out
      if (!want.has(key)) out.push(`tenant ${tenant}: ${table} ${key} is not an acknowledged write`)
    }
  }
  return out
}
