/**
 * Issue #14, item 7: lifecycle operations under faults and load, on two regions on two real
 * PostgreSQL clusters (two roles).
 *
 * - Encrypt-in-place of a populated plaintext column, run in child processes SIGKILLed at random
 *   points (after a random number of progress steps, then at a random moment), resumed to completion
 *   in this process with --verify, while a workload writes on.
 * - A tenant move EU → US, SIGKILLed at a random point and again while resuming, then resumed to
 *   completion, under the same load (writes retry the short write freeze).
 * - Hostile SQL scopes (test/integration/hostile-scope.test.ts's attacks) run concurrently, many
 *   scopes on a pool of two connections: each scope starts clean, none sees or writes another
 *   tenant's rows, every attack is refused or harmless.
 *
 * Every test ends with the invariant check (test/support/chaos-invariants.ts). Replay a run with
 * DOMICILE_CHAOS_SEED=<seed printed below>.
 */
import { strict as assert } from 'node:assert'
import { after, before, describe, test } from 'node:test'
import { isDomicileError, type Domicile, type TenantScope } from '../../src/index.js'
import { internalsOf } from '../../src/domicile-internals.js'
import { LAYOUT_TTL_MS } from '../../src/data/repository.js'
import { encryptColumn } from '../../src/ops/encrypt-column.js'
import { moveTenant, resumeTenantMove } from '../../src/ops/tenant-move.js'
import { recordFigures } from '../support/chaos-figures.js'
import { spawnChaosChild, type ChildRun } from '../support/chaos-child.js'
import { regionDb, startChaosEnv, type ChaosEnv } from '../support/chaos-env.js'
import { assertInvariants, checkInvariants, type InvariantReport } from '../support/chaos-invariants.js'
import { startLeakCapture, type LeakCapture } from '../support/chaos-leaks.js'
import { chaosRng, type Rng } from '../support/chaos-rng.js'
import { CHAOS_SCHEMA, ChaosModel, PII_MARKER, seedTenants, startWorkload, type TenantPlacement, type WorkloadResult } from '../support/chaos-workload.js'
import { postgresUnavailable } from '../support/pg-cluster.js'

const missing = postgresUnavailable()
const rng = chaosRng('lifecycle-faults')
const EU = 'eu-west-1'
const US = 'us-east-1'
const CHILD = 'test/support/chaos-lifecycle-child.ts'
const LEGACY_ROWS = 500

/** The application's schema before (notes.note plain text) and after (sealed, searchable). */
const schema = (sealedNotes: boolean) => CHAOS_SCHEMA.replace(/\n}\n$/, `
  notes: {
    scope: 'tenant',
    primaryKey: 'id',
    columns: {
      id: { type: 'text' },
      n: { type: 'integer' },
      note: { type: 'text', nullable: true${sealedNotes ? ", sensitive: { searchable: true, normalize: ['trim', 'lower'] }" : ''} },
    },
  },
}
`)

const LIFE: TenantPlacement[] = [{ id: 'life-a', region: EU }, { id: 'life-b', region: EU }, { id: 'life-c', region: US }]
const HOSTILE: TenantPlacement[] = [{ id: 'host-1', region: EU }, { id: 'host-2', region: EU }, { id: 'host-3', region: US }, { id: 'host-4', region: US }]
const legacyNote = (t: string, i: number): string | null => (i % 50 === 7 ? null : `${PII_MARKER}note ${t} #${i}`)
const legacyId = (i: number) => `n${String(i).padStart(5, '0')}`

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * Writes notes (updates of the legacy rows, new rows) through the one-shot API while a lifecycle job
 * runs; every write goes into the model (acknowledged, or uncertain when it failed).
 */
function startNotesWriter(d: Domicile, model: ChaosModel, r: Rng, tenants: readonly TenantPlacement[], tag: string) {
  let stop = false
  let writes = 0
  const codes: Record<string, number> = {}
  const errors: unknown[] = []
  let seq = 0
  const loop = (async () => {
    while (!stop) {
      const t = r.pick(tenants)
      const insert = r.chance(0.3)
      const id = insert ? `nw-${tag}-${seq++}` : legacyId(r.int(0, LEGACY_ROWS - 1))
      const state = model.get(t.id, 'notes', id)
      if (!insert && (state?.maybe || !state?.value)) continue
      const value = { id, n: insert ? 100_000 + seq : Number(state!.value!.n), note: r.chance(0.1) ? null : `${PII_MARKER}written ${t.id} ${seq++}` }
      model.attempt(t.id, 'notes', id, value, 'notes-writer')
      for (;;) {
        try {
          const repo = d.tenant(t.id).table('notes')
          if (insert) await repo.insert({ ...value })
          else await repo.update(id, { note: value.note })
          model.ack(t.id, 'notes', id, value, 'notes-writer')
          writes++
        } catch (e) {
          if (isDomicileError(e, 'ERR_TENANT_MOVING') && !stop) {
            await sleep(10)
            continue
          }
          const code = isDomicileError(e) ? e.code : 'ERR_UNTYPED'
          codes[code] = (codes[code] ?? 0) + 1
          errors.push(e)
          model.uncertain(t.id, 'notes', id, value, 'notes-writer')
        }
        break
      }
      await sleep(3)
    }
  })()
  return {
    async stop() {
      stop = true
      await loop
      return { writes, codes, errors }
    },
  }
}

/** Kills the child after its k-th progress or note line, plus a random few milliseconds. */
async function killAfterSteps(args: string[], k: number, r: Rng): Promise<ChildRun & { killedAtStep: number | null }> {
  const child = spawnChaosChild(CHILD, args, { env: { CHAOS_BATCH: '100' } })
  let steps = 0
  try {
    await child.waitFor((l) => (l.event === 'progress' || l.event === 'note') && ++steps >= k, 90_000)
  } catch {
    // It finished (or failed) before reaching step k: the caller sees how it ended.
    const run = await child.exited
    return { ...run, killedAtStep: null }
  }
  await sleep(r.int(0, 40))
  const run = await child.kill()
  return { ...run, killedAtStep: run.signal === 'SIGKILL' ? k : null }
}

/** Kills the child a random time after it is ready (it may finish first). */
async function killAfterDelay(args: string[], ms: number): Promise<ChildRun & { killedAfterMs: number | null }> {
  const child = spawnChaosChild(CHILD, args, { env: { CHAOS_BATCH: '100' } })
  await child.waitFor((l) => l.event === 'ready' || l.event === 'error', 60_000)
  const done = await Promise.race([child.exited, sleep(ms).then(() => undefined)])
  if (done) return { ...done, killedAfterMs: null }
  const run = await child.kill()
  return { ...run, killedAfterMs: run.signal === 'SIGKILL' ? ms : null }
}

describe('lifecycle operations killed under load; hostile scopes under concurrency (two PostgreSQL clusters)', { skip: missing }, () => {
  let env: ChaosEnv
  let d: Domicile
  const model = new ChaosModel()
  const allTenants = [...LIFE, ...HOSTILE]
  let leaks: LeakCapture

  before(async () => {
    leaks = startLeakCapture('lifecycle-faults')
    leaks.plaintext(PII_MARKER)
    env = await startChaosEnv({
      name: 'life', clusters: 2, regions: { [EU]: 0, [US]: 1 }, schemaSource: schema(true), initialSchemaSource: schema(false), poolSize: 6,
      // The application before: its rows hold the column in plaintext (written by the owner, as an existing app would have).
      async prepare(e) {
        for (const t of LIFE) {
          await e.withDirect(t.region, (c) => c.query(`INSERT INTO notes (tenant_id, id, n, note)
            SELECT $1, 'n' || lpad(i::text, 5, '0'), i, CASE WHEN i % 50 = 7 THEN NULL ELSE $3 || 'note ' || $1 || ' #' || i END
            FROM generate_series(0, $2 - 1) AS i`, [t.id, LEGACY_ROWS, PII_MARKER]))
        }
      },
    })
    d = await env.open()
    for (const t of allTenants) {
      const p = await d.keys.provision(t.id, { custody: 'kms' })
      await d.addTenant(t.id, { region: t.region, key: p.key, keyState: p.keyState })
    }
    for (const t of LIFE) for (let i = 0; i < LEGACY_ROWS; i++) model.ack(t.id, 'notes', legacyId(i), { id: legacyId(i), n: i, note: legacyNote(t.id, i) }, 'notes-writer')
    await seedTenants(d, model, allTenants, 5)
  })

  after(async () => {
    leaks?.stop()
    await d?.close()
    await env?.destroy()
  })

  const finishLoad = async (load: ReturnType<typeof startWorkload>, notes: ReturnType<typeof startNotesWriter>, allowed: readonly string[]) => {
    const [w, n] = await Promise.all([load.stop(), notes.stop()])
    assert.deepEqual(w.violations, [], 'reads during the job agree with what was acknowledged')
    const codes = { ...Object.fromEntries(w.ops.filter((o) => !o.ok).map((o) => [o.code!, 0])) }
    for (const o of w.ops) if (!o.ok) codes[o.code!]! += 1
    for (const [c, k] of Object.entries(n.codes)) codes[c] = (codes[c] ?? 0) + k
    for (const c of Object.keys(codes)) assert.ok(allowed.includes(c), `unexpected errors during the job: ${JSON.stringify(codes)}`)
    return { w, n, codes }
  }

  /** Writes acknowledged and verified by earlier scenarios of this file (each check verifies them all again). */
  const counted = { acked: 0, verified: 0 }
  const figuresOf = (scenario: string, title: string, faults: number, report: InvariantReport, extra: Record<string, number | string>) => {
    recordFigures({
      scenario, title, faultsInjected: faults,
      writesAcknowledged: report.writesAcknowledged - counted.acked, writesVerified: report.writesVerified - counted.verified,
      leaksFound: report.plaintextFound + leaks.findings().length,
      extra: { seed: rng.seed, ...extra, earlierWritesVerifiedAgain: counted.verified },
    })
    counted.acked = report.writesAcknowledged
    counted.verified = report.writesVerified
  }

  test('encrypt-in-place SIGKILLed at random points under load, then resumed: every row sealed once, no plaintext left, verify passes', async () => {
    const r = rng.fork('eip')
    const load = startWorkload(d, model, { clients: 3, rng: r.fork('load'), tenants: LIFE, tag: 'e', pauseMs: 2 })
    const notes = startNotesWriter(d, model, r.fork('notes'), LIFE, 'e')
    let kills = 0
    const runs: Array<Record<string, unknown>> = []
    let result
    let k1stderr = ''
    let k2stderr = ''
    try {
      const k1 = await killAfterSteps([env.configPath, 'encrypt', 'notes.note'], r.int(1, 12), r)
      runs.push({ killedAtStep: k1.killedAtStep, last: k1.lines.at(-1) })
      k1stderr = k1.stderr
      assert.equal(k1.signal, 'SIGKILL', `the first run was killed: ${k1.stderr.slice(-500)} ${JSON.stringify(k1.lines.slice(-2))}`)
      kills++
      const k2 = await killAfterDelay([env.configPath, 'encrypt', 'notes.note'], r.int(200, 3000))
      runs.push({ killedAfterMs: k2.killedAfterMs, last: k2.lines.at(-1) })
      k2stderr = k2.stderr
      if (k2.signal === 'SIGKILL') kills++
      else assert.equal(k2.lines.at(-1)?.event, 'result', `the second run ended without a kill: ${k2.stderr.slice(-500)}`)
      // Resumed (or found done) here, with the verification.
      result = await encryptColumn(d, 'notes.note', { verify: true, actor: 'chaos-test', graceMs: LAYOUT_TTL_MS })
    } finally {
      await sleep(100)
    }
    const { w, n, codes } = await finishLoad(load, notes, ['ERR_CONFLICT'])
    console.log(`# encrypt-in-place: ${kills} kills (${JSON.stringify(runs)}); load ${w.ops.length} ops, ${n.writes} note writes, errors ${JSON.stringify(codes)}`)
    assert.equal(result.state, 'done')
    assert.ok(result.verify?.ok, JSON.stringify(result.verify))
    assert.ok(n.writes > 20, `notes were written during the job (${n.writes})`)
    const journal = await internalsOf(d).journal!.list({ limit: 10 })
    assert.equal(journal.find((o) => o.target === 'notes.note')?.status, 'done')
    const report = await checkInvariants({ env, d, model, tenants: allTenants.map((t) => t.id) })
    assertInvariants(report)
    for (const e of [...w.errors, ...n.errors]) leaks.error('encrypt-in-place', e)
    for (const k of [k1stderr, k2stderr]) leaks.text('child stderr', k)
    assert.deepEqual(leaks.findings(), [])
    figuresOf('lifecycle-encrypt-in-place', 'Encrypt-in-place of a populated column, SIGKILLed at random points under load, resumed', kills, report, {
      rows: LIFE.length * LEGACY_ROWS, noteWritesDuringJob: n.writes, loadOps: w.ops.length, retryableErrors: Object.values(codes).reduce((a, b) => a + b, 0),
      killedAtStep: String(runs[0]?.killedAtStep ?? 'n/a'), secondKillAfterMs: String(runs[1]?.killedAfterMs ?? 'finished first'),
    })
  })

  test('tenant move SIGKILLed at a random point and again while resuming, under load, then resumed: one home, nothing left behind', async () => {
    const r = rng.fork('move')
    const mover = LIFE[0]!
    const load = startWorkload(d, model, { clients: 3, rng: r.fork('load'), tenants: LIFE, tag: 'm', pauseMs: 2 })
    const notes = startNotesWriter(d, model, r.fork('notes'), LIFE, 'm')
    let kills = 0
    const runs: Array<Record<string, unknown>> = []
    let result
    let w: WorkloadResult
    const childStderr: string[] = []
    try {
      const k1 = await killAfterSteps([env.configPath, 'move', mover.id, US], r.int(1, 6), r)
      runs.push({ killedAtStep: k1.killedAtStep, last: k1.lines.at(-1) })
      childStderr.push(k1.stderr)
      assert.equal(k1.signal, 'SIGKILL', `the move was killed: ${k1.stderr.slice(-500)} ${JSON.stringify(k1.lines.slice(-2))}`)
      kills++
      const running = await internalsOf(d).journal!.running(mover.id)
      runs.push({ journalState: running?.state ?? 'none' })
      if (running) {
        const k2 = await killAfterDelay([env.configPath, 'resume-move', mover.id], r.int(50, 1500))
        runs.push({ killedAfterMs: k2.killedAfterMs, last: k2.lines.at(-1) })
        childStderr.push(k2.stderr)
        if (k2.signal === 'SIGKILL') kills++
      }
      // Finish here: resume a journaled move, or start again if it died before the journal knew it.
      const opts = { actor: 'chaos-test', purgeGraceMs: 300, batchRows: 100 }
      result = (await internalsOf(d).journal!.running(mover.id)) ? await resumeTenantMove(d, mover.id, opts)
        : (await d.getTenant(mover.id)).region === US ? undefined : await moveTenant(d, mover.id, { ...opts, to: US })
    } finally {
      await sleep(100)
    }
    const done = await finishLoad(load, notes, [])
    w = done.w
    console.log(`# tenant move: ${kills} kills (${JSON.stringify(runs)}); load ${w.ops.length} ops, ${w.retriedMoving} retries in the freeze`)
    if (result) assert.equal(result.state, 'done')
    const t = await d.getTenant(mover.id)
    assert.equal(t.region, US)
    assert.equal(t.status, 'active')
    assert.equal(await internalsOf(d).journal!.running(mover.id), undefined)
    assert.ok(w.ops.some((o) => o.tenant === mover.id && o.ok), 'the moving tenant was served during the move')
    // Rows and wrapped keys of the moved tenant are in the target only (also covered by the invariants).
    const left = await env.withDirect(EU, async (c) => Number((await c.query(`SELECT (SELECT count(*) FROM customers WHERE tenant_id = $1) + (SELECT count(*) FROM notes WHERE tenant_id = $1) + (SELECT count(*) FROM domicile_data_keys WHERE tenant_id = $1) AS n`, [mover.id])).rows[0].n))
    assert.equal(left, 0, `${EU} holds nothing of ${mover.id}`)
    const report = await checkInvariants({ env, d, model, tenants: allTenants.map((x) => x.id) })
    assertInvariants(report)
    for (const e of [...w.errors, ...done.n.errors]) leaks.error('tenant-move', e)
    for (const k of childStderr) leaks.text('child stderr', k)
    assert.deepEqual(leaks.findings(), [])
    figuresOf('lifecycle-tenant-move', 'Tenant move EU → US, SIGKILLed at a random point and while resuming, under load, resumed', kills, report, {
      loadOps: w.ops.length, retriedInFreeze: w.retriedMoving, killedAtStep: String(runs[0]?.killedAtStep ?? 'n/a'), journalStateAtKill: String(runs[1]?.journalState ?? 'n/a'),
    })
  })

  describe('hostile SQL scopes, concurrently, on a pool of two connections per region', () => {
    let dh: Domicile
    before(async () => {
      dh = await env.open({ poolSize: 2, connectTimeoutMs: 10_000 })
    })
    after(async () => {
      await dh?.close()
    })

    /** The session state a scope starts with (must be the same in every scope). */
    const STATE_SQL = `SELECT current_setting('search_path') AS search_path, current_setting('statement_timeout') AS statement_timeout,
        current_setting('application_name') AS app, (SELECT count(*)::int FROM pg_prepared_statements) AS prepared,
        to_regclass('pg_temp.customers')::text AS temp_customers, (SELECT count(*)::int FROM pg_cursors) AS cursors,
        (SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()) AS locks, current_user AS role`

    type Attack = { name: string; expect: 'ok' | 'ERR_PERMISSION_DENIED' | 'ERR_INPUT_INVALID'; run: (s: TenantScope, self: string, other: string, tag: string) => Promise<void> }
    /** Attacks that must fail (or change nothing); the first one refused ends the scope. */
    const PROBES: Attack[] = [
      { name: 'set the tenant context', expect: 'ERR_PERMISSION_DENIED', run: async (s, _self, other) => { await s.sql('SELECT set_config($1, $2, true)', ['domicile.tenant_id', other]); await s.sql('SELECT id FROM customers') } },
      { name: 'SET LOCAL the tenant context', expect: 'ERR_PERMISSION_DENIED', run: async (s, _self, other) => { await s.sql(`SET LOCAL domicile.tenant_id = '${other}'`); await s.sql('SELECT id FROM customers') } },
      { name: 'SET ROLE to the owner', expect: 'ERR_PERMISSION_DENIED', run: async (s) => { await s.sql('SET ROLE domicile_owner') } },
      { name: 'open a session capability', expect: 'ERR_PERMISSION_DENIED', run: async (s) => { await s.sql('SELECT domicile_session_open()') } },
      { name: 'forge an audit record', expect: 'ERR_PERMISSION_DENIED', run: async (s, self) => { await s.sql("INSERT INTO domicile_audit (tenant_id, type, outcome) VALUES ($1, 'field.reveal', 'ok')", [self]) } },
      { name: 'insert a row for another tenant', expect: 'ERR_INPUT_INVALID', run: async (s, _self, other, tag) => { await s.sql("INSERT INTO customers (tenant_id, id, name, rev) VALUES ($1, $2, 'x', 0)", [other, `hostile-${tag}`]) } },
      { name: 'hand a row to another tenant', expect: 'ERR_INPUT_INVALID', run: async (s, _self, other, tag) => { await s.sql('UPDATE customers SET tenant_id = $1 WHERE id = $2', [other, `legit-${tag}`]) } },
      { name: 'RESET ROLE and read', expect: 'ok', run: async (s, self) => { await s.sql('RESET ROLE'); await seesOnly(s, self) } },
      { name: 'read another tenant by predicate', expect: 'ok', run: async (s, _self, other) => { const r = await s.sql('SELECT id FROM customers WHERE tenant_id = $1 UNION ALL SELECT key_number::text FROM domicile_data_keys WHERE tenant_id = $1', [other]); if (r.length) throw new Error('VIOLATION: another tenant\'s rows are visible') } },
      { name: 'COMMIT; BEGIN, then read', expect: 'ok', run: async (s) => { await s.sql('COMMIT; BEGIN'); const r = await s.sql('SELECT id FROM customers'); if (r.length) throw new Error('VIOLATION: rows visible without a tenant context') } },
    ]
    /** Session state planted for whichever scope uses the connection next. */
    const PLANTS: Attack[] = [
      { name: 'temp table shadowing customers', expect: 'ok', run: async (s) => { await s.sql('CREATE TEMP TABLE IF NOT EXISTS customers (LIKE public.customers INCLUDING ALL)') } },
      { name: 'session settings', expect: 'ok', run: async (s) => { await s.sql("SET search_path = pg_temp, public; SET statement_timeout = 600000; SET application_name = 'planted'") } },
      { name: 'prepared statement', expect: 'ok', run: async (s, _self, _other, tag) => { await s.sql(`PREPARE planted_${tag.replace(/\W/g, '_')} AS SELECT id FROM customers`) } },
      { name: 'cursor WITH HOLD', expect: 'ok', run: async (s, _self, _other, tag) => { await s.sql(`DECLARE planted_${tag.replace(/\W/g, '_')} CURSOR WITH HOLD FOR SELECT 1`) } },
      { name: 'LISTEN', expect: 'ok', run: async (s) => { await s.sql('LISTEN planted_channel') } },
      { name: 'session advisory lock', expect: 'ok', run: async (s) => { await s.sql('SELECT pg_try_advisory_lock(4242)') } },
    ]
    async function seesOnly(s: TenantScope, self: string): Promise<void> {
      for (const t of ['customers', 'notes', 'domicile_data_keys', 'domicile_audit']) {
        const seen = await s.sql<{ tenant_id: string }>(`SELECT DISTINCT tenant_id FROM ${t}`)
        if (seen.some((x) => x.tenant_id !== self)) throw new Error(`VIOLATION: scope of ${self} sees ${t} of ${seen.map((x) => x.tenant_id).join(',')}`)
      }
    }

    test('many concurrent hostile scopes: each starts clean, none sees or writes another tenant\'s rows, every attack refused or harmless', async () => {
      const r = rng.fork('hostile')
      const tenants = [...HOSTILE, LIFE[1]!, LIFE[2]!]
      const baseline = await dh.withTenant(HOSTILE[0]!.id, (s) => s.sql<Record<string, unknown>>(STATE_SQL))
      const violations: string[] = []
      const outcomes: Record<string, number> = {}
      const errors: unknown[] = []
      let next = 0
      const SCOPES = 80
      const worker = async (wi: number) => {
        const wr = r.fork(`w${wi}`)
        for (let i = next++; i < SCOPES; i = next++) {
          const self = wr.pick(tenants)
          const other = wr.pick(tenants.filter((t) => t.region === self.region && t.id !== self.id))
          const tag = `${wi}-${i}`
          const probe = wr.chance(0.8) ? wr.pick(PROBES) : undefined
          const plants = PLANTS.filter(() => wr.chance(0.4))
          const row = { id: `legit-${tag}`, name: 'Legit', email: `${PII_MARKER}${self.id}.legit-${tag}@example.test`, tax_id: `${PII_MARKER}legit-${tag}`, plan: null, rev: 0 }
          let committedEarly = false
          model.attempt(self.id, 'customers', row.id, row, 'hostile')
          try {
            await dh.withTenant(self.id, async (s) => {
              const [state] = await s.sql<Record<string, unknown>>(STATE_SQL)
              if (JSON.stringify(state) !== JSON.stringify(baseline[0])) violations.push(`scope ${tag} of ${self.id} started with state ${JSON.stringify(state)}`)
              await seesOnly(s, self.id)
              await s.table('customers').insert({ ...row })
              if (probe) {
                if (probe.name.startsWith('COMMIT')) committedEarly = true
                await probe.run(s, self.id, other.id, tag)
              }
              for (const p of plants) await p.run(s, self.id, other.id, tag)
              if (!committedEarly) await seesOnly(s, self.id)
            })
            const expect = probe?.expect ?? 'ok'
            if (expect !== 'ok') violations.push(`scope ${tag}: "${probe!.name}" was not refused`)
            model.ack(self.id, 'customers', row.id, row, 'hostile')
            outcomes.ok = (outcomes.ok ?? 0) + 1
          } catch (e) {
            errors.push(e)
            const code = isDomicileError(e) ? e.code : (e instanceof Error ? e.message : String(e))
            outcomes[code] = (outcomes[code] ?? 0) + 1
            if (!probe || probe.expect !== code) violations.push(`scope ${tag} of ${self.id}: "${probe?.name ?? 'no probe'}" ended with ${code}, expected ${probe?.expect ?? 'ok'}`)
            // A refused scope rolled back: its legitimate row is absent (unless an injected COMMIT stored it first).
            if (committedEarly) model.uncertain(self.id, 'customers', row.id, row, 'hostile')
            else model.absent(self.id, 'customers', row.id, 'hostile')
          }
        }
      }
      await Promise.all(Array.from({ length: 10 }, (_, i) => worker(i)))
      console.log(`# hostile scopes: ${SCOPES} on poolSize 2, outcomes ${JSON.stringify(outcomes)}`)
      assert.deepEqual(violations, [])
      assert.ok((outcomes.ERR_PERMISSION_DENIED ?? 0) > 0 && (outcomes.ok ?? 0) > 0)
      // Every connection of the small pools starts clean afterwards too.
      for (const t of tenants) {
        const states = await Promise.all([0, 1, 2].map(() => dh.withTenant(t.id, (s) => s.sql<Record<string, unknown>>(STATE_SQL))))
        for (const [st] of states) assert.deepEqual(st, baseline[0])
      }
      const report = await checkInvariants({ env, d, model, tenants: allTenants.map((x) => x.id) })
      assertInvariants(report)
      for (const e of errors) leaks.error('hostile-scopes', e)
      assert.deepEqual(leaks.findings(), [])
      figuresOf('hostile-concurrency', `Hostile SQL scopes: ${SCOPES} scopes, 10 at a time, on a pool of 2 connections per region`, SCOPES, report, {
        refused: Object.entries(outcomes).filter(([k]) => k !== 'ok').reduce((a, [, v]) => a + v, 0), harmless: outcomes.ok ?? 0, crossTenantViolations: violations.length,
      })
    })

    test('a session advisory lock or temp table taken in a scope does not outlive the scope (another tenant\'s scope on another connection)', async () => {
      const [a, b] = [HOSTILE[0]!.id, HOSTILE[1]!.id] // both in EU: same store, same pool
      // Two scopes at once, so that both connections of the pool are in use; the one holding the lock ends first.
      let releaseB!: () => void
      const bHolds = new Promise<void>((res) => (releaseB = res))
      let aDone!: () => void
      const aEnded = new Promise<void>((res) => (aDone = res))
      const scopeB = dh.withTenant(b, async (s) => {
        await s.sql('SELECT 1')
        await bHolds
      })
      await dh.withTenant(a, async (s) => {
        await s.sql('SELECT pg_advisory_lock(4242)')
        await s.sql('CREATE TEMP TABLE planted_for_later (x int)')
      }).finally(() => aDone())
      await aEnded
      // A's scope is over: as seen by the server, nothing it took in its session should remain.
      const leftovers = await env.withDirect(EU, async (c) => (await c.query(`SELECT
          (SELECT count(*)::int FROM pg_locks l JOIN pg_stat_activity x ON x.pid = l.pid WHERE l.locktype = 'advisory' AND x.usename = 'domicile_data' AND x.datname = $1) AS locks,
          (SELECT count(*)::int FROM pg_class WHERE relname = 'planted_for_later') AS temp_tables`, [regionDb(EU)])).rows[0])
      releaseB()
      await scopeB
      // The next scope takes the connection released last (B's): A's connection stays idle.
      const [got] = await dh.withTenant(b, (s) => s.sql<{ ok: boolean }>('SELECT pg_try_advisory_xact_lock(4242) AS ok'))
      assert.deepEqual(leftovers, { locks: 0, temp_tables: 0 }, 'no advisory lock or temp table outlives the scope that took it')
      assert.equal(got?.ok, true, 'another tenant\'s scope can take the lock')
    })
  })
})
