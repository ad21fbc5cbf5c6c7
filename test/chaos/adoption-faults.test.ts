/**
 * Issue #14, item 7: the adoption path (docs/ADOPTING.md) under faults, on two real PostgreSQL
 * clusters, while the application's workload writes the whole time (test/support/adopt-workload.ts:
 * plain `pg` until its tenants are registered, then through Domicile; its model holds every
 * acknowledged write).
 *
 * us-east-1 is the application's existing database (its own DDL, 12 companies, 12,000 rows over
 * four tenant tables with foreign keys), eu-west-1 a new database where the application ran its DDL.
 *
 * 1. `adopt inspect` (contacts.email and contacts.full_name sensitive), `migrate` attaching.
 * 2. `adopt tenants --concurrency 1` SIGKILLed after it registered a random number of companies
 *    (the directory is watched), then run again to completion: every company registered once, with
 *    an enabled key; a key file bound to no tenant is counted (the docs allow one per registration
 *    in flight when the process was killed). `adopt globals`: plans copied, newsletter_signups refused.
 * 3. `migrate encrypt contacts.email` SIGKILLed at a random batch (inside the batch's transaction,
 *    or just after it committed), run again and SIGKILLed inside the swap (column dropped, not yet
 *    committed, the table locked), run again with --verify to completion.
 * 4. `tenant move` of two companies to eu-west-1, each SIGKILLed at a kill point (one from copy /
 *    cutover, one from verify / purge), finished with `tenant move --resume`.
 * 5. Read directly from the stores: every acknowledged write exactly once in its tenant's home
 *    region and nowhere else, wrapped keys only at home, no plaintext in contacts.email, foreign keys
 *    intact, no running journal operation; through Domicile: each tenant's decrypted content equals
 *    the model; the audit chains verify; no plaintext in any output or error (leak capture).
 *
 * Replay a run with DOMICILE_CHAOS_SEED=<seed printed below>.
 */
import { strict as assert } from 'node:assert'
import { join } from 'node:path'
import { after, before, describe, test, type TestContext } from 'node:test'
import { createDomicile, loadSchema, parseConfig, type Domicile } from '../../src/index.js'
import { verifyAuditChains } from '../../src/audit/audit-chain-verify.js'
import { compareTenant, loadAdoptModel, readThroughDomicile, startAdoptWorkload, TRACKED_TABLES, type AdoptModel, type AdoptWorkload } from '../support/adopt-workload.js'
import {
  checkRowsInHomeRegions, dataKeyTenants, describeMoveDivergence, describeRun, directoryRows, disabledInternalTriggers, EU, foreignKeyDefinitions, foreignKeyOrphans, keyFiles,
  killWhen, runningOperations, sealedColumnState, spawnCli, startAdoptionEnv, US, type AdoptionEnv, type CliRun,
} from '../support/chaos-adoption.js'
import { recordFigures } from '../support/chaos-figures.js'
import { startLeakCapture, type LeakCapture } from '../support/chaos-leaks.js'
import { chaosRng } from '../support/chaos-rng.js'
import { postgresUnavailable } from '../support/pg-cluster.js'

const missing = postgresUnavailable()
const rng = chaosRng('adoption-faults')
const TENANTS = 12
const ROWS = 12_000
const SENSITIVE = ['contacts.email', 'contacts.full_name']
const ENCRYPTED = 'contacts.email'
/** Kill points of a move (src/ops/tenant-move.ts): one move dies before or in its cutover, the other after it. */
const MOVE_EARLY = ['copy:1', 'copy:2', 'copy:3', 'cutover', 'cutover:verified']
const MOVE_LATE = ['verify', 'purge', 'purge:deleted']
/** Fragments of every e-mail the fixture and the workload write into contacts.email. */
const EMAIL_FRAGMENTS = ['.example.com', '@customer']

const companies = Array.from({ length: TENANTS }, (_, i) => String(i + 1))
const moveRng = rng.fork('moves')
const MOVED = [moveRng.pick(companies)]
MOVED.push(moveRng.pick(companies.filter((c) => c !== MOVED[0])))

describe('adoption killed at chosen points and resumed, with the application writing (two PostgreSQL clusters)', { skip: missing }, () => {
  let env: AdoptionEnv
  let model: AdoptModel
  let workload: AdoptWorkload | undefined
  /** The application's instance (the workload) and the operator's (the checks). */
  let app: Domicile | undefined
  let ops: Domicile | undefined
  let leaks: LeakCapture
  let fkBefore: string
  const done = new Set<string>()
  const started = performance.now()
  const timings: Array<[string, number]> = []
  /** Output of every command after `adopt inspect` (which reads the application's plaintext by design). */
  const outputs: Array<[string, CliRun]> = []
  const kills: string[] = []
  const facts: Record<string, number | string> = {}

  function needs(t: TestContext, ...steps: string[]): boolean {
    const absent = steps.filter((s) => !done.has(s))
    if (absent.length === 0) return true
    t.skip(`needs the step(s) that failed above: ${absent.join(', ')}`)
    return false
  }

  /** Runs `domicile <args>` to its end (killed at `killAt` when given), timed, its output kept for the leak check. */
  async function cli(t: TestContext, label: string, args: string[], killAt?: string): Promise<CliRun> {
    const run = await spawnCli(args, { cwd: env.dir, ...(killAt ? { killAt } : {}) }).exited
    outputs.push([label, run])
    timings.push([label, run.ms])
    t.diagnostic(`${label}: ${run.signal ?? `exit ${run.code}`} after ${run.ms} ms (workload: ${workload?.stats.acknowledged ?? 0} writes acknowledged so far)`)
    return run
  }

  const openDomicile = async () => createDomicile({ config: parseConfig(env.raw, env.dir), schema: await loadSchema(env.schemaPath) })

  before(async () => {
    leaks = startLeakCapture('adoption-faults')
    const t0 = performance.now()
    env = await startAdoptionEnv({ name: 'adopt-chaos', tenants: TENANTS, rows: ROWS })
    timings.push(['setup', Math.round(performance.now() - t0)])
    fkBefore = await foreignKeyDefinitions(env.direct[US]!)
    model = await loadAdoptModel(env.direct[US]!)
    workload = startAdoptWorkload({ plainUrl: env.logins[US]!.ownerUrl('shop'), model, focus: MOVED, workers: 3, seed: rng.fork('workload').int(1, 1_000_000) })
    workload.phase = 'before adoption'
    await workload.acknowledgedAtLeast(10)
  })

  after(async () => {
    leaks?.stop()
    await workload?.stop().catch(() => undefined)
    await app?.close().catch(() => undefined)
    await ops?.close().catch(() => undefined)
    await env?.destroy()
  })

  test('adopt inspect and migrate, while the application writes through plain pg', async (t) => {
    workload!.phase = 'inspect'
    const inspect = await spawnCli(['adopt', 'inspect', '--region', US, '--tenant-column', 'company_id', '--out', env.schemaPath, '--sensitive', SENSITIVE.join(','), '--json'], { cwd: env.dir }).exited
    timings.push(['adopt inspect', inspect.ms])
    assert.equal(inspect.code, 0, describeRun(inspect))
    const schema = await loadSchema(env.schemaPath)
    for (const target of SENSITIVE) {
      const [table, column] = target.split('.') as [string, string]
      assert.ok(schema.table(table).adopted && schema.table(table).columns.get(column)?.sensitive, `${target} is an adopted sensitive column`)
    }
    workload!.phase = 'migrate'
    // Idempotent; a run that failed on the live database is run again (the failures fail the test).
    const failed: string[] = []
    let ok = false
    for (let i = 1; i <= 5 && !ok; i++) {
      const r = await cli(t, `migrate (run ${i})`, ['migrate', '--json'])
      ok = r.code === 0
      if (!ok) failed.push(describeRun(r))
    }
    assert.ok(ok, failed.join('\n'))
    app = await openDomicile()
    ops = await openDomicile()
    done.add('migrate')
    assert.deepEqual(failed, [], 'migrate failed on the live database before it succeeded')
    assert.ok((workload!.stats.byPhase.migrate ?? 0) + (workload!.stats.byPhase.inspect ?? 0) > 0, 'the application wrote during inspect and migrate')
  })

  test('adopt tenants SIGKILLed after registering some companies, run again: every company once, with an enabled key; adopt globals', async (t) => {
    if (!needs(t, 'migrate')) return
    const r = rng.fork('adopt-tenants')
    workload!.phase = 'adopt tenants'
    const args = ['adopt', 'tenants', '--region', US, '--from-table', 'companies', '--custody', 'kms', '--concurrency', '1']
    const killAfter = r.int(1, TENANTS - 4)
    const registered = async () => Number((await env.control.query('SELECT count(*)::int AS n FROM domicile_tenants')).rows[0].n)
    const child = spawnCli(args, { cwd: env.dir })
    // A few milliseconds later: the next registration is then somewhere between making its key and committing its entry.
    const thenWaitMs = r.int(0, 30)
    const { run, killed } = await killWhen(child, async () => (await registered()) >= killAfter, { thenWaitMs })
    outputs.push(['adopt tenants (killed)', run])
    timings.push(['adopt tenants (killed)', run.ms])
    assert.ok(killed && run.signal === 'SIGKILL', `adopt tenants was killed part way: ${describeRun(run)}`)
    const atKill = await directoryRows(env.control)
    kills.push(`adopt tenants with ${atKill.length} of ${TENANTS} registered (${thenWaitMs} ms after registration no. ${killAfter} was seen)`)
    const keysAtKill = keyFiles(join(env.dir, 'keys'))
    const unboundAtKill = [...keysAtKill.keys.keys()].filter((id) => !atKill.some((x) => x.key_id === id))
    t.diagnostic(`killed with ${atKill.length} of ${TENANTS} companies registered; ${keysAtKill.keys.size} key files, ${unboundAtKill.length} bound to no tenant, ${keysAtKill.temporary.length} temporary files`)
    assert.ok(atKill.length >= killAfter && atKill.length < TENANTS, `${atKill.length} registered at the kill`)
    // Each registration is whole: a directory entry has its key, enabled, in the keystore.
    for (const x of atKill) assert.ok(x.key_id && keysAtKill.keys.get(x.key_id) === 'enabled', `tenant ${x.id} registered at the kill has its key`)

    const again = await cli(t, 'adopt tenants (again)', [...args, '--json'])
    assert.equal(again.code, 0, describeRun(again))
    const res = JSON.parse(again.stdout) as { found: number; added: string[]; existing: string[]; elsewhere: unknown[] }
    assert.deepEqual(res.existing, atKill.map((x) => x.id), 'the companies registered before the kill are found, unchanged')
    assert.deepEqual([...res.existing, ...res.added].sort((a, b) => Number(a) - Number(b)), model.tenants())
    assert.deepEqual(res.elsewhere, [])

    const rows = await directoryRows(env.control)
    assert.deepEqual(rows.map((x) => x.id), model.tenants(), 'every company registered exactly once, by its id')
    const files = keyFiles(join(env.dir, 'keys'))
    for (const x of rows) {
      assert.deepEqual({ region: x.region, status: x.status, custody: x.custody, keyState: x.key_state }, { region: US, status: 'active', custody: 'kms', keyState: 'enabled' }, `tenant ${x.id}`)
      assert.equal(files.keys.get(x.key_id!), 'enabled', `tenant ${x.id}'s key file`)
    }
    assert.equal(new Set(rows.map((x) => x.key_id)).size, rows.length, 'no two tenants share a key')
    for (const x of atKill) assert.equal(rows.find((y) => y.id === x.id)?.key_id, x.key_id, `tenant ${x.id} kept its key`)
    // docs/ADOPTING.md: only a process killed between making a key and writing its tenant's entry
    // leaves a key bound to no tenant: at most one per registration in flight (--concurrency 1).
    const unbound = [...files.keys.keys()].filter((id) => !rows.some((x) => x.key_id === id))
    assert.deepEqual(unbound, unboundAtKill, 'the run to completion leaves no key of its own unbound')
    assert.ok(unbound.length <= 1, `${unbound.length} key files bound to no tenant`)
    facts.adoptTenantsKilledAfterRegistered = atKill.length
    facts.unboundKeysLeftByKill = unbound.length
    facts.keystoreTempFilesLeftByKill = files.temporary.length

    const globals = await cli(t, 'adopt globals', ['adopt', 'globals', '--region', US, '--json'])
    assert.equal(globals.code, 1, `adopt globals exits 1 (newsletter_signups refused): ${describeRun(globals)}`)
    const g = JSON.parse(globals.stdout) as { tables: Array<{ table: string; rows: number }>; refused: Array<{ table: string }>; replicated: Array<{ ok: boolean }> }
    assert.deepEqual(g.tables.map((x) => [x.table, x.rows]), [['plans', 3]])
    assert.deepEqual(g.refused.map((x) => x.table), ['newsletter_signups'])
    assert.ok(g.replicated.length > 0 && g.replicated.every((x) => x.ok), globals.stdout)
    assert.equal((await env.direct[EU]!.query('SELECT count(*)::int AS n FROM plans')).rows[0].n, 3, 'the plans are in eu-west-1')

    // From now on the application reads and writes through Domicile.
    workload!.useDomicile(app!)
    workload!.phase = 'through Domicile'
    done.add('adopt tenants')
    await workload!.acknowledgedAtLeast(workload!.stats.acknowledged + 20)
    assert.deepEqual(workload!.stats.errors, [], 'the workload through Domicile')
  })

  test('migrate encrypt contacts.email SIGKILLed mid-batch and in the swap, run again with --verify: done, every value opens', async (t) => {
    if (!needs(t, 'adopt tenants')) return
    const r = rng.fork('encrypt')
    workload!.phase = 'encrypt'
    const base = ['migrate', 'encrypt', ENCRYPTED, '--batch-size', '100']
    // Inside a batch's transaction (rolled back), or just after it committed.
    const first = `${r.pick(['batch', 'convert'])}:${r.int(1, 20)}`
    const k1 = await cli(t, `migrate encrypt (killed at ${first})`, base, first)
    assert.equal(k1.signal, 'SIGKILL', `killed at ${first}: ${describeRun(k1)}`)
    kills.push(`migrate encrypt at ${first}`)
    const op = (await runningOperations(env.control)).find((o) => o.target === ENCRYPTED)
    assert.ok(op, 'the killed run left its operation running in the journal')
    // Inside the swap's transaction: the plaintext column dropped and the shadow renamed, not committed, the table locked.
    const k2 = await cli(t, 'migrate encrypt (killed at swap:1)', base, 'swap:1')
    assert.equal(k2.signal, 'SIGKILL', `killed in the swap: ${describeRun(k2)}`)
    kills.push('migrate encrypt at swap:1')
    const cols = (await env.direct[US]!.query(`SELECT column_name || ':' || data_type AS c FROM information_schema.columns WHERE table_name = 'contacts' AND column_name LIKE 'email%' ORDER BY 1`)).rows.map((x) => x.c)
    assert.deepEqual(cols, ['email:text', 'email__shadow:bytea'], 'the swap killed before its commit changed nothing')
    const fin = await cli(t, 'migrate encrypt --verify (to completion)', [...base, '--verify', '--json'])
    assert.equal(fin.code, 0, describeRun(fin))
    const res = JSON.parse(fin.stdout) as { state: string; rows: number; verify?: { ok: boolean; opened: number } }
    assert.equal(res.state, 'done')
    assert.equal(res.verify?.ok, true, fin.stdout)
    for (const region of [US, EU]) {
      const s = await sealedColumnState(env.direct[region]!, 'contacts', 'email', EMAIL_FRAGMENTS)
      assert.deepEqual({ type: s.type, otherForms: s.otherForms }, { type: 'bytea', otherForms: [] }, `${region}: contacts.email is the sealed column, no shadow left`)
    }
    facts.encryptFirstKill = first
    facts.encryptValuesVerified = res.verify?.opened ?? 0
    done.add('encrypt')
    assert.deepEqual(workload!.stats.errors, [], 'the workload during the encryption')
  })

  test('tenant move of two companies to eu-west-1, each SIGKILLed at a kill point, finished with --resume', async (t) => {
    if (!needs(t, 'encrypt')) return
    const r = rng.fork('move-points')
    workload!.phase = 'move'
    const points = [r.pick(MOVE_EARLY), r.pick(MOVE_LATE)]
    for (const [i, company] of MOVED.entries()) {
      const point = points[i]!
      const k = await cli(t, `tenant move ${company} (killed at ${point})`, ['tenant', 'move', company, '--to', EU, '--batch', '100'], point)
      assert.equal(k.signal, 'SIGKILL', `move of ${company} killed at ${point}: ${describeRun(k)}`)
      kills.push(`tenant move ${company} at ${point}`)
      const op = (await runningOperations(env.control)).find((o) => o.target === company)
      const entry = (await directoryRows(env.control)).find((x) => x.id === company)
      t.diagnostic(`company ${company} killed at ${point}: journal at "${op?.state ?? 'none'}", directory ${entry?.region}/${entry?.status}`)
      assert.ok(op, 'the killed move left its operation running in the journal')
      const res = await cli(t, `tenant move ${company} --resume`, ['tenant', 'move', company, '--resume', '--json'])
      if (res.code !== 0) t.diagnostic(`company ${company}: ${await describeMoveDivergence(env, model, company, US, EU).catch((e: unknown) => `(no diagnosis: ${String(e)})`)}`)
      assert.equal(res.code, 0, describeRun(res))
      const out = JSON.parse(res.stdout) as { state: string; from: string; to: string }
      assert.deepEqual([out.state, out.from, out.to], ['done', US, EU], `company ${company}`)
      facts[`move${i + 1}`] = `company ${company} killed at ${point} (journal at ${op.state})`
    }
    const rows = await directoryRows(env.control)
    for (const c of MOVED) assert.deepEqual(rows.filter((x) => x.id === c).map((x) => [x.region, x.status]), [[EU, 'active']], `company ${c}`)
    done.add('move')
    // The application writes to the moved companies in their new region (keys drawn from eu-west-1's sequences).
    workload!.phase = 'after the moves'
    for (const c of MOVED) await workload!.insertEach(c)
    assert.deepEqual(workload!.stats.errors, [], 'the workload through the moves')
  })

  test('invariants read from the stores: every acknowledged write once at home, no plaintext, content, foreign keys, journal, audit chains, no leak', async (t) => {
    if (!needs(t, 'adopt tenants')) return
    await workload!.stop()
    const s = workload!.stats
    t.diagnostic(`workload: ${s.acknowledged} writes acknowledged (plain ${s.byMode.plain}, through Domicile ${s.byMode.domicile}), ${s.reads} reads checked, retried ${JSON.stringify(s.retried)}, longest retry ${s.longestRetryMs} ms; per phase ${JSON.stringify(s.byPhase)}`)
    // Every check runs and reports; the test fails at the end with all of them.
    const problems: string[] = []
    const expect = (label: string, actual: unknown, expected: unknown) => {
      if (JSON.stringify(actual) !== JSON.stringify(expected)) problems.push(`${label}: ${JSON.stringify(actual).slice(0, 600)}, expected ${JSON.stringify(expected)}`)
    }
    expect(`workload errors (${s.errors.length})`, s.errors.slice(0, 10), [])
    for (const phase of ['before adoption', 'adopt tenants', 'through Domicile', ...(done.has('encrypt') ? ['encrypt'] : []), ...(done.has('move') ? ['move'] : [])]) {
      if (!((s.byPhase[phase] ?? 0) > 0)) problems.push(`the application did not write during "${phase}"`)
    }

    // Every acknowledged write exactly once, in its tenant's home region only; wrapped keys likewise.
    const home = new Map((await directoryRows(env.control)).map((x) => [x.id, x.region]))
    const rows = checkRowsInHomeRegions(model, await env.storeKeys(), home)
    if (rows.problems.length > 0) {
      const kinds: Record<string, number> = {}
      for (const p of rows.problems) {
        const k = p.replace(/^\S+ in (us-east-1|eu-west-1): /, 'in $1: ').replace(/^\w+\/[^:]+: /, '')
        kinds[k] = (kinds[k] ?? 0) + 1
      }
      problems.push(`${rows.problems.length} of ${rows.expected} rows not exactly once at home: ${JSON.stringify(kinds)}; e.g. ${rows.problems.slice(0, 10).join('; ')}`)
    }
    for (const region of [US, EU]) {
      for (const [tenant] of await dataKeyTenants(env.direct[region]!)) if (home.get(tenant) !== region) problems.push(`tenant ${tenant}'s wrapped keys in ${region}, its home is ${home.get(tenant)}`)
    }
    // No plaintext in the encrypted column, in either store.
    if (done.has('encrypt')) {
      for (const region of [US, EU]) {
        const c = await sealedColumnState(env.direct[region]!, 'contacts', 'email', EMAIL_FRAGMENTS)
        t.diagnostic(`${region}: ${c.rows} contacts, e-mail sealed`)
        expect(`${region}: contacts.email`, c, { ...c, type: 'bytea', nulls: 0, unsealed: 0, plaintext: 0, otherForms: [] })
      }
    }
    // contacts.full_name is declared sensitive and not encrypted here: the application's writes
    // through Domicile went sealed into its shadow column, its older rows are plaintext (read both ways above).
    for (const region of [US, EU]) {
      const cols = (await env.direct[region]!.query(`SELECT column_name || ':' || data_type AS c FROM information_schema.columns WHERE table_name = 'contacts' AND column_name LIKE 'full\\_name%' ORDER BY 1`)).rows.map((x) => x.c)
      t.diagnostic(`${region}: contacts.full_name as ${cols.join(', ')}`)
    }
    // Foreign keys: no orphan, the application's constraints as it made them, validated, no trigger left disabled.
    for (const region of [US, EU]) {
      const c = env.direct[region]!
      expect(`${region}: foreign-key orphans`, await foreignKeyOrphans(c), [])
      expect(`${region}: the application's foreign keys`, await foreignKeyDefinitions(c), fkBefore)
      expect(`${region}: foreign-key triggers left disabled`, await disabledInternalTriggers(c), 0)
    }
    // The journal: nothing left running.
    expect('operations left running in the journal', await runningOperations(env.control), [])
    // Content through Domicile: each tenant's rows, sealed values opened, equal the model.
    const t0 = performance.now()
    let read = 0
    const queue = [...model.tenants()]
    await Promise.all([0, 1].map(async () => {
      for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
        try {
          const got = await readThroughDomicile(ops!, id, { pageRows: 500 })
          for (const m of got.values()) read += m.size
          problems.push(...compareTenant(model, id, got, 5))
        } catch (e) {
          problems.push(`tenant ${id}: reading through Domicile failed: ${e instanceof Error ? e.message : String(e)}`)
        }
      }
    }))
    timings.push(['read back through Domicile', Math.round(performance.now() - t0)])
    expect('rows read back through Domicile', read, TRACKED_TABLES.reduce((n, table) => n + model.count(table), 0))
    // The audit hash chains of both regions and the control plane.
    const chains = await verifyAuditChains(ops!)
    expect('audit chains unavailable', chains.unavailable, [])
    expect('audit chains broken', chains.chains.filter((c) => !c.ok).map((c) => `${c.store}/${c.table}: ${c.firstBad?.problem} at ${c.firstBad?.position}`), [])
    const auditRecords = chains.chains.reduce((n, c) => n + c.records, 0)
    assert.deepEqual(problems, [], `${problems.length} invariant violations:\n${problems.join('\n')}`)

    // No plaintext e-mail (sealed now) in any command's output, the workload's errors or this process's output.
    for (const [label, run] of outputs) {
      leaks.text(`${label} stdout`, run.stdout)
      leaks.text(`${label} stderr`, run.stderr)
    }
    leaks.text('workload errors', s.errors.join('\n'))
    const emails = new Set<string>()
    for (const tenant of model.tenants()) for (const row of model.rows('contacts', tenant).values()) if (row.email && row.email.length >= 8) emails.add(row.email)
    for (const e of emails) leaks.plaintext(e)
    const found = leaks.findings()
    assert.deepEqual(found, [])

    const totalMs = Math.round(performance.now() - started)
    t.diagnostic(`${rows.expected} rows checked in both stores, ${read} read back through Domicile, ${auditRecords} audit records verified; kills: ${kills.join('; ')}`)
    t.diagnostic(`timings: ${timings.map(([l, ms]) => `${l} ${ms}`).join(', ')}; total ${totalMs} ms`)
    const retries = Object.values(s.retried).reduce((a, b) => a + b, 0)
    recordFigures({
      scenario: 'adoption-faults',
      title: `Adoption (adopt tenants, migrate encrypt, tenant move ×2) SIGKILLed at chosen points and resumed, with the application writing (${TENANTS} tenants, ${ROWS.toLocaleString('en-US')} rows)`,
      faultsInjected: kills.length,
      writesAcknowledged: s.acknowledged,
      // Every row of the model (each the last acknowledged write to it) was found once at home with its content.
      writesVerified: s.acknowledged,
      leaksFound: found.length,
      extra: {
        seed: rng.seed, rowsChecked: rows.expected, rowsReadBack: read, auditRecordsVerified: auditRecords, writesPlain: s.byMode.plain, writesThroughDomicile: s.byMode.domicile,
        retriedWrites: retries, longestRetryMs: s.longestRetryMs, ...facts, wallMs: totalMs,
      },
    })
  })
})
