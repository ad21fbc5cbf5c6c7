/**
 * Test support for the key-rotation tests: one real PostgreSQL 15 cluster set up as the README's
 * "Production PostgreSQL (two roles)" describes (a non-superuser owner runs migrate and admin work,
 * the data plane logs in as a role that owns nothing), one region (eu-west-1) and the control plane,
 * the example schema, the local key provider. The config is also written to a file, so a rotation
 * can run in a child process (test/support/rotation-worker.ts) and be SIGKILLed there.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import pg from 'pg'
import { createDomicile, type Domicile } from '../../src/index.js'
import { EXAMPLE_SCHEMA } from '../../src/cli/templates.js'
import { startPgCluster, twoRoleDatabases, type PgCluster } from './pg-cluster.js'

export const REGION = 'eu-west-1'
const REPO_ROOT = resolve(import.meta.dirname, '..', '..')
const WORKER = join(REPO_ROOT, 'test', 'support', 'rotation-worker.ts')

export interface RotationCluster {
  readonly cluster: PgCluster
  readonly dir: string
  readonly configPath: string
  /** Superuser connection to the region database. */
  readonly su: pg.Client
  open(): Promise<Domicile>
  /** Runs test/support/rotation-worker.ts; resolves with its exit and the JSON lines it printed. */
  runWorker(kind: 'kek' | 'data' | 'index', tenant: string, env: Record<string, string>): Promise<{ code: number | null; signal: NodeJS.Signals | null; events: Array<Record<string, unknown>>; stderr: string }>
  close(): Promise<void>
}

export async function startRotationCluster(name: string, keys: Record<string, unknown> = {}): Promise<RotationCluster> {
  const cluster = await startPgCluster(name)
  const dir = mkdtempSync(join(tmpdir(), `domicile-${name}-`))
  const logins = await twoRoleDatabases(cluster)
  writeFileSync(join(dir, 'domicile.schema.mjs'), EXAMPLE_SCHEMA)
  const configPath = join(dir, 'domicile.config.json')
  writeFileSync(configPath, JSON.stringify({
    regions: {
      [REGION]: { driver: 'postgres', url: logins.dataUrl('eu'), ownerUrl: logins.ownerUrl('eu'), poolSize: 6 },
    },
    controlPlane: { driver: 'postgres', url: logins.dataUrl('control'), ownerUrl: logins.ownerUrl('control') },
    schema: './domicile.schema.mjs',
    directoryPollMs: 200,
    keys: { dir: join(dir, 'keys'), ...keys },
  }, null, 2))
  const first = await createDomicile({ configPath })
  await first.migrate()
  await first.close()
  const su = new pg.Client({ connectionString: cluster.url.replace(/\/postgres$/, '/eu') })
  await su.connect()
  return {
    cluster, dir, configPath, su,
    open: () => createDomicile({ configPath }),
    runWorker(kind, tenant, env) {
      return new Promise((done, fail) => {
        const child = spawn(process.execPath, ['--import', 'tsx', WORKER, configPath, kind, tenant], {
          cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_NO_WARNINGS: '1', ...env },
        })
        let out = ''
        let err = ''
        child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d })
        child.stderr.setEncoding('utf8').on('data', (d: string) => { err += d })
        child.once('error', fail)
        child.once('exit', (code, signal) => {
          const events = out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>)
          done({ code, signal, events, stderr: err })
        })
      })
    },
    async close() {
      await su.end().catch(() => undefined)
      cluster.destroy()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** Runs `step` in a loop until `stop()` is called; counts successes and keeps the errors. */
export function loop(step: (i: number) => Promise<void>): { stop(): Promise<void>; readonly ok: number; readonly errors: unknown[] } {
  let running = true
  let ok = 0
  const errors: unknown[] = []
  const done = (async () => {
    for (let i = 0; running; i++) {
      try {
        await step(i)
        ok++
      } catch (e) {
        errors.push(e)
        if (errors.length > 50) running = false
      }
    }
  })()
  return {
    async stop() {
      running = false
      await done
    },
    get ok() { return ok },
    errors,
  }
}
