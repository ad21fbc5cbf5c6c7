/**
 * The example API's point read under load (issue #11, "Performance"): requests/s and p99 of
 * `GET /api/tables/:table/rows/:id` through `domicile serve`'s service, on loopback, driven by
 * autocannon in a separate process (so the load generator does not share the server's event loop).
 *
 * One PostgreSQL 15 cluster (owner + data-plane logins), one region, one tenant with a kms key,
 * the same handler three ways, arms alternated in rounds in the same run:
 * - `plaintext`: a table without sensitive columns (one-shot read);
 * - `sealed`: the example `customers` table, sensitive fields returned sealed (one-shot read);
 * - `revealed`: the same row with `?reveal=tax_id` + `X-Domicile-Purpose`: a tenant transaction that
 *   reads the row, opens one field (data key from the cache) and appends its audit record.
 *
 * Run: node --import tsx bench/service-api.bench.ts   (BENCH_QUICK=1 for a smoke run)
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { createDomicile, parseConfig, type Domicile } from '../src/index.js'
import { EXAMPLE_SCHEMA } from '../src/cli/templates.js'
import { serve } from '../src/service/http-service.js'
import { postgresUnavailable, startPgCluster, twoRoleDatabases, type PgCluster } from '../test/support/pg-cluster.js'
import { machineInfo, printTable, writeResults } from './lib/report.js'
import { median, round } from './lib/stats.js'

const QUICK = process.env.BENCH_QUICK === '1'
const RESULTS = 'bench/results/service-api.json'
const PLAN = QUICK ? { rounds: 1, seconds: 2, connections: 8, warmupSeconds: 1 } : { rounds: 5, seconds: 10, connections: 16, warmupSeconds: 3 }
const ADMIN = 'bench-admin-token-0123456789abcdef'
const log = (m: string) => console.error(`[service-api] ${m}`)

const SCHEMA = EXAMPLE_SCHEMA.replace(/\n}\n?$/, `
  notes: {
    scope: 'tenant',
    primaryKey: 'id',
    columns: { id: { type: 'text' }, name: { type: 'text' }, tax_id: { type: 'text', nullable: true }, plan: { type: 'text', nullable: true } },
  },
}
`)

const AUTOCANNON = join(dirname(createRequire(import.meta.url).resolve('autocannon/package.json')), 'autocannon.js')

interface Load { reqPerSec: number; p99Ms: number; p50Ms: number; non2xx: number; errors: number }

/** autocannon as a child process (its own event loop and core), JSON result. */
function load(url: string, headers: Record<string, string>, seconds: number): Promise<Load> {
  const args = [AUTOCANNON, '-c', String(PLAN.connections), '-d', String(seconds), '-j', ...Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}=${v}`]), url]
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d })
    child.stderr.setEncoding('utf8').on('data', (d: string) => { err += d })
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`autocannon exited ${code}: ${err}`))
      const r = JSON.parse(out) as { requests: { average: number }; latency: { p99: number; p50: number }; non2xx: number; errors: number }
      resolve({ reqPerSec: r.requests.average, p99Ms: r.latency.p99, p50Ms: r.latency.p50, non2xx: r.non2xx, errors: r.errors })
    })
  })
}

export async function main(): Promise<void> {
  const why = postgresUnavailable()
  if (why) throw new Error(`service-api bench needs real PostgreSQL: ${why}`)
  const dir = mkdtempSync(join(tmpdir(), 'domicile-bench-service-'))
  let cluster: PgCluster | undefined
  let d: Domicile | undefined
  let server: { url: string; close(): Promise<void> } | undefined
  try {
    cluster = await startPgCluster('bench-service')
    const logins = await twoRoleDatabases(cluster, ['region', 'control'])
    writeFileSync(join(dir, 'schema.mjs'), SCHEMA)
    const config = parseConfig({
      regions: { 'eu-west-1': { driver: 'postgres', url: logins.dataUrl('region'), ownerUrl: logins.ownerUrl('region'), jurisdiction: 'EU' } },
      controlPlane: { driver: 'postgres', url: logins.dataUrl('control'), ownerUrl: logins.ownerUrl('control') },
      schema: './schema.mjs',
      keys: { dir: join(dir, 'keys') },
    }, dir)
    d = await createDomicile({ config })
    await d.migrate()
    const p = await d.keys.provision('bench', { custody: 'kms' })
    await d.addTenant('bench', { region: 'eu-west-1', key: p.key, keyState: p.keyState })
    await d.withTenant('bench', async (s) => {
      await s.table('customers').insert({ id: 'c1', name: 'Ada Lovelace', email: 'ada@example.eu', tax_id: 'DE-123456789', plan: 'pro' })
      await s.table('notes').insert({ id: 'c1', name: 'Ada Lovelace', tax_id: 'DE-123456789', plan: 'pro' })
    })
    server = await serve(d, { port: 0, adminToken: ADMIN, processMetrics: false })
    const issued = await fetch(`${server.url}/admin/api/tenants/bench/api-keys`, { method: 'POST', headers: { Authorization: `Bearer ${ADMIN}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ reveal: true }) })
    const { apiKey } = (await issued.json()) as { apiKey: string }
    const auth = { Authorization: `Bearer ${apiKey}` }
    const arms = [
      { arm: 'plaintext', url: `${server.url}/api/tables/notes/rows/c1`, headers: auth },
      { arm: 'sealed', url: `${server.url}/api/tables/customers/rows/c1`, headers: auth },
      { arm: 'revealed', url: `${server.url}/api/tables/customers/rows/c1?reveal=tax_id`, headers: { ...auth, 'X-Domicile-Purpose': 'benchmark' } },
    ]
    for (const a of arms) {
      const check = await fetch(a.url, { headers: a.headers })
      const body = (await check.json()) as { row?: { tax_id?: string } }
      if (check.status !== 200 || body.row?.tax_id !== (a.arm === 'sealed' ? '[sealed]' : 'DE-123456789')) throw new Error(`arm ${a.arm} answers ${check.status} ${JSON.stringify(body)}`)
      await load(a.url, a.headers, PLAN.warmupSeconds)
    }
    const results = new Map<string, Load[]>(arms.map((a) => [a.arm, []]))
    for (let r = 0; r < PLAN.rounds; r++) {
      const order = r % 2 === 0 ? arms : [...arms].reverse()
      for (const a of order) {
        const x = await load(a.url, a.headers, PLAN.seconds)
        if (x.non2xx > 0 || x.errors > 0) throw new Error(`arm ${a.arm}: ${x.non2xx} non-2xx answers, ${x.errors} errors`)
        results.get(a.arm)!.push(x)
        log(`round ${r + 1} ${a.arm}: ${Math.round(x.reqPerSec)} req/s, p99 ${x.p99Ms} ms`)
      }
    }
    const summary = arms.map((a) => {
      const xs = results.get(a.arm)!
      return { arm: a.arm, reqPerSec: round(median(xs.map((x) => x.reqPerSec)), 0), p50Ms: round(median(xs.map((x) => x.p50Ms)), 2), p99Ms: round(median(xs.map((x) => x.p99Ms)), 2), rounds: xs }
    })
    printTable(`GET /api/tables/:table/rows/:id, ${PLAN.connections} connections, ${PLAN.rounds} x ${PLAN.seconds} s per arm (medians over rounds)`,
      ['arm', 'req/s', 'p50 ms', 'p99 ms'], summary.map((s) => [s.arm, s.reqPerSec, s.p50Ms, s.p99Ms]))
    writeResults(RESULTS, { bench: 'service-api', machine: machineInfo(), plan: PLAN, arms: summary })
  } finally {
    await server?.close().catch(() => undefined)
    await d?.close().catch(() => undefined)
    cluster?.destroy()
    rmSync(dir, { recursive: true, force: true })
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((e) => {
    console.error(e)
    process.exitCode = 1
  })
}
