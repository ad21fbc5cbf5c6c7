/**
 * Issue #14, item 4: a writer process killed with SIGKILL mid-transaction, mid-batch and at random
 * moments of a concurrent workload (real child processes, real PostgreSQL with two roles, two
 * regions). Afterwards: no partial row or transaction, no orphaned data key (a key created by a
 * transaction that died dies with it), every write the dead process was told succeeded is there
 * exactly once in its tenant's home region, and every audit hash chain still verifies.
 *
 * Replay a run with DOMICILE_CHAOS_SEED=<seed printed below>.
 */
import { strict as assert } from 'node:assert'
import { after, before, describe, test } from 'node:test'
import type { Domicile } from '../../src/index.js'
import { recordFigures } from '../support/chaos-figures.js'
import { spawnChaosChild, type Line } from '../support/chaos-child.js'
import { startChaosEnv, type ChaosEnv } from '../support/chaos-env.js'
import { assertInvariants, checkInvariants } from '../support/chaos-invariants.js'
import { startLeakCapture, type LeakCapture } from '../support/chaos-leaks.js'
import { chaosRng } from '../support/chaos-rng.js'
import { CHAOS_SCHEMA, ChaosModel, PII_MARKER, seedTenants, type Expected, type TenantPlacement } from '../support/chaos-workload.js'
import { postgresUnavailable } from '../support/pg-cluster.js'

const missing = postgresUnavailable()
const rng = chaosRng('process-crash')
const EU = 'eu-west-1'
const US = 'us-east-1'
const CHILD = 'test/support/chaos-crash-child.ts'
const SEEDED: TenantPlacement[] = [{ id: 'crash-a', region: EU }, { id: 'crash-b', region: US }, { id: 'crash-c', region: EU }]
/** Tenants with a key binding and no row yet: their first transaction creates their data keys. */
const FRESH: TenantPlacement[] = ['fresh-hold', 'fresh-batch', 'fresh-r0', 'fresh-r1', 'fresh-r2'].map((id, i) => ({ id, region: i % 2 ? US : EU }))

describe('writer processes killed with SIGKILL (real processes, real PostgreSQL)', { skip: missing }, () => {
  let env: ChaosEnv
  let d: Domicile
  const model = new ChaosModel()
  const all = [...SEEDED, ...FRESH]
  const figures = { kills: 0, stderr: [] as string[] }
  let leaks: LeakCapture

  before(async () => {
    leaks = startLeakCapture('process-crash')
    leaks.plaintext(PII_MARKER)
    env = await startChaosEnv({ name: 'crash', clusters: 1, regions: { [EU]: 0, [US]: 0 }, schemaSource: CHAOS_SCHEMA, poolSize: 4 })
    d = await env.open()
    for (const t of all) {
      const p = await d.keys.provision(t.id, { custody: 'kms' })
      await d.addTenant(t.id, { region: t.region, key: p.key, keyState: p.keyState })
    }
    await seedTenants(d, model, SEEDED, 3)
  })

  after(async () => {
    leaks?.stop()
    await d?.close()
    await env?.destroy()
    // The children's stdout carries the values they wrote (the protocol); their stderr must not.
    for (const e of figures.stderr) leaks.text('child stderr', e)
    recordFigures({
      scenario: 'process-crash',
      title: 'Writer processes SIGKILLed mid-transaction, mid-batch and at random moments of a concurrent workload',
      faultsInjected: figures.kills,
      writesAcknowledged: lastReport?.writesAcknowledged ?? 0,
      writesVerified: lastReport?.writesVerified ?? 0,
      leaksFound: (lastReport?.plaintextFound ?? 0) + leaks.findings().length,
      extra: { seed: rng.seed, uncertainWrites: lastReport?.uncertainRows ?? 0, auditRecordsVerified: lastReport?.auditRecords ?? 0 },
    })
  })
  let lastReport: Awaited<ReturnType<typeof checkInvariants>> | undefined

  const check = async () => {
    lastReport = await checkInvariants({ env, d, model, tenants: all.map((t) => t.id) })
    assertInvariants(lastReport)
  }

  /** Rows and keys of a tenant, read raw from its home region. */
  const raw = (t: TenantPlacement, idPrefix: string) => env.withDirect(t.region, async (c) => ({
    rows: Number((await c.query('SELECT count(*) AS n FROM customers WHERE tenant_id = $1 AND id LIKE $2', [t.id, `${idPrefix}%`])).rows[0].n),
    keys: Number((await c.query('SELECT count(*) AS n FROM domicile_data_keys WHERE tenant_id = $1', [t.id])).rows[0].n),
    dataKeys: Number((await c.query("SELECT count(*) AS n FROM domicile_data_keys WHERE tenant_id = $1 AND purpose = 'data'", [t.id])).rows[0].n),
    audit: Number((await c.query("SELECT count(*) AS n FROM domicile_audit WHERE tenant_id = $1 AND actor = 'crash-child'", [t.id])).rows[0].n),
  }))

  test('killed inside an open transaction (rows inserted, a row updated, a value revealed, keys created): nothing of it remains', async () => {
    for (const t of [FRESH[0]!, SEEDED[0]!]) {
      const before = await raw(t, 'hold-')
      const child = spawnChaosChild(CHILD, [env.configPath, 'hold', t.id, String(rng.int(5, 40))])
      await child.waitFor((l) => l.event === 'in-tx')
      const run = await child.kill()
      figures.kills++
      figures.stderr.push(run.stderr)
      assert.equal(run.signal, 'SIGKILL')
      const after = await raw(t, 'hold-')
      assert.equal(after.rows, 0, `${t.id}: no row of the killed transaction`)
      assert.equal(after.audit, 0, `${t.id}: no audit record of the killed transaction's reveal`)
      assert.equal(after.keys, before.keys, `${t.id}: the keys the killed transaction created are gone with it`)
      if (t.id.startsWith('fresh-')) assert.equal(after.dataKeys, 0, `${t.id}: no data key without a row (orphaned data key)`)
    }
    // seed-0 of crash-a still holds what was acknowledged (checked with everything else).
    await check()
  })

  test('killed in the middle of a batch transaction (at a random row): no row of the batch remains', async () => {
    for (const t of [FRESH[1]!, SEEDED[1]!]) {
      const k = rng.int(15, 250)
      const before = await raw(t, 'batch-')
      const child = spawnChaosChild(CHILD, [env.configPath, 'batch', t.id, '1000'])
      await child.waitFor((l) => l.event === 'row' && Number(l.i) >= k)
      const run = await child.kill()
      figures.kills++
      figures.stderr.push(run.stderr)
      assert.equal(run.signal, 'SIGKILL')
      assert.ok(!run.lines.some((l) => l.event === 'committed'), 'killed before its COMMIT')
      assert.ok(run.lines.filter((l) => l.event === 'row').length >= k)
      const after = await raw(t, 'batch-')
      assert.equal(after.rows, 0, `${t.id}: no row of the killed batch (killed after row ${k})`)
      assert.equal(after.audit, 0)
      assert.equal(after.keys, before.keys, `${t.id}: the keys the killed batch created are gone with it`)
      if (t.id.startsWith('fresh-')) assert.equal(after.dataKeys, 0, `${t.id}: no data key without a row (orphaned data key)`)
    }
    await check()
  })

  test('killed at random moments of a concurrent workload (3 processes in turn): every acknowledged write once, no partial transaction, chains verify', async () => {
    const tenantsOf = (round: number) => [...SEEDED, FRESH[2 + round]!]
    for (let round = 0; round < 3; round++) {
      const tenants = tenantsOf(round)
      const acks = rng.int(10, 120)
      const child = spawnChaosChild(CHILD, [env.configPath, 'writers', String(rng.int(1, 2 ** 30)), '4', tenants.map((t) => `${t.id}:${t.region}`).join(',')])
      let seen = 0
      await child.waitFor((l) => l.event === 'ack' && ++seen >= acks)
      await new Promise((r) => setTimeout(r, rng.int(0, 40)))
      const run = await child.kill()
      figures.kills++
      figures.stderr.push(run.stderr)
      assert.equal(run.signal, 'SIGKILL')
      assert.deepEqual(run.lines.filter((l) => l.event === 'error'), [], 'the workload itself saw no error before the kill')
      for (const l of run.lines) apply(model, l)
      assert.ok(model.acknowledged() > 0)
    }
    await check()
    assert.ok(lastReport!.writesVerified >= 30)
    for (const e of figures.stderr) leaks.text('child stderr', e)
    assert.deepEqual(leaks.findings(), [])
  })
})

/** Rebuilds the model from a writer process's lines: a write reported and not acknowledged may or may not be stored. */
function apply(model: ChaosModel, l: Line): void {
  if (l.event !== 'try' && l.event !== 'ack') return
  const w = l as unknown as { tenant: string; table: string; id: string; value: Expected | null; owner: string; group?: string }
  if (l.event === 'try') model.uncertain(w.tenant, w.table, w.id, w.value, w.owner, w.group)
  else model.ack(w.tenant, w.table, w.id, w.value, w.owner, w.group)
}
