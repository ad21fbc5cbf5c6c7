/**
 * CLI latency benchmark: the `domicile` command as users run it, one whole process per run.
 *
 * Targets (issue #9): `rows get` <= 1 s on embedded PGlite stores, <= 0.3 s on PostgreSQL.
 *
 * Method
 * - A temp project per store kind: `init` (PGlite) or a config of three databases on one real
 *   PostgreSQL 15 cluster (test/support/pg-cluster.ts); `migrate`, `tenant add acme --custody kms`,
 *   one row with sealed fields inserted. Then, for RUNS rounds, each command once per round in a
 *   rotating order (noise from the other processes on this shared machine spreads over all rows),
 *   after one warm-up run each: wall time from spawn to exit of `node bin/domicile.mjs ...`.
 * - Rows: `node -e 0` (the floor: starting Node), `domicile --version` (Node + the CLI's own
 *   modules), `rows get` on PGlite and on PostgreSQL, and `rows get` on PGlite through tsx's
 *   loader on the TypeScript sources (what bin/domicile.mjs did in a checkout before the compiled
 *   cache, for comparison).
 * - Reported: median and p90 in ms per row, and the machine's load average.
 *
 * Run: node --import tsx bench/cli-latency.bench.ts   (BENCH_QUICK=1: 3 runs, results not written;
 *      BENCH_RUNS=N for N runs; BENCH_CLI_BIN=path/to/bin/domicile.mjs to measure another build)
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { postgresUnavailable, startPgCluster } from '../test/support/pg-cluster.js'
import { cleanupAll, onCleanup } from './lib/cleanup.js'
import { machineInfo, printTable, writeResults } from './lib/report.js'
import { quantileSorted, round } from './lib/stats.js'

const HERE = dirname(fileURLToPath(import.meta.url))
const ROOT = resolve(HERE, '..')
/** The command under test; BENCH_CLI_BIN points at another build's bin/domicile.mjs to compare. */
const BIN = process.env.BENCH_CLI_BIN ? resolve(process.env.BENCH_CLI_BIN) : join(ROOT, 'bin', 'domicile.mjs')
const RESULTS = join(HERE, 'results', 'cli-latency.json')
const QUICK = process.env.BENCH_QUICK === '1'
const RUNS = QUICK ? 3 : Number(process.env.BENCH_RUNS ?? 10)
const TARGET_MS = { pglite: 1000, postgres: 300 }

interface Cmd { readonly name: string; readonly argv: readonly string[]; readonly cwd: string; readonly env?: NodeJS.ProcessEnv }

function runOnce(c: Cmd): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const env = { ...process.env, ...c.env }
    delete env.DOMICILE_CONFIG
    const t0 = process.hrtime.bigint()
    const child = spawn(process.execPath, c.argv, { cwd: c.cwd, env, stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
    child.on('error', reject)
    child.on('close', (code) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6
      if (code !== 0) reject(new Error(`${c.name} exited ${code}: ${stderr}`))
      else resolvePromise(ms)
    })
  })
}

async function cli(cwd: string, args: readonly string[], env?: NodeJS.ProcessEnv): Promise<void> {
  await runOnce({ name: `domicile ${args.join(' ')}`, argv: [BIN, ...args], cwd, ...(env ? { env } : {}) })
}

async function seed(cwd: string, env?: NodeJS.ProcessEnv): Promise<void> {
  await cli(cwd, ['migrate'], env)
  await cli(cwd, ['tenant', 'add', 'acme', '--region', 'eu-west-1', '--custody', 'kms'], env)
  await cli(cwd, ['rows', 'insert', 'acme', 'customers', '--data', '{"id":"c1","name":"Ada","email":"ada@example.eu","tax_id":"DE123"}'], env)
}

async function main(): Promise<void> {
  const cmds: Cmd[] = []
  const pgliteDir = mkdtempSync(join(tmpdir(), 'domicile-bench-cli-'))
  onCleanup(() => rmSync(pgliteDir, { recursive: true, force: true }))
  await cli(pgliteDir, ['init'])
  await seed(pgliteDir)
  const get = ['rows', 'get', 'acme', 'customers', 'c1']
  cmds.push({ name: 'node -e 0', argv: ['-e', '0'], cwd: pgliteDir })
  cmds.push({ name: 'domicile --version', argv: [BIN, '--version'], cwd: pgliteDir })
  cmds.push({ name: 'rows get (PGlite)', argv: [BIN, ...get], cwd: pgliteDir })

  // The previous checkout path: tsx's loader on the TypeScript sources.
  const viaTsx = join(pgliteDir, 'via-tsx.mjs')
  writeFileSync(viaTsx, [
    `const { register } = await import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})`,
    'register()',
    `const { main } = await import(${JSON.stringify(pathToFileURL(join(ROOT, 'src', 'cli', 'main.ts')).href)})`,
    'process.exitCode = await main(process.argv.slice(2))',
  ].join('\n'))
  cmds.push({ name: 'rows get (PGlite, via tsx loader: before)', argv: [viaTsx, ...get], cwd: pgliteDir })

  let pgSkipped = postgresUnavailable()
  if (pgSkipped === undefined) {
    const cluster = await startPgCluster('bench-cli')
    onCleanup(() => cluster.destroy())
    const pgDir = mkdtempSync(join(tmpdir(), 'domicile-bench-cli-pg-'))
    onCleanup(() => rmSync(pgDir, { recursive: true, force: true }))
    await cli(pgDir, ['init'])
    const cfg = {
      regions: {
        'us-east-1': { driver: 'postgres', url: cluster.database('bench_us'), jurisdiction: 'US' },
        'eu-west-1': { driver: 'postgres', url: cluster.database('bench_eu'), jurisdiction: 'EU' },
      },
      controlPlane: { driver: 'postgres', url: cluster.database('bench_control') },
      schema: './domicile.schema.mjs',
      keys: { dir: '.domicile/keys' },
    }
    writeFileSync(join(pgDir, 'domicile.config.json'), JSON.stringify(cfg, null, 2))
    try {
      await seed(pgDir)
      cmds.push({ name: 'rows get (PostgreSQL)', argv: [BIN, ...get], cwd: pgDir })
    } catch (e) {
      pgSkipped = `the PostgreSQL setup failed: ${(e as Error).message.split('\n')[0]}`
    }
  }
  if (pgSkipped !== undefined) console.log(`PostgreSQL row skipped: ${pgSkipped}`)

  for (const c of cmds) await runOnce(c) // warm-up: compiled cache, OS file cache
  const samples = new Map<string, number[]>(cmds.map((c) => [c.name, []]))
  for (let r = 0; r < RUNS; r++) {
    for (let i = 0; i < cmds.length; i++) {
      const c = cmds[(i + r) % cmds.length]!
      samples.get(c.name)!.push(await runOnce(c))
    }
  }

  const rows = cmds.map((c) => {
    const s = [...samples.get(c.name)!].sort((a, b) => a - b)
    const target = c.name === 'rows get (PGlite)' ? TARGET_MS.pglite : c.name === 'rows get (PostgreSQL)' ? TARGET_MS.postgres : undefined
    const medianMs = round(quantileSorted(s, 0.5), 0)
    return { name: c.name, runs: s.length, medianMs, p90Ms: round(quantileSorted(s, 0.9), 0), minMs: round(s[0]!, 0), maxMs: round(s.at(-1)!, 0), ...(target ? { targetMs: target, met: medianMs <= target } : {}) }
  })
  printTable(`CLI latency, whole process, ${RUNS} runs each (ms)`, ['command', 'median', 'p90', 'min', 'max', 'target'],
    rows.map((r) => [r.name, r.medianMs, r.p90Ms, r.minMs, r.maxMs, r.targetMs === undefined ? '' : `<= ${r.targetMs} ${r.met ? 'met' : 'NOT met'}`]))
  const machine = machineInfo()
  console.log(`load average ${machine.loadAvg.join(' / ')} on ${machine.cores} cores`)
  writeResults(RESULTS, { benchmark: 'cli-latency', machine, runs: RUNS, ...(pgSkipped !== undefined ? { postgresSkipped: pgSkipped } : {}), bin: BIN === join(ROOT, 'bin', 'domicile.mjs') ? 'bin/domicile.mjs' : BIN, rows })
}

try {
  await main()
} finally {
  await cleanupAll()
}
