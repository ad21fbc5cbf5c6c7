/**
 * The fault-and-load suite's environment: real PostgreSQL clusters (test/support/pg-cluster.ts), each
 * region a database on one of them and the control plane a database on another (or the same), set up
 * as the README's production setup (an owner login that is not a superuser owns the databases and
 * runs migrate; the data plane's login, created by migrate, is what scopes run as). The config is
 * written to a temp directory, so child processes can open the same Domicile (`configPath`).
 *
 * A region's cluster is stopped and started again without blocking this process's event loop
 * (`stopRegion` / `startRegion`, pg_ctl run asynchronously): the other regions' requests keep
 * flowing while one region goes down, as they would in production.
 *
 * @example
 * const env = await startChaosEnv({ name: 'load', clusters: 3, regions: { 'eu-west-1': 0, 'us-east-1': 1, 'ap-south-1': 2 }, schemaSource: CHAOS_SCHEMA })
 * const d = await env.open()
 * await env.stopRegion('ap-south-1'); await env.startRegion('ap-south-1')
 * await d.close(); await env.destroy()
 */
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import pg from 'pg'
import { createDomicile, parseConfig, type Domicile } from '../../src/index.js'
import { startPgCluster, type PgCluster } from './pg-cluster.js'

export interface ChaosEnvOptions {
  /** Short name, used in temp directory names. */
  readonly name: string
  /** How many clusters to start. */
  readonly clusters: number
  /** Region name → index of the cluster holding its database. */
  readonly regions: Readonly<Record<string, number>>
  /** Cluster index holding the control plane. Default 0. */
  readonly controlCluster?: number
  /** The schema module's source (what the application runs with). */
  readonly schemaSource: string
  /**
   * The application's earlier schema: migrated first, then `prepare` runs (e.g. the owner inserts
   * rows as an existing application left them), then `schemaSource` is migrated.
   */
  readonly initialSchemaSource?: string
  readonly prepare?: (env: ChaosEnv) => Promise<void>
  /** Per-region pool size. Default 6. */
  readonly poolSize?: number
  /** Per-store connect timeout (ms). Default: the driver's (2000). */
  readonly connectTimeoutMs?: number
  /** Control-plane poll (ms). Default 200. */
  readonly directoryPollMs?: number
}

export interface OpenOverrides {
  readonly poolSize?: number
  readonly connectTimeoutMs?: number
  /** false: a short-lived process's directory (no change feed). */
  readonly changeFeed?: boolean
}

export interface ChaosEnv {
  readonly dir: string
  /** domicile.config.json in `dir`, for child processes. */
  readonly configPath: string
  readonly rawConfig: Record<string, unknown>
  readonly clusters: readonly PgCluster[]
  readonly regions: readonly string[]
  /** Superuser URL of a region's database (reads the store directly: no Domicile, no RLS). */
  directUrl(region: string): string
  /** Superuser URL of the control plane's database. */
  readonly controlUrl: string
  /** The cluster holding a region's database. */
  clusterOf(region: string): PgCluster
  /** A superuser client on a region's database (or 'control'), for one piece of work. */
  withDirect<T>(region: string, fn: (c: pg.Client) => Promise<T>): Promise<T>
  /** Opens a Domicile on this environment (the caller closes it). */
  open(over?: OpenOverrides): Promise<Domicile>
  /** Stops the region's cluster (immediate shutdown) without blocking the event loop; resolves with ms taken. */
  stopRegion(region: string): Promise<number>
  /** Starts it again (same port and options); resolves with ms taken once it accepts connections. */
  startRegion(region: string): Promise<number>
  destroy(): Promise<void>
}

const asRoot = process.getuid?.() === 0

function pgBin(bin: string): string {
  const r = spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' })
  if (r.status === 0 && r.stdout.trim()) return r.stdout.trim()
  for (const d of ['/usr/lib/postgresql/15/bin', '/usr/lib/postgresql/16/bin', '/usr/local/bin']) {
    if (existsSync(join(d, bin))) return join(d, bin)
  }
  throw new Error(`${bin} not found`)
}

/** Runs pg_ctl asynchronously (as the postgres user when root, as pg-cluster.ts does). */
function pgCtl(args: string[]): Promise<void> {
  const path = pgBin('pg_ctl')
  const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', path, ...args]] : [path, args]
  return new Promise((resolve, reject) => {
    const child = spawn(cmd as string, argv as string[], { stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    child.stderr.on('data', (b) => (err += b))
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
    child.on('error', reject)
    child.on('exit', (code) => {
      clearTimeout(timer)
      if (code === 0) resolve()
      else reject(new Error(`pg_ctl ${args.at(-1)} failed (${code}): ${err}`))
    })
  })
}

/** Database name of a region ("eu-west-1" → "region_eu_west_1"). */
export const regionDb = (region: string): string => `region_${region.replace(/-/g, '_')}`

export async function startChaosEnv(opts: ChaosEnvOptions): Promise<ChaosEnv> {
  const clusters: PgCluster[] = []
  const dir = mkdtempSync(join(tmpdir(), `domicile-chaos-${opts.name}-`))
  try {
    // initdb is CPU-bound: on two cores, two at a time.
    for (let i = 0; i < opts.clusters; i += 2) {
      const batch = await Promise.all(Array.from({ length: Math.min(2, opts.clusters - i) }, (_, j) => startPgCluster(`${opts.name}-${i + j}`)))
      clusters.push(...batch)
    }
  } catch (e) {
    for (const c of clusters) c.destroy()
    rmSync(dir, { recursive: true, force: true })
    throw e
  }
  try {
    const controlIdx = opts.controlCluster ?? 0
    const dbsOf = (i: number) => [
      ...Object.entries(opts.regions).filter(([, c]) => c === i).map(([r]) => regionDb(r)),
      ...(i === controlIdx ? ['control'] : []),
    ]
    for (let i = 0; i < clusters.length; i++) {
      const su = new pg.Client({ connectionString: clusters[i]!.url })
      await su.connect()
      try {
        await su.query("CREATE ROLE domicile_owner LOGIN CREATEROLE PASSWORD 'owner-pw'")
        for (const db of dbsOf(i)) await su.query(`CREATE DATABASE ${db} OWNER domicile_owner`)
      } finally {
        await su.end()
      }
    }
    const logins = (c: PgCluster, db: string) => ({
      url: `postgres://domicile_data:data-pw@127.0.0.1:${c.port}/${db}`,
      ownerUrl: `postgres://domicile_owner:owner-pw@127.0.0.1:${c.port}/${db}`,
    })
    const timeout = opts.connectTimeoutMs !== undefined ? { connectTimeoutMs: opts.connectTimeoutMs } : {}
    const regionEntries = Object.entries(opts.regions)
    const raw = (schema: string, over: OpenOverrides = {}) => ({
      regions: Object.fromEntries(regionEntries.map(([r, i]) => [r, {
        driver: 'postgres', ...logins(clusters[i]!, regionDb(r)), poolSize: over.poolSize ?? opts.poolSize ?? 6,
        ...timeout, ...(over.connectTimeoutMs !== undefined ? { connectTimeoutMs: over.connectTimeoutMs } : {}),
      }])),
      controlPlane: { driver: 'postgres', ...logins(clusters[controlIdx]!, 'control') },
      schema,
      keys: { dir: './keys' },
      directoryPollMs: opts.directoryPollMs ?? 200,
    })
    writeFileSync(join(dir, 'domicile.schema.mjs'), opts.schemaSource)
    const rawConfig = raw('./domicile.schema.mjs')
    const configPath = join(dir, 'domicile.config.json')
    writeFileSync(configPath, JSON.stringify(rawConfig, null, 2))
    const directUrl = (region: string) => {
      const i = opts.regions[region]
      if (i === undefined) throw new Error(`unknown region ${region}`)
      return `postgres://postgres@127.0.0.1:${clusters[i]!.port}/${regionDb(region)}`
    }
    const controlUrl = `postgres://postgres@127.0.0.1:${clusters[controlIdx]!.port}/control`
    const env: ChaosEnv = {
      dir, configPath, rawConfig, clusters,
      regions: regionEntries.map(([r]) => r),
      directUrl, controlUrl,
      clusterOf: (region) => clusters[opts.regions[region]!]!,
      async withDirect(region, fn) {
        const c = new pg.Client({ connectionString: region === 'control' ? controlUrl : directUrl(region) })
        await c.connect()
        try {
          return await fn(c)
        } finally {
          await c.end().catch(() => undefined)
        }
      },
      async open(over = {}) {
        return createDomicile({ config: parseConfig(raw('./domicile.schema.mjs', over), dir), ...(over.changeFeed === false ? { changeFeed: false } : {}) })
      },
      async stopRegion(region) {
        const c = env.clusterOf(region)
        const t0 = Date.now()
        await pgCtl(['-D', c.dataDir, '-m', 'immediate', '-w', 'stop'])
        return Date.now() - t0
      },
      async startRegion(region) {
        const c = env.clusterOf(region)
        const t0 = Date.now()
        // "restart" of a stopped server starts it with the options it last ran with (postmaster.opts).
        await pgCtl(['-D', c.dataDir, '-l', join(dirname(c.dataDir), 'log'), '-w', '-t', '30', 'restart'])
        return Date.now() - t0
      },
      async destroy() {
        for (const c of clusters) c.destroy()
        rmSync(dir, { recursive: true, force: true })
      },
    }
    const migrate = async (schemaFile: string) => {
      const d = await createDomicile({ config: parseConfig(raw(schemaFile), dir) })
      try {
        const results = await d.migrate()
        if (!results.every((r) => r.ok)) throw new Error(`migrate failed: ${JSON.stringify(results)}`)
      } finally {
        await d.close()
      }
    }
    if (opts.initialSchemaSource !== undefined) {
      writeFileSync(join(dir, 'domicile.schema-v1.mjs'), opts.initialSchemaSource)
      await migrate('./domicile.schema-v1.mjs')
    }
    if (opts.prepare) await opts.prepare(env)
    await migrate('./domicile.schema.mjs')
    return env
  } catch (e) {
    for (const c of clusters) c.destroy()
    rmSync(dir, { recursive: true, force: true })
    throw e
  }
}
