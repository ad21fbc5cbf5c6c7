/**
 * Test support for tenant moves: two real PostgreSQL clusters, one per region ("eu" and "us"), the
 * control plane as a database on the first, each set up as the README's production setup (an owner
 * login that is not a superuser, the data-plane login that migrate creates). The schema has two
 * tenant tables, `orders` referencing `customers` through a raw foreign key (the schema DSL has
 * none), so a move must write parents before children and delete children before parents.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { createDomicile, parseConfig, type Domicile } from '../../src/index.js'
import { startPgCluster, type PgCluster } from './pg-cluster.js'

export const EU = 'eu-west-1'
export const US = 'us-east-1'

export const MOVE_SCHEMA = `export default {
  customers: {
    scope: 'tenant',
    primaryKey: 'id',
    columns: {
      id: { type: 'text' },
      name: { type: 'text' },
      email: { type: 'text', nullable: true, sensitive: { searchable: true, normalize: ['trim', 'lower'] } },
      tax_id: { type: 'text', nullable: true, sensitive: true },
      plan: { type: 'text', nullable: true },
    },
    indexes: ['plan'],
  },
  orders: {
    scope: 'tenant',
    primaryKey: 'id',
    columns: {
      id: { type: 'text' },
      customer_id: { type: 'text' },
      amount: { type: 'integer' },
      note: { type: 'text', nullable: true, sensitive: true },
    },
    indexes: ['customer_id'],
  },
}
`

export interface MoveEnv {
  readonly dir: string
  readonly configPath: string
  readonly clusters: { readonly eu: PgCluster; readonly us: PgCluster }
  /** Superuser clients on each region database (reading the stores directly, not through Domicile). */
  readonly direct: { readonly [region: string]: pg.Client }
  open(): Promise<Domicile>
  destroy(): Promise<void>
}

async function prepareCluster(c: PgCluster, dbs: string[], replicationRole: boolean): Promise<void> {
  const su = new pg.Client({ connectionString: c.url })
  await su.connect()
  try {
    await su.query("CREATE ROLE domicile_owner LOGIN CREATEROLE PASSWORD 'owner-pw'")
    for (const db of dbs) await su.query(`CREATE DATABASE ${db} OWNER domicile_owner`)
    // README "Production PostgreSQL (two roles)", the optional grant for faster tenant moves.
    if (replicationRole) await su.query('GRANT SET ON PARAMETER session_replication_role TO domicile_owner')
  } finally {
    await su.end()
  }
}

/**
 * Starts both clusters, migrates, adds the raw foreign key in both regions. `replicationRole`: the
 * owner may set session_replication_role (the README's optional grant), so the bulk copy checks
 * foreign keys once per chunk.
 */
export async function startMoveEnv(name: string, opts: { poolSize?: number; replicationRole?: boolean } = {}): Promise<MoveEnv> {
  const [eu, us] = await Promise.all([startPgCluster(`${name}-eu`), startPgCluster(`${name}-us`)])
  const grant = opts.replicationRole ?? false
  await Promise.all([prepareCluster(eu, ['region', 'control'], grant), prepareCluster(us, ['region'], grant)])
  const dir = mkdtempSync(join(tmpdir(), `domicile-${name}-`))
  const urls = (c: PgCluster, db: string) => ({
    url: `postgres://domicile_data:data-pw@127.0.0.1:${c.port}/${db}`,
    ownerUrl: `postgres://domicile_owner:owner-pw@127.0.0.1:${c.port}/${db}`,
  })
  const raw = {
    regions: {
      [EU]: { driver: 'postgres', ...urls(eu, 'region'), poolSize: opts.poolSize ?? 8 },
      [US]: { driver: 'postgres', ...urls(us, 'region'), poolSize: opts.poolSize ?? 8 },
    },
    controlPlane: { driver: 'postgres', ...urls(eu, 'control') },
    schema: './domicile.schema.mjs',
    keys: { dir: './keys' },
    directoryPollMs: 200,
  }
  writeFileSync(join(dir, 'domicile.schema.mjs'), MOVE_SCHEMA)
  const configPath = join(dir, 'domicile.config.json')
  writeFileSync(configPath, JSON.stringify(raw, null, 2))
  const open = async () => createDomicile({ config: parseConfig(raw, dir) })
  const d = await open()
  try {
    const results = await d.migrate()
    if (!results.every((r) => r.ok)) throw new Error(`migrate failed: ${JSON.stringify(results)}`)
  } finally {
    await d.close()
  }
  const direct: Record<string, pg.Client> = {}
  for (const [region, c] of [[EU, eu], [US, us]] as const) {
    const client = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${c.port}/region` })
    await client.connect()
    await client.query('ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id)')
    direct[region] = client
  }
  return {
    dir, configPath, clusters: { eu, us }, direct, open,
    async destroy() {
      for (const c of Object.values(direct)) await c.end().catch(() => undefined)
      eu.destroy()
      us.destroy()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** Adds a tenant with a local KMS key in a region. */
export async function addKmsTenant(d: Domicile, id: string, region: string): Promise<void> {
  const p = await d.keys.provision(id, { custody: 'kms' })
  await d.addTenant(id, { region, key: p.key, keyState: p.keyState })
}

/** Every row of the tenant, sensitive fields revealed, keyed `table/id` (read through withTenant). */
export async function revealAll(d: Domicile, tenant: string): Promise<Map<string, Record<string, unknown>>> {
  return d.withTenant(tenant, async (scope) => {
    const out = new Map<string, Record<string, unknown>>()
    for (const table of ['customers', 'orders']) {
      let cursor: string | undefined
      do {
        const page = await scope.table(table).list({ limit: 1000, ...(cursor ? { cursor } : {}) })
        const rows = await scope.revealRows(page.rows, { purpose: 'test: compare after move', actor: 'test' })
        for (const r of rows) out.set(`${table}/${String(r.id)}`, { ...r })
        cursor = page.nextCursor
      } while (cursor)
    }
    return out
  })
}

/** The tenant's rows and keys in a region, read directly from the store (superuser, no RLS). */
export async function physicalCounts(env: MoveEnv, region: string, tenant: string): Promise<{ customers: number; orders: number; keys: number }> {
  const c = env.direct[region]!
  const n = async (sql: string) => Number((await c.query(sql, [tenant])).rows[0].n)
  return {
    customers: await n('SELECT count(*) AS n FROM customers WHERE tenant_id = $1'),
    orders: await n('SELECT count(*) AS n FROM orders WHERE tenant_id = $1'),
    keys: await n('SELECT count(*) AS n FROM domicile_data_keys WHERE tenant_id = $1'),
  }
}
