/**
 * A populated table with a plaintext text column on real PostgreSQL (two roles), for the
 * encrypt-in-place tests and benchmark: schema v1 declares `notes.note` as plain text, schema v2
 * declares it sensitive and searchable. Rows are inserted in bulk by the owner, as an existing
 * application would have left them.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import pg from 'pg'
import { createDomicile, parseConfig, type Domicile } from '../../src/index.js'
import { REPO_ROOT } from './cli.js'
import { startPgCluster, twoRoleDatabases, type PgCluster } from './pg-cluster.js'

export const REGION = 'eu-west-1'

const SCHEMA = (sensitive: boolean) => `export default {
  notes: { scope: 'tenant', primaryKey: 'id', columns: {
    id: { type: 'text' }, n: { type: 'integer' },
    note: { type: 'text', nullable: true${sensitive ? ", sensitive: { searchable: true, normalize: ['trim', 'lower'] }" : ''} },
  } },
}
`

/** The plaintext of row i of a tenant as first written (null for every 50th row). */
export const initialNote = (tenant: string, i: number): string | null => (i % 50 === 7 ? null : `Note ${tenant} #${i} ünïcode`)

export interface EipFixture {
  readonly cluster: PgCluster
  readonly dir: string
  readonly config: ReturnType<typeof parseConfig>
  readonly rawConfig: Record<string, unknown>
  /** Superuser connection to the region database (raw reads). */
  readonly su: pg.Client
  /** The application with the column declared sensitive. */
  readonly d: Domicile
  readonly tenants: readonly string[]
  close(): Promise<void>
}

export async function startEipFixture(name: string, tenants: readonly string[], rowsPerTenant: number, opts: { poolSize?: number } = {}): Promise<EipFixture> {
  const cluster = await startPgCluster(name)
  const dir = mkdtempSync(join(tmpdir(), `domicile-${name}-`))
  const logins = await twoRoleDatabases(cluster)
  writeFileSync(join(dir, 'schema-v1.mjs'), SCHEMA(false))
  writeFileSync(join(dir, 'schema-v2.mjs'), SCHEMA(true))
  const rawConfig = {
    regions: { [REGION]: { driver: 'postgres', url: logins.dataUrl('eu'), ownerUrl: logins.ownerUrl('eu'), poolSize: opts.poolSize ?? 10 } },
    controlPlane: { driver: 'postgres', url: logins.dataUrl('control'), ownerUrl: logins.ownerUrl('control') },
    schema: './schema-v2.mjs',
    keys: { dir: join(dir, 'keys') },
  }
  const config = parseConfig(rawConfig, dir)
  // The application before: the column is plain text.
  const v1 = await createDomicile({ config: parseConfig({ ...rawConfig, schema: './schema-v1.mjs' }, dir) })
  const m1 = await v1.migrate()
  if (!m1.every((r) => r.ok)) throw new Error(JSON.stringify(m1))
  for (const t of tenants) {
    const p = await v1.keys.provision(t, { custody: 'kms' })
    await v1.addTenant(t, { region: REGION, key: p.key, keyState: p.keyState })
  }
  await v1.close()
  const su = new pg.Client({ connectionString: cluster.url.replace(/\/postgres$/, '/eu') })
  await su.connect()
  for (const t of tenants) {
    await su.query(`INSERT INTO notes (tenant_id, id, n, note)
      SELECT $1, 'r' || lpad(i::text, 7, '0'), i, CASE WHEN i % 50 = 7 THEN NULL ELSE 'Note ' || $1 || ' #' || i || ' ünïcode' END
      FROM generate_series(0, $2 - 1) AS i`, [t, rowsPerTenant])
  }
  // The application after: the column is declared sensitive; migrate prepares it (shadow column).
  const d = await createDomicile({ config })
  const m2 = await d.migrate()
  if (!m2.every((r) => r.ok)) throw new Error(JSON.stringify(m2))
  return {
    cluster, dir, config, rawConfig, su, d, tenants,
    async close() {
      await d.close().catch(() => undefined)
      await su.end().catch(() => undefined)
      cluster.destroy()
    },
  }
}

export const rowId = (i: number): string => `r${String(i).padStart(7, '0')}`

const CHILD = (dir: string, direction: 'encrypt' | 'decrypt') => `
import { createDomicile, parseConfig } from ${JSON.stringify(pathToFileURL(join(REPO_ROOT, 'src', 'index.ts')).href)}
import { ${direction}Column } from ${JSON.stringify(pathToFileURL(join(REPO_ROOT, 'src', 'ops', 'encrypt-column.ts')).href)}
import { readFileSync } from 'node:fs'
const d = await createDomicile({ config: parseConfig(JSON.parse(readFileSync('config.json', 'utf8')), ${JSON.stringify(dir)}) })
const progress = { update(e) { console.log(JSON.stringify({ progress: e })) }, note() {} }
const r = await ${direction}Column(d, 'notes.note', { progress, batchSize: Number(process.env.BATCH ?? 500), ...(process.env.MAX_RATE ? { maxRowsPerSecond: Number(process.env.MAX_RATE) } : {}) })
console.log(JSON.stringify({ result: r }))
await d.close()
`

/**
 * Runs the migration in a child process (optionally with DOMICILE_TEST_KILL_AT); resolves with how
 * it ended. `onLine` sees each stdout line as it arrives (JSON: { progress } or { result }).
 */
export function runChild(f: EipFixture, direction: 'encrypt' | 'decrypt', killAt?: string, onLine?: (line: string) => void): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  writeFileSync(join(f.dir, 'config.json'), JSON.stringify(f.rawConfig))
  writeFileSync(join(f.dir, `child-${direction}.mts`), CHILD(f.dir, direction))
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', pathToFileURL(join(REPO_ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href, `child-${direction}.mts`], {
      cwd: f.dir, stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_NO_WARNINGS: '1', ...(killAt ? { DOMICILE_TEST_KILL_AT: killAt } : { DOMICILE_TEST_KILL_AT: '' }) },
    })
    let stdout = ''
    let stderr = ''
    let partial = ''
    child.stdout.on('data', (b) => {
      stdout += b
      if (!onLine) return
      partial += b
      const lines = partial.split('\n')
      partial = lines.pop()!
      for (const l of lines) onLine(l)
    })
    child.stderr.on('data', (b) => (stderr += b))
    child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr }))
  })
}
