/**
 * Test support for the adoption fault scenario (test/chaos/adoption-faults.test.ts): the two
 * PostgreSQL regions of the adoption end-to-end test (an application database in us-east-1 made
 * with the application's own DDL and filled by test/support/adopt-fixture.ts, a new eu-west-1
 * database where the application ran its DDL, the control plane beside us-east-1), the `domicile`
 * command as a child process that can be SIGKILLed (at a moment of the test's choosing, or at one of
 * the operations' kill points through DOMICILE_TEST_KILL_AT), and the checks read directly from
 * the stores: every row of the workload's model exactly once in its tenant's home region, plaintext
 * left in a sealed column, foreign-key orphans, running journal operations, key files.
 *
 * The workload and its model are test/support/adopt-workload.ts's (the same as the end-to-end test).
 *
 * @example
 * const env = await startAdoptionEnv({ name: 'adopt-chaos', tenants: 12, rows: 12_000 })
 * const child = spawnCli(['migrate', 'encrypt', 'contacts.email'], { cwd: env.dir, killAt: 'batch:3' })
 * const run = await child.exited               // run.signal === 'SIGKILL'
 * const problems = checkRowsInHomeRegions(model, await env.storeKeys(), home)
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import pg from 'pg'
import { ADOPT_FIXTURE_DDL, adoptConfig, createAdoptFixture, type AdoptFixture } from './adopt-fixture.js'
import { storeRowKeys, TRACKED_TABLES, type AdoptModel, type TrackedTable } from './adopt-workload.js'
import { DOMICILE_BIN, makeTempDir, type TempDir } from './cli.js'
import { startPgCluster, twoRoleDatabases, type PgCluster, type TwoRoleLogins } from './pg-cluster.js'

export const US = 'us-east-1'
export const EU = 'eu-west-1'

export interface AdoptionEnv {
  /** The operator's working directory: domicile.config.json, the schema file, ./keys. */
  readonly dir: string
  readonly configPath: string
  readonly schemaPath: string
  /** The parsed config as written (regions, control plane, keys, schema). */
  readonly raw: Record<string, unknown>
  readonly logins: Readonly<Record<string, TwoRoleLogins>>
  readonly fixture: AdoptFixture
  /** Superuser sessions on each region's application database (`shop`), read directly. */
  readonly direct: Readonly<Record<string, pg.Client>>
  /** Superuser session on the control plane's database. */
  readonly control: pg.Client
  /** Each tracked table's rows per region: `table/tenant/key` → copies. */
  storeKeys(): Promise<Record<string, Map<string, number>>>
  destroy(): Promise<void>
}

/** Two clusters, the application's database in us-east-1 (filled), its DDL in eu-west-1, a config. */
export async function startAdoptionEnv(opts: { name: string; tenants: number; rows: number; directoryPollMs?: number }): Promise<AdoptionEnv> {
  const clusters: PgCluster[] = []
  const clients: pg.Client[] = []
  let tmp: TempDir | undefined
  try {
    const [us, eu] = await Promise.all([startPgCluster(`${opts.name}-us`), startPgCluster(`${opts.name}-eu`)])
    clusters.push(us, eu)
    const [usLogins, euLogins] = await Promise.all([twoRoleDatabases(us, ['shop', 'control']), twoRoleDatabases(eu, ['shop'])])
    const newRegion = async () => {
      const c = new pg.Client({ connectionString: euLogins.ownerUrl('shop') })
      await c.connect()
      try {
        await c.query(`BEGIN; ${ADOPT_FIXTURE_DDL}; COMMIT`)
      } finally {
        await c.end()
      }
    }
    const [fixture] = await Promise.all([createAdoptFixture(usLogins.ownerUrl('shop'), { tenants: opts.tenants, rows: opts.rows }), newRegion()])
    const connect = async (url: string) => {
      const c = new pg.Client({ connectionString: url })
      await c.connect()
      clients.push(c)
      return c
    }
    const direct = { [US]: await connect(us.url.replace(/\/postgres$/, '/shop')), [EU]: await connect(eu.url.replace(/\/postgres$/, '/shop')) }
    const control = await connect(us.url.replace(/\/postgres$/, '/control'))
    tmp = await makeTempDir(`${opts.name}-`)
    const dir = tmp.path
    const raw = adoptConfig(usLogins, euLogins, { directoryPollMs: opts.directoryPollMs ?? 200 })
    const configPath = join(dir, 'domicile.config.json')
    writeFileSync(configPath, JSON.stringify(raw, null, 2))
    const t = tmp
    return {
      dir, configPath, schemaPath: join(dir, 'domicile.schema.mjs'), raw, fixture, direct, control,
      logins: { [US]: usLogins, [EU]: euLogins },
      async storeKeys() {
        return { [US]: await storeRowKeys(direct[US]!), [EU]: await storeRowKeys(direct[EU]!) }
      },
      async destroy() {
        for (const c of clients) await c.end().catch(() => undefined)
        for (const c of clusters) c.destroy()
        await t.cleanup()
      },
    }
  } catch (e) {
    for (const c of clients) await c.end().catch(() => undefined)
    for (const c of clusters) c.destroy()
    await tmp?.cleanup()
    throw e
  }
}

export interface CliRun {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
  readonly ms: number
}

export interface CliChild {
  readonly process: ChildProcess
  /** stderr so far. */
  stderr(): string
  /** Sends SIGKILL (if still running); resolves once it exited. */
  kill(): Promise<CliRun>
  readonly exited: Promise<CliRun>
}

/**
 * `domicile <args>` as a child process (bin/domicile.mjs, as an operator runs it), in `cwd`, with
 * DOMICILE_TEST_KILL_AT=`killAt` when given (the process SIGKILLs itself at that kill point of
 * src/ops/tenant-move.ts or src/ops/encrypt-column.ts). A guard kills it after `timeoutMs`.
 */
export function spawnCli(args: readonly string[], opts: { cwd: string; killAt?: string; timeoutMs?: number }): CliChild {
  const env: NodeJS.ProcessEnv = { ...process.env, DOMICILE_TEST_KILL_AT: opts.killAt ?? '' }
  delete env.DOMICILE_CONFIG
  const t0 = performance.now()
  const child = spawn(process.execPath, [DOMICILE_BIN, ...args], { cwd: opts.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { stdout += d })
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  const guard = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 90_000)
  const exited = new Promise<CliRun>((resolve, reject) => {
    child.on('error', (e) => { clearTimeout(guard); reject(e) })
    child.on('close', (code, signal) => {
      clearTimeout(guard)
      resolve({ code, signal, stdout, stderr, ms: Math.round(performance.now() - t0) })
    })
  })
  return {
    process: child,
    stderr: () => stderr,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      return exited
    },
    exited,
  }
}

/**
 * Polls `cond` every `pollMs` (default 5) while the child runs and SIGKILLs it `thenWaitMs` after
 * `cond` first holds. Resolves with the run and whether this killed it (false: it ended first).
 */
export async function killWhen(child: CliChild, cond: () => Promise<boolean>, opts: { pollMs?: number; thenWaitMs?: number } = {}): Promise<{ run: CliRun; killed: boolean }> {
  let ended = false
  void child.exited.then(() => { ended = true })
  const pollMs = opts.pollMs ?? 5
  while (!ended) {
    if (await cond()) {
      if (opts.thenWaitMs) await new Promise((r) => setTimeout(r, opts.thenWaitMs))
      if (ended) break
      return { run: await child.kill(), killed: true }
    }
    await new Promise((r) => setTimeout(r, pollMs))
  }
  return { run: await child.exited, killed: false }
}

/** A CLI run that ended by SIGKILL, or why not (for assertion messages). */
export function describeRun(r: CliRun): string {
  return `exit ${r.code ?? r.signal} after ${r.ms} ms; stdout: ${r.stdout.slice(-800)}; stderr: ${r.stderr.slice(-1500)}`
}

/** The directory as stored (control plane, read directly). */
export async function directoryRows(control: pg.Client): Promise<Array<{ id: string; region: string; status: string; custody: string | null; key_id: string | null; key_state: string }>> {
  return (await control.query(`SELECT id, region, status, custody, key_id, key_state FROM domicile_tenants ORDER BY length(id), id`)).rows
}

/** The local keystore's key files (lk_*.json: id → state) and temporary files left in it. */
export function keyFiles(keysDir: string): { keys: Map<string, string>; temporary: string[] } {
  const keys = new Map<string, string>()
  const temporary: string[] = []
  let names: string[] = []
  try {
    names = readdirSync(keysDir)
  } catch {
    return { keys, temporary }
  }
  for (const n of names) {
    if (/^lk_[0-9a-f]{32}\.json$/.test(n)) keys.set(n.slice(0, -'.json'.length), String((JSON.parse(readFileSync(join(keysDir, n), 'utf8')) as { state?: unknown }).state))
    else if (n.endsWith('.tmp')) temporary.push(n)
  }
  return { keys, temporary }
}

/**
 * Every row of the model exactly once, in its tenant's home region only, and no row in either store
 * that the model does not have (a write that was never acknowledged, or one lost from the model).
 * Returns the number of rows expected and the differences (keys only, no values).
 */
export function checkRowsInHomeRegions(model: AdoptModel, stored: Record<string, Map<string, number>>, home: ReadonlyMap<string, string>): { expected: number; problems: string[] } {
  const problems: string[] = []
  let expected = 0
  const regions = Object.keys(stored)
  for (const table of TRACKED_TABLES) {
    for (const tenant of model.tenants()) {
      const h = home.get(tenant)
      if (h === undefined) {
        problems.push(`tenant ${tenant}: no home region in the directory`)
        continue
      }
      for (const key of model.rows(table, tenant).keys()) {
        expected++
        const k = `${table}/${tenant}/${key}`
        const inHome = stored[h]?.get(k) ?? 0
        const elsewhere = regions.filter((r) => r !== h).reduce((n, r) => n + (stored[r]!.get(k) ?? 0), 0)
        if (inHome !== 1 || elsewhere !== 0) problems.push(`${k}: ${inHome} in its home region ${h}, ${elsewhere} elsewhere`)
      }
    }
  }
  for (const region of regions) {
    for (const k of stored[region]!.keys()) {
      const [table, tenant, key] = k.split('/') as [TrackedTable, string, string]
      if (!model.rows(table, tenant).has(key)) problems.push(`${k} in ${region}: not an acknowledged write`)
    }
  }
  return { expected, problems }
}

/**
 * A column that must hold only sealed values: its type, how many rows, NULLs, rows whose first
 * byte is not the sealed format's version (1), and rows containing any of the given plaintext
 * fragments as bytes.
 */
export async function sealedColumnState(c: pg.Client, table: string, column: string, fragments: readonly string[]): Promise<{ type: string | null; rows: number; nulls: number; unsealed: number; plaintext: number; otherForms: string[] }> {
  const cols = (await c.query(`SELECT column_name AS name, data_type AS type FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 AND (column_name = $2 OR column_name LIKE $2 || '\\_\\_%')`, [table, column])).rows as Array<{ name: string; type: string }>
  const main = cols.find((x) => x.name === column)
  const otherForms = cols.filter((x) => x.name !== column).map((x) => `${x.name}:${x.type}`)
  if (!main || main.type !== 'bytea') return { type: main?.type ?? null, rows: -1, nulls: -1, unsealed: -1, plaintext: -1, otherForms }
  const id = `"${column}"`
  const hits = fragments.map((_, i) => `position(convert_to($${i + 1}, 'UTF8') in ${id}) > 0`).join(' OR ') || 'false'
  const r = (await c.query(`SELECT count(*)::int AS rows, count(*) FILTER (WHERE ${id} IS NULL)::int AS nulls,
      count(*) FILTER (WHERE get_byte(${id}, 0) <> 1)::int AS unsealed, count(*) FILTER (WHERE ${hits})::int AS plaintext FROM "${table}"`, [...fragments])).rows[0]
  return { type: main.type, rows: r.rows, nulls: r.nulls, unsealed: r.unsealed, plaintext: r.plaintext, otherForms }
}

/** Rows whose foreign key points at nothing, per constraint of the fixture (only counts above 0). */
export async function foreignKeyOrphans(c: pg.Client): Promise<Array<{ fk: string; n: number }>> {
  const r = await c.query(`
    SELECT 'ads → campaigns' AS fk, count(*)::int AS n FROM ads a LEFT JOIN campaigns c ON (c.company_id, c.id) = (a.company_id, a.campaign_id) WHERE c.id IS NULL
    UNION ALL SELECT 'campaigns → companies', count(*)::int FROM campaigns x LEFT JOIN companies p ON p.id = x.company_id WHERE p.id IS NULL
    UNION ALL SELECT 'contacts → companies', count(*)::int FROM contacts x LEFT JOIN companies p ON p.id = x.company_id WHERE p.id IS NULL
    UNION ALL SELECT 'invoices → companies', count(*)::int FROM invoices x LEFT JOIN companies p ON p.id = x.company_id WHERE p.id IS NULL
    UNION ALL SELECT 'invoices → contacts', count(*)::int FROM invoices i LEFT JOIN contacts c ON (c.company_id, c.id) = (i.company_id, i.contact_id) WHERE i.contact_id IS NOT NULL AND c.id IS NULL
    UNION ALL SELECT 'companies → plans', count(*)::int FROM companies x LEFT JOIN plans p ON p.id = x.plan_id WHERE x.plan_id IS NOT NULL AND p.id IS NULL`)
  return (r.rows as Array<{ fk: string; n: number }>).filter((x) => x.n !== 0)
}

/** The foreign-key constraints of the public schema (table, name, validated, definition), as one string. */
export async function foreignKeyDefinitions(c: pg.Client): Promise<string> {
  return JSON.stringify((await c.query(`SELECT conrelid::regclass::text AS t, conname, convalidated, pg_get_constraintdef(oid) AS def
    FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace ORDER BY 1, 2`)).rows)
}

/** Internal foreign-key triggers left disabled (a copy or purge that disabled them and died). */
export async function disabledInternalTriggers(c: pg.Client): Promise<number> {
  return (await c.query(`SELECT count(*)::int AS n FROM pg_trigger WHERE tgisinternal AND tgenabled <> 'O'`)).rows[0].n
}

/** Operations of the journal still marked running (control plane, read directly). */
export async function runningOperations(control: pg.Client): Promise<Array<{ id: string; kind: string; target: string; state: string }>> {
  return (await control.query(`SELECT id::text, kind, target, state FROM domicile_operations WHERE status = 'running' ORDER BY id`)).rows
}

/** Wrapped data keys per tenant in one store. */
export async function dataKeyTenants(c: pg.Client): Promise<Map<string, number>> {
  const r = await c.query(`SELECT tenant_id, count(*)::int AS n FROM domicile_data_keys GROUP BY 1`)
  return new Map((r.rows as Array<{ tenant_id: string; n: number }>).map((x) => [x.tenant_id, x.n]))
}

/**
 * How one tenant's rows differ between two stores (keys only, no values): rows only in `a`, only in
 * `b`, and rows whose content differs. For a diagnosis, e.g. after a purge refused to run.
 */
export async function tenantRowsDiff(a: pg.Client, b: pg.Client, tenant: string): Promise<Record<string, { onlyA: string[]; onlyB: string[]; differ: string[] }>> {
  const out: Record<string, { onlyA: string[]; onlyB: string[]; differ: string[] }> = {}
  for (const table of TRACKED_TABLES) {
    const col = table === 'companies' ? 'id' : 'company_id'
    const sql = `SELECT id::text AS key, md5(row_to_json(t)::text) AS h FROM ${table} t WHERE ${col}::text = $1`
    const [ra, rb] = await Promise.all([a.query(sql, [tenant]), b.query(sql, [tenant])])
    const ma = new Map((ra.rows as Array<{ key: string; h: string }>).map((r) => [r.key, r.h]))
    const mb = new Map((rb.rows as Array<{ key: string; h: string }>).map((r) => [r.key, r.h]))
    const d = { onlyA: [...ma.keys()].filter((k) => !mb.has(k)), onlyB: [...mb.keys()].filter((k) => !ma.has(k)), differ: [...ma.keys()].filter((k) => mb.has(k) && mb.get(k) !== ma.get(k)) }
    if (d.onlyA.length + d.onlyB.length + d.differ.length > 0) out[table] = d
  }
  return out
}

/**
 * For a move whose purge refused to run (the source changed after the cutover): the journal's
 * freeze and cutover times, and for each of the tenant's rows that differ between source and
 * target, where the model's (acknowledged) version is, and for invoices their issued_at (the
 * inserting transaction's start) relative to the freeze. Keys, times and flags only.
 */
export async function describeMoveDivergence(env: AdoptionEnv, model: AdoptModel, tenant: string, source: string, target: string): Promise<string> {
  const op = (await env.control.query(`SELECT id, state, status, (checkpoint->>'freezeStartedAt')::bigint AS freeze, (checkpoint->>'cutoverAt')::bigint AS cutover
    FROM domicile_operations WHERE target = $1 ORDER BY id DESC LIMIT 1`, [tenant])).rows[0] as { id: string; state: string; status: string; freeze: string | null; cutover: string | null } | undefined
  const freeze = op?.freeze ? Number(op.freeze) : undefined
  const diff = await tenantRowsDiff(env.direct[source]!, env.direct[target]!, tenant)
  const lines = [`operation #${op?.id} ${op?.state}/${op?.status}; freeze started ${freeze ?? '?'}, cutover ${op?.cutover ? Number(op.cutover) - (freeze ?? 0) : '?'} ms later`]
  for (const [table, d] of Object.entries(diff)) {
    const keys = [...d.onlyA, ...d.differ]
    lines.push(`${table}: ${d.onlyA.length} only in ${source}, ${d.onlyB.length} only in ${target}, ${d.differ.length} differ`)
    if (table !== 'invoices') continue
    const sql = `SELECT id::text AS key, (extract(epoch FROM issued_at) * 1000)::bigint AS issued, paid::text AS paid, amount_cents::text AS amount FROM invoices WHERE id::text = ANY($1)`
    const [src, dst] = await Promise.all([env.direct[source]!.query(sql, [keys]), env.direct[target]!.query(sql, [keys])])
    for (const r of src.rows as Array<{ key: string; issued: string; paid: string; amount: string }>) {
      const want = model.rows('invoices', tenant).get(r.key)
      const there = (dst.rows as Array<{ key: string; paid: string; amount: string }>).find((x) => x.key === r.key)
      const matches = (x: { paid: string; amount: string } | undefined) => want !== undefined && x !== undefined && x.paid === want.paid && x.amount === want.amount_cents
      lines.push(`  invoice ${r.key}: inserted by a transaction that began ${freeze ? Number(r.issued) - freeze : '?'} ms after the freeze; acknowledged: ${want !== undefined}; model = ${source}: ${matches(r)}, model = ${target}: ${matches(there)}`)
    }
  }
  return lines.join('\n')
}
