/**
 * Tenant moves killed with SIGKILL at several states (real child processes, real PostgreSQL), then
 * resumed or aborted in another process, while a concurrent writer keeps writing in this one.
 * Afterwards the decrypted content read through withTenant + reveal equals every write that was
 * acknowledged, each row once; the tenant lives in exactly one region, and the other region's store
 * holds none of its rows or wrapped keys (read directly, as superuser).
 */
import { strict as assert } from 'node:assert'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { pathToFileURL } from 'node:url'
import type { Domicile } from '../../src/index.js'
import { internalsOf } from '../../src/domicile-internals.js'
import { abortTenantMove, resumeTenantMove } from '../../src/ops/tenant-move.js'
import { planTables } from '../../src/ops/tenant-move-plan.js'
import { readTx } from '../../src/ops/tenant-move-sql.js'
import { contentHash, summarize } from '../../src/ops/tenant-move-verifier.js'
import { REPO_ROOT } from '../support/cli.js'
import { postgresUnavailable } from '../support/pg-cluster.js'
import { seedTenant, startWriter } from '../support/move-writer.js'
import { addKmsTenant, EU, physicalCounts, revealAll, startMoveEnv, US, type MoveEnv } from '../support/tenant-move-env.js'

const missing = postgresUnavailable()
const WORKER = join(REPO_ROOT, 'test', 'support', 'tenant-move-worker.ts')
const TSX = pathToFileURL(join(REPO_ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href

interface WorkerRun {
  code: number | null
  signal: NodeJS.Signals | null
  lines: Array<Record<string, unknown>>
  stderr: string
}

function runWorker(env: MoveEnv, args: string[], killAt?: string): Promise<WorkerRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', TSX, WORKER, env.configPath, ...args], {
      cwd: env.dir, stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_NO_WARNINGS: '1', MOVE_BATCH_ROWS: '150', MOVE_PURGE_GRACE_MS: '200', ...(killAt ? { DOMICILE_TEST_KILL_AT: killAt } : { DOMICILE_TEST_KILL_AT: '' }) },
    })
    let out = ''
    let stderr = ''
    child.stdout.on('data', (b) => (out += b))
    child.stderr.on('data', (b) => (stderr += b))
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000)
    child.on('error', reject)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stderr, lines: out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) })
    })
  })
}

function assertSameRows(actual: Map<string, Record<string, unknown>>, expected: Map<string, Record<string, unknown>>): void {
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort(), 'the same rows, each once')
  for (const [k, want] of expected) {
    const got = actual.get(k)!
    for (const [col, v] of Object.entries(want)) assert.deepEqual(got[col], v, `${k}.${col}`)
  }
}

describe('tenant move killed at each state, then resumed or aborted (real processes, real PostgreSQL)', { skip: missing }, () => {
  let env: MoveEnv
  let d: Domicile

  before(async () => {
    env = await startMoveEnv('move-crash')
    d = await env.open()
  })

  after(async () => {
    await d?.close()
    await env?.destroy()
  })

  /**
   * Kills a move at `killAt`, checks the journal stands at `state`, then finishes it with `then`,
   * in another process (`where: 'child'`) or in this one, a writer running throughout.
   */
  async function scenario(tenant: string, killAt: string, state: string, then: 'resume' | 'abort', where: 'child' | 'here', afterKill?: (opId: number) => Promise<void>): Promise<void> {
    await addKmsTenant(d, tenant, EU)
    const model = await seedTenant(d, tenant, 150)
    const writer = startWriter(d, tenant, model, { prefix: 'w', pauseMs: 2 })
    try {
      const killed = await runWorker(env, [tenant, 'move', US], killAt)
      assert.equal(killed.signal, 'SIGKILL', `killed at ${killAt}: ${killed.stderr}${JSON.stringify(killed.lines.slice(-3))}`)
      const op = await internalsOf(d).journal!.running(tenant)
      assert.ok(op, 'the journal still shows the move running')
      assert.equal(op.state, state)
      await afterKill?.(op.id)
      if (where === 'child') {
        const finished = await runWorker(env, [tenant, then])
        const last = finished.lines.at(-1)
        assert.equal(last?.event, 'result', `${then}: ${finished.stderr}${JSON.stringify(last)}`)
        assert.equal(last?.state, then === 'resume' ? 'done' : 'aborted')
      } else {
        // The purge waits the default grace, the directory's bound: this process's writer may still
        // write to the source until its directory hears of the cutover (a shorter grace made the
        // purge refuse, correctly, when the push was slow under load).
        const r = then === 'resume' ? await resumeTenantMove(d, tenant, { actor: 'test', batchRows: 150 }) : await abortTenantMove(d, tenant, { actor: 'test' })
        assert.equal(r.state, then === 'resume' ? 'done' : 'aborted')
      }
    } finally {
      await new Promise((r) => setTimeout(r, 100))
      await writer.stop()
    }
    assert.deepEqual(writer.stats.errors, [])
    assert.ok(writer.stats.acknowledged > 0)
    const home = then === 'resume' ? US : EU
    const away = then === 'resume' ? EU : US
    const t = await d.getTenant(tenant)
    assert.equal(t.region, home)
    assert.equal(t.status, 'active')
    assertSameRows(await revealAll(d, tenant), model)
    const there = await physicalCounts(env, home, tenant)
    assert.equal(there.customers + there.orders, model.size)
    assert.ok(there.keys >= 2)
    assert.deepEqual(await physicalCounts(env, away, tenant), { customers: 0, orders: 0, keys: 0 }, `region ${away} holds nothing of ${tenant}`)
    assert.equal(await internalsOf(d).journal!.running(tenant), undefined)
  }

  test('killed after two copy batches, resumed in another process', () => scenario('k-copy', 'copy:2', 'copy', 'resume', 'child'))
  test('killed during catch-up, resumed', () => scenario('k-catchup', 'catch-up:1', 'catch-up', 'resume', 'here'))
  test('killed in the write freeze (directory says moving), resumed in another process', () => scenario('k-freeze', 'cutover', 'cutover', 'resume', 'child'))
  test('killed after the cutover before verification, resumed', () => scenario('k-verify', 'verify', 'verify', 'resume', 'here'))
  test('killed after the cutover before the purge, resumed', () => scenario('k-purge', 'purge', 'purge', 'resume', 'here'))
  test('killed before the purge by a version with md5 buckets (its journal as that version wrote it), resumed: the purge checks the source against md5 buckets', () =>
    scenario('k-legacy', 'purge', 'purge', 'resume', 'here', async (opId) => {
      // What a move planned and cut over by the earlier version left in the journal: no bucket
      // hash, and each table's content hash over md5 buckets (the source is unchanged since the
      // cutover, so it is computed from it now). A resume that used hashtext buckets for the purge's
      // check would find every table "changed in the source" and purge nothing.
      const p = internalsOf(d)
      const cp = (await p.controlPlane.withSession((s) => s.query<{ checkpoint: { bucketHash?: string; bits: Record<string, number>; tables: Record<string, { rows: number; hash: string }> } }>('SELECT checkpoint FROM domicile_operations WHERE id = $1', [opId]), { role: 'owner' })).rows[0]!.checkpoint
      assert.equal(cp.bucketHash, 'hashtext')
      const tables = await p.router.withRegionAdmin({ region: US, cell: 'main' }, (dst) => p.router.withRegionAdmin({ region: EU, cell: 'main' }, async (src) => {
        const plan = await planTables(p.schema, src, dst)
        const out: Record<string, { rows: number; hash: string }> = {}
        for (const t of plan.tables) {
          const md5 = await readTx(src, () => summarize(src, t, 'k-legacy', { bits: cp.bits[t.name]!, hash: 'md5' }))
          assert.notEqual(contentHash(md5), cp.tables[t.name]!.hash, 'md5 and hashtext buckets give different content hashes')
          out[t.name] = { rows: md5.rows, hash: contentHash(md5) }
        }
        return out
      }))
      await p.controlPlane.withSession((s) => s.query(`UPDATE domicile_operations SET checkpoint = (checkpoint - 'bucketHash') || jsonb_build_object('tables', $2::jsonb) WHERE id = $1`, [opId, JSON.stringify(tables)]), { role: 'owner' })
    }))
  test('killed after the purge deleted the source, resumed', () => scenario('k-purged', 'purge:deleted', 'purge', 'resume', 'here'))
  test('killed during catch-up, aborted in another process', () => scenario('k-abort', 'catch-up:1', 'catch-up', 'abort', 'child'))
  test('killed in the write freeze, aborted: the freeze ends and the source serves again', () => scenario('k-abort-frozen', 'cutover:verified', 'cutover', 'abort', 'here'))
})
