/**
 * Real PostgreSQL clusters for tests: one cluster per region, created with initdb in a temp dir,
 * started with pg_ctl on a free loopback port, stopped (and removed) afterwards. initdb refuses
 * root, so as root the binaries run as the `postgres` system user.
 *
 * When the binaries are missing: in CI (CI=true) the suite fails; locally it is skipped by name.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface PgCluster {
  readonly name: string
  readonly port: number
  readonly url: string
  /** The cluster's data directory. */
  readonly dataDir: string
  /** The postmaster's pid while running (from postmaster.pid). */
  postmasterPid(): number | undefined
  /** URL of another database on the same cluster (created on demand). */
  database(db: string): string
  /** Fast stop (immediate): the region "goes down". */
  stop(): void
  start(): void
  destroy(): void
}

function which(bin: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' })
  if (r.status === 0 && r.stdout.trim()) return r.stdout.trim()
  for (const dir of ['/usr/lib/postgresql/15/bin', '/usr/lib/postgresql/16/bin', '/usr/local/bin']) {
    if (existsSync(join(dir, bin))) return join(dir, bin)
  }
  return undefined
}

/** Why real PostgreSQL is unavailable, or undefined if it is available. Throws in CI. */
export function postgresUnavailable(): string | undefined {
  const missing = ['initdb', 'pg_ctl'].filter((b) => !which(b))
  if (missing.length === 0) return undefined
  const reason = `PostgreSQL binaries not found (${missing.join(', ')}); install postgresql-15`
  if (process.env.CI === 'true') throw new Error(`CI requires real PostgreSQL: ${reason}`)
  return reason
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr ? addr.port : 0
      srv.close(() => resolve(port))
    })
  })
}

const asRoot = process.getuid?.() === 0

function run(bin: string, args: string[]): void {
  const path = which(bin)
  if (!path) throw new Error(`${bin} not found`)
  const cmd = asRoot ? 'runuser' : path
  const argv = asRoot ? ['-u', 'postgres', '--', path, ...args] : args
  const r = spawnSync(cmd, argv, { encoding: 'utf8', timeout: 60_000 })
  if (r.status !== 0) throw new Error(`${bin} ${args[0] ?? ''} failed: ${r.stderr || r.stdout}`)
}

/** initdb + start a cluster on a free loopback port. */
export async function startPgCluster(name: string): Promise<PgCluster> {
  const dir = mkdtempSync(join(tmpdir(), `domicile-pg-${name}-`))
  if (asRoot) execFileSync('chown', ['postgres:postgres', dir])
  const data = join(dir, 'data')
  run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C'])
  const port = await freePort()
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=60`
  const start = () => run('pg_ctl', ['-D', data, '-o', opts, '-l', join(dir, 'log'), '-w', '-t', '30', 'start'])
  start()
  const base = `postgres://postgres@127.0.0.1:${port}`
  const created = new Set<string>()
  let running = true
  let destroyed = false
  const cluster: PgCluster = {
    name,
    port,
    url: `${base}/postgres`,
    dataDir: data,
    postmasterPid(): number | undefined {
      try {
        const pid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0])
        return Number.isInteger(pid) && pid > 0 ? pid : undefined
      } catch {
        return undefined
      }
    },
    database(db: string): string {
      if (!/^[a-z_][a-z0-9_]*$/.test(db)) throw new Error('bad database name')
      if (!created.has(db)) {
        run('psql', ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-qc', `CREATE DATABASE ${db}`])
        created.add(db)
      }
      return `${base}/${db}`
    },
    stop() {
      if (!running) return
      run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop'])
      running = false
    },
    start() {
      if (running) return
      start()
      running = true
    },
    destroy() {
      if (destroyed) return
      destroyed = true
      try {
        cluster.stop()
      } catch {
        // already down
      }
      rmSync(dir, { recursive: true, force: true })
    },
  }
  return cluster
}


/** Logins of the README's production setup on one cluster (see `twoRoleDatabases`). */
export interface TwoRoleLogins {
  /** The owner's login URL for a database (non-superuser, CREATEROLE, owns the database). */
  ownerUrl(db: string): string
  /** The data plane's login URL for a database (the role `migrate` creates). */
  dataUrl(db: string): string
}

/**
 * The README's "Production PostgreSQL (two roles)" setup on a test cluster: as the superuser, an
 * owner role that is not a superuser (`domicile_owner`, CREATEROLE) and databases it owns. The data
 * plane's role (`domicile_data`) is created by `domicile migrate`.
 */
export async function twoRoleDatabases(cluster: PgCluster, dbs: readonly string[] = ['eu', 'control']): Promise<TwoRoleLogins> {
  const { default: pg } = await import('pg')
  const su = new pg.Client({ connectionString: cluster.url })
  await su.connect()
  try {
    await su.query(`DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'domicile_owner') THEN CREATE ROLE domicile_owner LOGIN CREATEROLE PASSWORD 'owner-pw'; END IF; END $$`)
    for (const db of dbs) {
      if (!/^[a-z_][a-z0-9_]*$/.test(db)) throw new Error('bad database name')
      await su.query(`CREATE DATABASE ${db} OWNER domicile_owner`)
    }
  } finally {
    await su.end()
  }
  const base = `127.0.0.1:${cluster.port}`
  return {
    ownerUrl: (db) => `postgres://domicile_owner:owner-pw@${base}/${db}`,
    dataUrl: (db) => `postgres://domicile_data:data-pw@${base}/${db}`,
  }
}
