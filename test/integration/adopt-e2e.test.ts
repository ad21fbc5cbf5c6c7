/**
 * Adoption end to end (issue #13 item 5), on real PostgreSQL with two regions: region us-east-1 is
 * the application's existing database (created with its own DDL and filled: 50 tenants, 100,000
 * rows over four tenant tables with foreign keys, plus the tenants table), region eu-west-1 a new
 * database on a second cluster where the application ran its own DDL (and seeded its reference
 * data); the control plane beside the first. While the application's workload runs the whole time
 * (plain `pg` until its tenants are registered, then through Domicile), the operator runs
 * `adopt inspect` → `migrate` → `adopt tenants` → encrypts contacts.email, contacts.full_name and
 * invoices.payer_iban → moves companies 2, 3, 5, 7 and 11 to eu-west-1. Then: every acknowledged
 * write is present exactly once; each tenant's rows are only in its home region (read directly
 * from each store); no plaintext is left in the encrypted columns; each tenant's decrypted content
 * equals what the workload expects; foreign keys are intact.
 *
 * The workload retries only what is retryable (ERR_TENANT_MOVING, ERR_CONFLICT; on the plain path a
 * deadlock victim, counted per step: the migrate step asserts there was none). A duplicate key on
 * an insert that left its key to the database is a failure, never retried. A step that fails
 * skips the steps that need it, naming it; the checks of the stores run whatever got done.
 */
import { strict as assert } from 'node:assert'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test, type TestContext } from 'node:test'
import pg from 'pg'
import { createDomicile, loadSchema, parseConfig, type Domicile } from '../../src/index.js'
import { encryptColumn, type ColumnMigrationResult } from '../../src/ops/encrypt-column.js'
import { moveTenant, type MoveResult } from '../../src/ops/tenant-move.js'
import { ADOPT_FIXTURE_DDL, ADOPT_FIXTURE_IBANS, createAdoptFixture } from '../support/adopt-fixture.js'
import {
  compareTenant, loadAdoptModel, readThroughDomicile, startAdoptWorkload, storeRowKeys, TRACKED_TABLES,
  type AdoptModel, type AdoptWorkload,
} from '../support/adopt-workload.js'
import { makeTempDir, runCli, type TempDir } from '../support/cli.js'
import { postgresUnavailable, startPgCluster, twoRoleDatabases, type PgCluster, type TwoRoleLogins } from '../support/pg-cluster.js'

const missing = postgresUnavailable()
const US = 'us-east-1'
const EU = 'eu-west-1'
const TENANTS = 50
const ROWS = 100_000
const MOVED = ['2', '3', '5', '7', '11']
const SENSITIVE = ['contacts.email', 'contacts.full_name', 'invoices.payer_iban']
const APP_TABLES = ['plans', 'companies', 'campaigns', 'ads', 'contacts', 'invoices', 'newsletter_signups']
const SEED = 13

describe('adoption end to end: inspect → migrate → adopt tenants → encrypt → move, with the application running (real PostgreSQL, two regions)', { skip: missing }, () => {
  const clusters: Partial<Record<string, PgCluster>> = {}
  const logins: Partial<Record<string, TwoRoleLogins>> = {}
  /** Superuser sessions on each region's database: the stores read directly, not through Domicile. */
  const direct: Record<string, pg.Client> = {}
  let dir: TempDir
  let raw: Record<string, unknown>
  let schemaFile: string
  let model: AdoptModel
  let workload: AdoptWorkload | undefined
  /** The application's instance (the workload) and the operator's (encrypt, moves): two processes' worth. */
  let app: Domicile | undefined
  let ops: Domicile | undefined
  let fkBefore: string
  let relfilesBefore: string
  const done = new Set<string>()
  const timings: Array<[string, number]> = []
  const started = performance.now()

  /** Later steps need the earlier ones: without them they are skipped, naming the step that failed. */
  function needs(t: TestContext, ...steps: string[]): boolean {
    const absent = steps.filter((s) => !done.has(s))
    if (absent.length === 0) return true
    t.skip(`needs the step(s) that failed above: ${absent.join(', ')}`)
    return false
  }

  async function timed<T>(t: TestContext, label: string, fn: () => Promise<T>): Promise<T> {
    const t0 = performance.now()
    try {
      return await fn()
    } finally {
      const ms = Math.round(performance.now() - t0)
      timings.push([label, ms])
      t.diagnostic(`${label}: ${ms} ms (workload: ${workload?.stats.acknowledged ?? 0} writes acknowledged so far)`)
    }
  }

  const openDomicile = async () => createDomicile({ config: parseConfig(raw, dir.path), schema: await loadSchema(schemaFile) })
  const fkDefinitions = async (c: pg.Client) => JSON.stringify((await c.query(`SELECT conrelid::regclass::text AS t, conname, convalidated, pg_get_constraintdef(oid) AS def
      FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace ORDER BY 1, 2`)).rows)
  const relfilenodes = async (c: pg.Client) => JSON.stringify((await c.query(`SELECT relname, relfilenode FROM pg_class WHERE relname = ANY($1) ORDER BY relname`, [APP_TABLES])).rows)

  before(async () => {
    const t0 = performance.now()
    const [us, eu] = await Promise.all([startPgCluster('adopt-e2e-us'), startPgCluster('adopt-e2e-eu')])
    clusters[US] = us
    clusters[EU] = eu
    ;[logins[US], logins[EU]] = await Promise.all([twoRoleDatabases(us, ['shop', 'control']), twoRoleDatabases(eu, ['shop'])])
    const tClusters = performance.now()
    // us-east-1: the application's database as it is today. eu-west-1: the application's own
    // migrations (its DDL) run in the new region's empty database; its reference data arrives
    // through `adopt globals` below.
    const newRegion = async () => {
      const c = new pg.Client({ connectionString: logins[EU]!.ownerUrl('shop') })
      await c.connect()
      try {
        await c.query(`BEGIN; ${ADOPT_FIXTURE_DDL}; COMMIT`)
      } finally {
        await c.end()
      }
    }
    const [fixture] = await Promise.all([createAdoptFixture(logins[US]!.ownerUrl('shop'), { tenants: TENANTS, rows: ROWS }), newRegion()])
    for (const region of [US, EU]) {
      direct[region] = new pg.Client({ connectionString: clusters[region]!.url.replace(/\/postgres$/, '/shop') })
      await direct[region]!.connect()
    }
    const tFixture = performance.now()
    assert.ok(fixture.counts.campaigns + fixture.counts.ads + fixture.counts.contacts + fixture.counts.invoices >= ROWS)
    fkBefore = await fkDefinitions(direct[US]!)
    relfilesBefore = await relfilenodes(direct[US]!)
    model = await loadAdoptModel(direct[US]!)
    dir = await makeTempDir('adopt-e2e-')
    schemaFile = join(dir.path, 'domicile.schema.mjs')
    raw = {
      regions: {
        [US]: { driver: 'postgres', url: logins[US]!.dataUrl('shop'), ownerUrl: logins[US]!.ownerUrl('shop'), jurisdiction: 'US', poolSize: 6 },
        [EU]: { driver: 'postgres', url: logins[EU]!.dataUrl('shop'), ownerUrl: logins[EU]!.ownerUrl('shop'), jurisdiction: 'EU', poolSize: 6 },
      },
      controlPlane: { driver: 'postgres', url: logins[US]!.dataUrl('control'), ownerUrl: logins[US]!.ownerUrl('control') },
      keys: { dir: './keys' },
      schema: './domicile.schema.mjs',
      directoryPollMs: 200,
    }
    writeFileSync(join(dir.path, 'domicile.config.json'), JSON.stringify(raw, null, 2))
    // The application is running before adoption starts, and keeps running until the checks.
    workload = startAdoptWorkload({ plainUrl: logins[US]!.ownerUrl('shop'), model, focus: MOVED, workers: 4, seed: SEED })
    workload.phase = 'before adoption'
    await workload.acknowledgedAtLeast(20)
    timings.push(['clusters', Math.round(tClusters - t0)], ['fixture', Math.round(tFixture - tClusters)], ['setup', Math.round(performance.now() - t0)])
  })

  after(async () => {
    await workload?.stop().catch(() => undefined)
    await app?.close().catch(() => undefined)
    await ops?.close().catch(() => undefined)
    for (const c of Object.values(direct)) await c.end().catch(() => undefined)
    for (const c of Object.values(clusters)) c?.destroy()
    await dir?.cleanup()
  })

  test('the fixture: the application\'s own DDL, ≥ 50 tenants, ≥ 100,000 rows over 4 tenant tables with foreign keys', async (t) => {
    for (const [label, ms] of timings) t.diagnostic(`${label}: ${ms} ms`)
    assert.equal(model.tenants().length, TENANTS)
    const rows = (['campaigns', 'ads', 'contacts', 'invoices'] as const).reduce((n, table) => n + (model.count(table) ?? 0), 0)
    assert.ok(rows >= ROWS, `${rows} rows`)
    const fks = JSON.parse(fkBefore) as Array<{ t: string }>
    for (const table of ['campaigns', 'ads', 'contacts', 'invoices', 'companies']) assert.ok(fks.some((f) => f.t === table), `${table} has a foreign key`)
    // Nothing of Domicile's in either database yet.
    for (const region of [US, EU]) assert.equal((await direct[region]!.query(`SELECT count(*)::int AS n FROM pg_class WHERE relname LIKE 'domicile%'`)).rows[0].n, 0)
    assert.ok(workload!.stats.byMode.plain >= 20, 'the application writes as it always did')
    done.add('fixture')
  })

  test('adopt inspect describes the application\'s tables (three columns accepted as sensitive)', async (t) => {
    if (!needs(t, 'fixture')) return
    workload!.phase = 'inspect'
    const r = await timed(t, 'adopt inspect', () => runCli(['adopt', 'inspect', '--region', US, '--tenant-column', 'company_id', '--out', schemaFile,
      '--sensitive', SENSITIVE.join(','), '--json'], { cwd: dir.path }))
    assert.equal(r.code, 0, r.stderr)
    const doc = JSON.parse(r.stdout) as { tables: Array<{ name: string; classification: string; inModel: boolean }>; suggestions: Array<{ table: string; column: string; accepted: boolean }>; written: string | null }
    const cls = Object.fromEntries(doc.tables.map((x) => [x.name, x.classification]))
    assert.deepEqual(cls, { companies: 'tenants-table', campaigns: 'tenant', ads: 'tenant', contacts: 'tenant', invoices: 'tenant', plans: 'global', newsletter_signups: 'global' })
    assert.deepEqual(doc.suggestions.filter((s) => s.accepted).map((s) => `${s.table}.${s.column}`).sort(), [...SENSITIVE].sort())
    assert.equal(doc.written, schemaFile)
    const schema = await loadSchema(schemaFile)
    for (const target of SENSITIVE) {
      const [table, column] = target.split('.') as [string, string]
      assert.ok(schema.table(table).adopted)
      assert.ok(schema.table(table).columns.get(column)?.sensitive, `${target} is sensitive`)
    }
    done.add('inspect')
  })

  test('migrate attaches in both regions (the new region got the application\'s own DDL) and lists the columns pending encryption', async (t) => {
    if (!needs(t, 'inspect')) return
    workload!.phase = 'migrate'
    type Result = { store: string; ok: boolean; code?: string; message?: string; pending?: Array<{ table: string; column: string }> }
    // migrate is idempotent: a run that failed on the live database is run again (at most five
    // times, so the later steps can go on), and the failed runs fail this test at its end.
    const failedRuns: string[] = []
    let results: Result[] = []
    await timed(t, 'migrate', async () => {
      for (let run = 1; run <= 5; run++) {
        const r = await runCli(['migrate', '--json'], { cwd: dir.path })
        results = r.stdout.trim().startsWith('[') ? JSON.parse(r.stdout) as Result[] : []
        if (r.code === 0) break
        failedRuns.push(`run ${run}: exit ${r.code}: ${results.filter((x) => !x.ok).map((x) => `${x.store} ${x.code} ${x.message}`).join('; ') || r.stderr.trim()}`)
      }
    })
    assert.ok(results.length > 0 && results.every((x) => x.ok), failedRuns.join('\n'))
    for (const region of [US, EU]) {
      const res = results.find((x) => x.store === region)
      assert.ok(res, `a result for ${region}`)
      // Pending: columns holding plaintext rows; the new region's tables are still empty.
      assert.deepEqual(res.pending?.map((p) => `${p.table}.${p.column}`).sort() ?? [], region === US ? [...SENSITIVE].sort() : [], region)
      const rls = await direct[region]!.query(`SELECT relname FROM pg_class WHERE relname = ANY($1) AND relrowsecurity ORDER BY relname`, [['ads', 'campaigns', 'companies', 'contacts', 'invoices']])
      assert.equal(rls.rows.length, 5, `${region}: row-level security on the five tenant tables`)
    }
    // The application's database was attached to, not rewritten.
    assert.equal(await relfilenodes(direct[US]!), relfilesBefore)
    assert.equal(await fkDefinitions(direct[US]!), fkBefore)
    app = await openDomicile()
    ops = await openDomicile()
    done.add('migrate')
    assert.deepEqual(failedRuns, [], 'migrate failed on the live application database before it succeeded')
    // Online: none of the application's transactions was rolled back by the attach (a deadlock
    // between its locks and the application's writes); the workload retried any that were.
    assert.deepEqual(workload!.stats.retriedInPhase.migrate ?? {}, {}, 'application transactions rolled back during migrate (SQLSTATE: count)')
  })

  test('adopt tenants registers every company, homed in us-east-1 with a kms key (idempotent); the application switches to Domicile', async (t) => {
    if (!needs(t, 'migrate')) return
    workload!.phase = 'adopt tenants'
    const args = ['adopt', 'tenants', '--region', US, '--from-table', 'companies', '--custody', 'kms', '--json']
    const r = await timed(t, 'adopt tenants', () => runCli(args, { cwd: dir.path }))
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`)
    const listed = async () => (await ops!.listTenants()).map((x) => ({ id: x.id, region: x.region, status: x.status, custody: x.key?.custody, keyId: x.key?.keyId, keyState: x.keyState }))
      .sort((a, b) => Number(a.id) - Number(b.id))
    const tenants = await listed()
    assert.deepEqual(tenants.map((x) => x.id), model.tenants(), 'every company is a tenant, by its id')
    for (const x of tenants) {
      assert.equal(x.region, US, `tenant ${x.id}`)
      assert.equal(x.status, 'active', `tenant ${x.id}`)
      assert.equal(x.custody, 'kms', `tenant ${x.id}`)
      assert.equal(x.keyState, 'enabled', `tenant ${x.id}`)
    }
    // Idempotent: a second run registers nothing new and changes no key.
    const again = await timed(t, 'adopt tenants (again)', () => runCli(args, { cwd: dir.path }))
    assert.equal(again.code, 0, `${again.stdout}\n${again.stderr}`)
    assert.deepEqual(await listed(), tenants)
    // The reference data (plans) becomes replicated global data, so eu-west-1 has the rows the
    // moved companies' plan_id points to; the newsletter's e-mail addresses are refused (exit 1).
    const globals = await timed(t, 'adopt globals', () => runCli(['adopt', 'globals', '--region', US, '--json'], { cwd: dir.path }))
    assert.equal(globals.code, 1, `${globals.stdout}\n${globals.stderr}`)
    const g = JSON.parse(globals.stdout) as { tables: Array<{ table: string; rows: number }>; refused: Array<{ table: string }>; replicated: Array<{ ok: boolean }> }
    assert.deepEqual(g.tables.map((x) => [x.table, x.rows]), [['plans', 3]])
    assert.deepEqual(g.refused.map((x) => x.table), ['newsletter_signups'])
    assert.ok(g.replicated.every((x) => x.ok), globals.stdout)
    // From now on the application reads and writes through Domicile.
    workload!.useDomicile(app!)
    workload!.phase = 'through Domicile'
    done.add('adopt tenants')
    await workload!.acknowledgedAtLeast(workload!.stats.acknowledged + 30)
    assert.deepEqual(workload!.stats.errors, [], 'the workload through Domicile, before encryption')
  })

  test('encrypt contacts.email, contacts.full_name and invoices.payer_iban in place, online, verified', async (t) => {
    if (!needs(t, 'adopt tenants')) return
    workload!.phase = 'encrypt'
    // One column after the other, as `domicile migrate encrypt T.C` is run (one process runs one
    // column at a time: each run holds a control-plane owner connection for its lease).
    const results: ColumnMigrationResult[] = []
    await timed(t, 'encrypt 3 columns', async () => {
      for (const target of SENSITIVE) results.push(await encryptColumn(ops!, target, { verify: true, actor: 'adopt-e2e' }))
    })
    for (const r of results) {
      t.diagnostic(`${r.target}: ${r.rows} rows in ${r.elapsedMs} ms (${r.rowsPerSecond} rows/s); verify ${JSON.stringify(r.verify)}`)
      assert.equal(r.state, 'done', r.target)
      assert.equal(r.verify?.ok, true, `${r.target}: ${JSON.stringify(r.verify)}`)
    }
    assert.ok(results.find((r) => r.target === 'contacts.email')!.rows > 0)
    // Both regions: the column is the sealed one now (bytea), the plaintext column and the shadow are gone.
    for (const region of [US, EU]) {
      const cols = await direct[region]!.query(`SELECT table_name || '.' || column_name AS c, data_type FROM information_schema.columns
        WHERE table_schema = 'public' AND table_name IN ('contacts', 'invoices') AND (column_name LIKE 'email%' OR column_name LIKE 'full_name%' OR column_name LIKE 'payer_iban%') ORDER BY 1`)
      assert.deepEqual(cols.rows.map((x) => `${x.c}:${x.data_type}`), ['contacts.email:bytea', 'contacts.full_name:bytea', 'invoices.payer_iban:bytea'], region)
    }
    done.add('encrypt')
  })

  test('move companies 2, 3, 5, 7 and 11 to eu-west-1, online', async (t) => {
    if (!needs(t, 'encrypt')) return
    workload!.phase = 'move'
    // One tenant after the other, each with the default purge grace (the directory's trust bound).
    const results: MoveResult[] = []
    await timed(t, 'move 5 tenants', async () => {
      for (const id of MOVED) results.push(await moveTenant(ops!, id, { to: EU, actor: 'adopt-e2e' }))
    })
    for (const r of results) {
      t.diagnostic(`tenant ${r.tenant}: ${r.rows} rows, ${r.keys} keys, freeze ${r.freezeMs} ms, ${r.elapsedMs} ms`)
      assert.equal(r.state, 'done', `tenant ${r.tenant}`)
      assert.equal(r.from, US)
      assert.equal(r.to, EU)
      assert.ok(r.freezeMs !== null && r.freezeMs < 2000, `tenant ${r.tenant}: freeze ${r.freezeMs} ms`)
    }
    for (const id of MOVED) assert.equal((await ops!.getTenant(id)).region, EU, `tenant ${id}`)
    done.add('move')
    // The application writes to the moved tenants in their new region: new rows whose keys the
    // new region's database draws (bigserial) beside the rows the move brought.
    workload!.phase = 'after the moves'
    for (const id of MOVED) await workload!.insertEach(id)
    assert.deepEqual(workload!.stats.errors, [], 'the workload through the moves')
  })

  test('every acknowledged write is present exactly once, and each tenant\'s rows are only in its home region (read directly from each store)', async (t) => {
    if (!needs(t, 'fixture')) return
    await workload!.stop()
    const s = workload!.stats
    t.diagnostic(`workload: ${s.acknowledged} writes acknowledged (plain ${s.byMode.plain}, through Domicile ${s.byMode.domicile}), ${s.reads} reads checked, retried ${JSON.stringify(s.retried)}, longest retry wait ${s.longestRetryMs} ms`)
    t.diagnostic(`writes per phase: ${JSON.stringify(s.byPhase)}`)
    assert.deepEqual(s.errors.slice(0, 10), [], `${s.errors.length} workload errors`)
    // The application wrote during each step that completed (phase → the step).
    const phases = { 'before adoption': 'fixture', inspect: 'inspect', migrate: 'migrate', 'adopt tenants': 'adopt tenants', 'through Domicile': 'adopt tenants', encrypt: 'encrypt', move: 'move' }
    for (const [phase, step] of Object.entries(phases)) if (done.has(step)) assert.ok((s.byPhase[phase] ?? 0) > 0, `the application wrote during "${phase}"`)
    const home = new Map<string, string>(model.tenants().map((id) => [id, US]))
    if (done.has('adopt tenants')) for (const x of await ops!.listTenants()) home.set(x.id, x.region)
    if (done.has('move')) for (const id of MOVED) assert.equal(home.get(id), EU)
    const stored: Record<string, Map<string, number>> = { [US]: await storeRowKeys(direct[US]!), [EU]: await storeRowKeys(direct[EU]!) }
    const problems: string[] = []
    let expected = 0
    for (const table of TRACKED_TABLES) {
      for (const tenant of model.tenants()) {
        for (const key of model.rows(table, tenant).keys()) {
          expected++
          const k = `${table}/${tenant}/${key}`
          const inHome = stored[home.get(tenant)!]!.get(k) ?? 0
          const elsewhere = stored[home.get(tenant) === US ? EU : US]!.get(k) ?? 0
          if (inHome !== 1 || elsewhere !== 0) problems.push(`${k}: ${inHome} in its home region ${home.get(tenant)}, ${elsewhere} in the other`)
        }
      }
    }
    for (const region of [US, EU]) {
      for (const k of stored[region]!.keys()) {
        const [table, tenant, key] = k.split('/') as [typeof TRACKED_TABLES[number], string, string]
        if (!model.rows(table, tenant).has(key)) problems.push(`${k} in ${region}: not an acknowledged write`)
      }
    }
    assert.deepEqual(problems.slice(0, 10), [], `${problems.length} differences over ${expected} expected rows`)
    // Key material follows its tenant too.
    for (const region of [US, EU]) {
      const keys = await direct[region]!.query(`SELECT tenant_id, count(*)::int AS n FROM domicile_data_keys GROUP BY 1`).catch(() => ({ rows: [] as Array<{ tenant_id: string; n: number }> }))
      for (const row of keys.rows as Array<{ tenant_id: string; n: number }>) assert.equal(home.get(row.tenant_id), region, `tenant ${row.tenant_id}'s keys in ${region}`)
    }
    t.diagnostic(`${expected} rows checked in both stores`)
  })

  test('no plaintext in the encrypted columns of either store', async (t) => {
    if (!needs(t, 'encrypt')) return
    const ibans = ADOPT_FIXTURE_IBANS.map((i) => `position(convert_to('${i}', 'UTF8') in payer_iban) > 0`).join(' OR ')
    for (const region of [US, EU]) {
      const c = direct[region]!
      const contacts = (await c.query(`SELECT count(*)::int AS n,
          count(*) FILTER (WHERE email IS NULL OR full_name IS NULL)::int AS nulls,
          count(*) FILTER (WHERE get_byte(email, 0) <> 1 OR get_byte(full_name, 0) <> 1)::int AS unsealed,
          count(*) FILTER (WHERE position(convert_to('example.com', 'UTF8') in email) > 0 OR position(convert_to('@customer', 'UTF8') in email) > 0
                              OR position(convert_to('Person ', 'UTF8') in full_name) > 0)::int AS plaintext
        FROM contacts`)).rows[0]
      const invoices = (await c.query(`SELECT count(*)::int AS n,
          count(*) FILTER (WHERE payer_iban IS NULL)::int AS nulls,
          count(*) FILTER (WHERE get_byte(payer_iban, 0) <> 1)::int AS unsealed,
          count(*) FILTER (WHERE ${ibans})::int AS plaintext
        FROM invoices`)).rows[0]
      t.diagnostic(`${region}: ${contacts.n} contacts, ${invoices.n} invoices`)
      assert.deepEqual({ nulls: contacts.nulls, unsealed: contacts.unsealed, plaintext: contacts.plaintext }, { nulls: 0, unsealed: 0, plaintext: 0 }, `${region} contacts`)
      assert.deepEqual({ nulls: invoices.nulls, unsealed: invoices.unsealed, plaintext: invoices.plaintext }, { nulls: 0, unsealed: 0, plaintext: 0 }, `${region} invoices`)
      // No text column of the tables holds an e-mail either (the shadow and the old column are gone).
      const textCols = (await c.query(`SELECT table_name || '.' || column_name AS c FROM information_schema.columns WHERE table_schema = 'public'
          AND table_name IN ('contacts', 'invoices') AND data_type = 'text' ORDER BY 1`)).rows.map((x) => x.c)
      for (const col of SENSITIVE) assert.ok(!textCols.includes(col), `${region}: ${col} is not text`)
    }
    assert.ok(((await direct[EU]!.query('SELECT count(*)::int AS n FROM contacts')).rows[0].n as number) > 0, 'the moved tenants\' contacts are in eu-west-1')
  })

  test('each tenant\'s decrypted content, read through Domicile, equals what the workload expects', async (t) => {
    if (!needs(t, 'adopt tenants')) return
    const tenants = model.tenants()
    const problems: string[] = []
    let rows = 0
    const timing = { listMs: 0, revealMs: 0, commitMs: 0 }
    await timed(t, 'read back 50 tenants through Domicile', async () => {
      const queue = [...tenants]
      await Promise.all(Array.from({ length: 4 }, async () => {
        for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
          const got = await readThroughDomicile(app!, id, { timing })
          for (const m of got.values()) rows += m.size
          problems.push(...compareTenant(model, id, got, 5))
        }
      }))
    })
    t.diagnostic(`${rows} rows read and compared (summed over the readers: list ${Math.round(timing.listMs)} ms, reveal ${Math.round(timing.revealMs)} ms, commit ${Math.round(timing.commitMs)} ms)`)
    assert.deepEqual(problems.slice(0, 20), [], `${problems.length} differences`)
    assert.equal(rows, TRACKED_TABLES.reduce((n, table) => n + model.count(table), 0))
  })

  test('foreign keys intact in each store: no orphan, the same validated constraints as the application created', async (t) => {
    for (const region of [US, EU]) {
      const c = direct[region]!
      const orphans = (await c.query(`
        SELECT 'ads → campaigns' AS fk, count(*)::int AS n FROM ads a LEFT JOIN campaigns c ON (c.company_id, c.id) = (a.company_id, a.campaign_id) WHERE c.id IS NULL
        UNION ALL SELECT 'campaigns → companies', count(*)::int FROM campaigns x LEFT JOIN companies p ON p.id = x.company_id WHERE p.id IS NULL
        UNION ALL SELECT 'contacts → companies', count(*)::int FROM contacts x LEFT JOIN companies p ON p.id = x.company_id WHERE p.id IS NULL
        UNION ALL SELECT 'invoices → companies', count(*)::int FROM invoices x LEFT JOIN companies p ON p.id = x.company_id WHERE p.id IS NULL
        UNION ALL SELECT 'invoices → contacts', count(*)::int FROM invoices i LEFT JOIN contacts c ON (c.company_id, c.id) = (i.company_id, i.contact_id) WHERE i.contact_id IS NOT NULL AND c.id IS NULL
        UNION ALL SELECT 'companies → plans', count(*)::int FROM companies x LEFT JOIN plans p ON p.id = x.plan_id WHERE x.plan_id IS NOT NULL AND p.id IS NULL`)).rows
      assert.deepEqual(orphans.filter((o) => o.n !== 0), [], region)
      assert.equal(await fkDefinitions(c), fkBefore, `${region}: the application's foreign keys, validated`)
      const disabled = (await c.query(`SELECT count(*)::int AS n FROM pg_trigger WHERE tgisinternal AND tgenabled <> 'O'`)).rows[0].n
      assert.equal(disabled, 0, `${region}: no foreign-key trigger left disabled`)
    }
    t.diagnostic(`total: ${Math.round(performance.now() - started)} ms since the suite started (${timings.map(([l, ms]) => `${l} ${ms}`).join(', ')})`)
  })
})
