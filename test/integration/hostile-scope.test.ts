/**
 * SQL inside a tenant scope is hostile (issue #9, item 1 and 2). Real PostgreSQL 15, set up as the
 * README's "Production PostgreSQL (two roles)" describes: a non-superuser owner with CREATEROLE owns
 * the databases and runs migrate (`ownerUrl`); `migrate` creates the data plane's login (`url`).
 * The pool has one connection, so every scope reuses the previous scope's session.
 *
 * Each attack runs through the public API (`scope.sql`), as injected SQL would.
 */
import { strict as assert } from 'node:assert'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import pg from 'pg'
import { createDomicile, parseConfig, type Domicile } from '../../src/index.js'
import { EXAMPLE_SCHEMA } from '../../src/cli/templates.js'
import { isDomicileError } from '../../src/errors.js'
import { internalsOf } from '../../src/domicile-internals.js'
import { scramSha256Verifier } from '../../src/regions/drivers/scram-verifier.js'
import { postgresUnavailable, startPgCluster, twoRoleDatabases, type PgCluster } from '../support/pg-cluster.js'

const missing = postgresUnavailable()
const REGION = 'eu-west-1'

/** Rejects with a DomicileError of this code. */
async function refused(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isDomicileError(e), `expected a DomicileError, got ${String(e)}`)
    assert.equal(e.code, code, e.message)
    return true
  })
}

describe('hostile SQL inside a tenant scope (real PostgreSQL, two roles)', { skip: missing }, () => {
  let cluster: PgCluster
  let dir: string
  let d: Domicile
  let su: pg.Client

  before(async () => {
    cluster = await startPgCluster('hostile')
    dir = mkdtempSync(join(tmpdir(), 'domicile-hostile-'))
    su = new pg.Client({ connectionString: cluster.url })
    await su.connect()
    // The README's production setup: an owner that is not a superuser, owning the databases.
    const logins = await twoRoleDatabases(cluster)
    writeFileSync(join(dir, 'domicile.schema.mjs'), EXAMPLE_SCHEMA)
    const config = parseConfig({
      regions: {
        [REGION]: { driver: 'postgres', url: logins.dataUrl('eu'), ownerUrl: logins.ownerUrl('eu'), poolSize: 1 },
      },
      controlPlane: { driver: 'postgres', url: logins.dataUrl('control'), ownerUrl: logins.ownerUrl('control') },
      schema: './domicile.schema.mjs',
      keys: { dir: join(dir, 'keys') },
    }, dir)
    d = await createDomicile({ config })
    const results = await d.migrate()
    assert.ok(results.every((r) => r.ok), JSON.stringify(results))
    for (const t of ['acme', 'globex']) {
      const p = await d.keys.provision(t, { custody: 'kms' })
      await d.addTenant(t, { region: REGION, key: p.key, keyState: p.keyState })
      await d.withTenant(t, (s) => s.table('customers').insert({ id: `${t}-1`, name: `${t} customer`, email: `ada@${t}.example`, tax_id: 'X1' }))
    }
  })

  after(async () => {
    await d?.close()
    await su?.end().catch(() => undefined)
    cluster?.destroy()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  const names = (rows: Array<{ id?: unknown }>) => rows.map((r) => String(r.id)).sort()

  test('migrate created a data-plane login that owns nothing and cannot become the owner', async () => {
    const r = await su.query(`SELECT r.rolsuper, r.rolbypassrls, r.rolcreaterole, r.rolcreatedb,
        pg_has_role(r.oid, 'domicile_owner', 'MEMBER') AS owner_member, pg_has_role(r.oid, 'domicile_app', 'USAGE') AS app
      FROM pg_roles r WHERE r.rolname = 'domicile_data'`)
    assert.deepEqual(r.rows[0], { rolsuper: false, rolbypassrls: false, rolcreaterole: false, rolcreatedb: false, owner_member: false, app: true })
    const eu = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${cluster.port}/eu` })
    await eu.connect()
    try {
      const owned = await eu.query("SELECT count(*)::int AS n FROM pg_class WHERE relowner = 'domicile_data'::regrole")
      assert.equal(owned.rows[0].n, 0)
    } finally {
      await eu.end()
    }
  })

  test('migrate set the data-plane password as the SCRAM verifier PostgreSQL itself computes', async () => {
    const parse = (v: string) => {
      const m = /^SCRAM-SHA-256\$(\d+):([^$]+)\$/.exec(v)
      assert.ok(m, 'a SCRAM-SHA-256 verifier')
      return { iterations: Number(m[1]), salt: Buffer.from(m[2]!, 'base64') }
    }
    // PostgreSQL's own verifier for a known password, recomputed with its salt: the same bytes.
    await su.query("SET password_encryption = 'scram-sha-256'")
    await su.query("CREATE ROLE scram_probe PASSWORD 'pässw0rd'")
    const probe = (await su.query("SELECT rolpassword FROM pg_authid WHERE rolname = 'scram_probe'")).rows[0].rolpassword as string
    const p = parse(probe)
    assert.equal(scramSha256Verifier('pässw0rd', p.salt, p.iterations), probe)
    const stored = (await su.query("SELECT rolpassword FROM pg_authid WHERE rolname = 'domicile_data'")).rows[0].rolpassword as string
    const s = parse(stored)
    assert.equal(scramSha256Verifier('data-pw', s.salt, s.iterations), stored)
    assert.notEqual(scramSha256Verifier('other', s.salt, s.iterations), stored)
  })

  test('a scope sees only its tenant', async () => {
    assert.deepEqual(names(await d.withTenant('acme', (s) => s.sql('SELECT id FROM customers'))), ['acme-1'])
  })

  test('set_config of the tenant context inside a scope is refused', async () => {
    await refused(d.withTenant('acme', async (s) => {
      await s.sql("SELECT set_config('domicile.tenant_id', 'globex', true)")
      return s.sql('SELECT id FROM customers')
    }), 'ERR_PERMISSION_DENIED')
    await refused(d.withTenant('acme', async (s) => {
      await s.sql("SET LOCAL domicile.tenant_id = 'globex'")
      return s.sql('SELECT id FROM customers')
    }), 'ERR_PERMISSION_DENIED')
    // Copying this transaction's proof does not make it valid for another tenant.
    await refused(d.withTenant('acme', async (s) => {
      await s.sql("SELECT set_config('domicile.tenant_id', 'globex', true), set_config('domicile.tenant_proof', current_setting('domicile.tenant_proof'), true)")
      return s.sql('SELECT id FROM customers')
    }), 'ERR_PERMISSION_DENIED')
  })

  test('COMMIT and BEGIN inside a scope leave no tenant context, and it cannot be re-entered', async () => {
    const seen = await d.withTenant('acme', async (s) => {
      await s.sql('COMMIT')
      await s.sql('BEGIN')
      return s.sql('SELECT id FROM customers')
    })
    assert.deepEqual(seen, [])
    await refused(d.withTenant('acme', async (s) => {
      await s.sql('COMMIT; BEGIN')
      return s.sql("SELECT domicile_enter(repeat('0', 64), 'globex')")
    }), 'ERR_PERMISSION_DENIED')
    await refused(d.withTenant('acme', (s) => s.sql('SELECT domicile_session_open()')), 'ERR_PERMISSION_DENIED')
    // A previous session's proof copied into a new transaction is not valid either.
    await refused(d.withTenant('acme', async (s) => {
      const [p] = await s.sql<{ p: string }>("SELECT current_setting('domicile.tenant_proof') AS p")
      await s.sql('COMMIT; BEGIN')
      await s.sql(`SELECT set_config('domicile.tenant_id', 'acme', true), set_config('domicile.tenant_proof', '${p!.p}', true)`)
      return s.sql('SELECT id FROM customers')
    }), 'ERR_PERMISSION_DENIED')
  })

  test('RESET ROLE, SET ROLE and SET SESSION AUTHORIZATION do not escape the scope', async () => {
    const rows = await d.withTenant('acme', async (s) => {
      await s.sql('RESET ROLE')
      return s.sql('SELECT id FROM customers')
    })
    assert.deepEqual(names(rows), ['acme-1'])
    await refused(d.withTenant('acme', (s) => s.sql('SET ROLE domicile_owner')), 'ERR_PERMISSION_DENIED')
    await refused(d.withTenant('acme', (s) => s.sql('SET SESSION AUTHORIZATION domicile_owner')), 'ERR_PERMISSION_DENIED')
    await refused(d.withTenant('acme', (s) => s.sql('ALTER TABLE customers DISABLE ROW LEVEL SECURITY')), 'ERR_PERMISSION_DENIED')
  })

  test('a TEMP table named like an application table does not capture the next tenant\'s writes', async () => {
    await d.withTenant('acme', (s) => s.sql('CREATE TEMP TABLE customers (LIKE public.customers INCLUDING ALL)'))
    await d.withTenant('globex', async (s) => {
      assert.deepEqual(await s.sql("SELECT to_regclass('pg_temp.customers') AS t"), [{ t: null }])
      await s.table('customers').insert({ id: 'globex-2', name: 'Grace', email: 'grace@globex.example' })
      await s.sql("INSERT INTO customers (tenant_id, id, name) VALUES ('globex', 'globex-3', 'raw')")
    })
    assert.deepEqual(names(await d.withTenant('acme', (s) => s.sql('SELECT id FROM customers'))), ['acme-1'])
    const stored = await internalsOf(d).router.withRegionAdmin(REGION, (s) => s.query<{ id: string }>("SELECT id FROM public.customers WHERE tenant_id = 'globex' ORDER BY id"))
    assert.deepEqual(stored.rows.map((r) => r.id), ['globex-1', 'globex-2', 'globex-3'])
  })

  test('session settings, search_path, prepared statements, temp views, cursors and LISTEN do not reach the next scope', async () => {
    await d.withTenant('acme', async (s) => {
      await s.sql("SET search_path = pg_temp, public; SET statement_timeout = 600000; SET application_name = 'planted'")
      await s.sql('PREPARE planted AS SELECT id FROM customers')
      await s.sql('CREATE TEMP VIEW planted_view AS SELECT 1 AS x')
      await s.sql('DECLARE planted_cursor CURSOR WITH HOLD FOR SELECT 1')
      await s.sql('LISTEN planted_channel')
      await s.sql('SELECT pg_advisory_lock(4242)')
    })
    const state = await d.withTenant('globex', (s) => s.sql<Record<string, unknown>>(`SELECT current_setting('search_path') AS search_path,
        current_setting('statement_timeout') AS statement_timeout, current_setting('application_name') AS app,
        (SELECT count(*)::int FROM pg_prepared_statements) AS prepared,
        to_regclass('pg_temp.planted_view') AS view, (SELECT count(*)::int FROM pg_cursors) AS cursors,
        (SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()) AS locks`))
    assert.deepEqual(state, [{ search_path: '"$user", public', statement_timeout: '0', app: '', prepared: 0, view: null, cursors: 0, locks: 0 }])
    await refused(d.withTenant('globex', (s) => s.sql('EXECUTE planted')), 'ERR_QUERY_FAILED')
    // UNLISTEN is transactional: the channel is gone once the next scope committed.
    const channels = await d.withTenant('globex', (s) => s.sql<{ n: number }>('SELECT count(*)::int AS n FROM pg_listening_channels()'))
    assert.deepEqual(channels, [{ n: 0 }])
  })

  test('COPY ... TO PROGRAM is refused', async () => {
    const marker = join(dir, 'copy-to-program-ran')
    await refused(d.withTenant('acme', (s) => s.sql(`COPY (SELECT 1) TO PROGRAM 'touch ${marker}'`)), 'ERR_PERMISSION_DENIED')
    assert.equal(existsSync(marker), false)
  })

  test('audit records cannot be forged from a scope', async () => {
    await refused(d.withTenant('acme', (s) => s.sql("INSERT INTO domicile_audit (tenant_id, type, outcome) VALUES ('acme', 'field.reveal', 'ok')")), 'ERR_PERMISSION_DENIED')
    await refused(d.withTenant('acme', (s) => s.sql(`SELECT domicile_audit_append(repeat('0', 64), '[{"type":"field.reveal","outcome":"ok"}]')`)), 'ERR_PERMISSION_DENIED')
    await refused(d.withTenant('acme', (s) => s.sql('UPDATE domicile_audit SET outcome = $1', ['denied'])), 'ERR_PERMISSION_DENIED')
    await refused(d.withTenant('acme', (s) => s.sql('DELETE FROM domicile_audit')), 'ERR_PERMISSION_DENIED')
    const forged = await internalsOf(d).router.withRegionAdmin(REGION, (s) => s.query<{ n: number }>("SELECT count(*)::int AS n FROM domicile_audit WHERE type = 'field.reveal'"))
    assert.equal(forged.rows[0]!.n, 0)
  })

  test('key records cannot be damaged or used up from a scope', async () => {
    const before = await internalsOf(d).router.withRegionAdmin(REGION, (s) => s.query('SELECT purpose, key_number, wrapped, encryptions_reserved FROM domicile_data_keys WHERE tenant_id = $1 ORDER BY 1, 2', ['acme']))
    assert.ok(before.rows.length >= 2, 'acme has a data key and an index key')
    await refused(d.withTenant('acme', (s) => s.sql("UPDATE domicile_data_keys SET wrapped = '\\x00'")), 'ERR_PERMISSION_DENIED')
    await refused(d.withTenant('acme', (s) => s.sql('UPDATE domicile_data_keys SET encryptions_reserved = max_encryptions')), 'ERR_PERMISSION_DENIED')
    await refused(d.withTenant('acme', (s) => s.sql('DELETE FROM domicile_data_keys')), 'ERR_PERMISSION_DENIED')
    await refused(d.withTenant('acme', (s) => s.sql("INSERT INTO domicile_data_keys (tenant_id, purpose, key_number, wrapped, provider, key_id, max_encryptions) VALUES ('acme', 'data', 99, '\\x00', 'local', 'k', 1)")), 'ERR_PERMISSION_DENIED')
    await refused(d.withTenant('acme', (s) => s.sql("SELECT * FROM domicile_key_reserve(repeat('0', 64), 4294967296)")), 'ERR_PERMISSION_DENIED')
    await refused(d.withTenant('acme', (s) => s.sql("SELECT domicile_key_insert(repeat('0', 64), 'data', 99, '\\x00', 'local', 'k', 0, 1)")), 'ERR_PERMISSION_DENIED')
    await refused(d.withTenant('acme', (s) => s.sql('SELECT secret FROM domicile_sessions')), 'ERR_PERMISSION_DENIED')
    const after = await internalsOf(d).router.withRegionAdmin(REGION, (s) => s.query('SELECT purpose, key_number, wrapped, encryptions_reserved FROM domicile_data_keys WHERE tenant_id = $1 ORDER BY 1, 2', ['acme']))
    assert.deepEqual(after.rows, before.rows)
    // The tenant's search and reveal still work.
    const [row] = await d.withTenant('acme', (s) => s.table('customers').find({ email: 'ADA@acme.example' }))
    assert.equal(row?.id, 'acme-1')
  })

  test('the data plane cannot write the control plane\'s directory', async () => {
    const c = new pg.Client({ connectionString: `postgres://domicile_data@127.0.0.1:${cluster.port}/control` })
    await c.connect()
    try {
      await assert.rejects(c.query("UPDATE domicile_tenants SET key_state = 'enabled'"), /permission denied/)
      await assert.rejects(c.query("INSERT INTO domicile_control_audit (type, outcome) VALUES ('key.revoke', 'ok')"), /permission denied/)
      const r = await c.query('SELECT count(*)::int AS n FROM domicile_tenants')
      assert.equal(r.rows[0].n, 2, 'reading the directory is what the data plane needs')
    } finally {
      await c.end()
    }
  })

  test('migrate refuses a privileged data-plane login; a single privileged login works with a warning', async () => {
    await su.query('CREATE DATABASE single_role')
    const url = `postgres://postgres@127.0.0.1:${cluster.port}/single_role`
    const cfg = (region: Record<string, unknown>) => parseConfig({
      regions: { 'us-east-1': { driver: 'postgres', ...region } },
      controlPlane: { driver: 'postgres', url: `postgres://postgres@127.0.0.1:${cluster.port}/single_control` },
      schema: './domicile.schema.mjs',
      keys: { dir: join(dir, 'keys-single') },
    }, dir)
    await su.query('CREATE DATABASE single_control')
    // domicile_owner has CREATEROLE: as a data-plane login it could make itself anything.
    const bad = await createDomicile({ config: cfg({ url: `postgres://domicile_owner@127.0.0.1:${cluster.port}/single_role`, ownerUrl: url }) })
    try {
      const results = await bad.migrate()
      const region = results.find((r) => r.store === 'us-east-1')
      assert.equal(region?.ok, false)
      assert.equal(region?.code, 'ERR_CONFIG_INVALID')
    } finally {
      await bad.close()
    }
    const warnings: Error[] = []
    const onWarning = (w: Error) => warnings.push(w)
    process.on('warning', onWarning)
    const single = await createDomicile({ config: cfg({ url }) })
    try {
      assert.ok((await single.migrate()).every((r) => r.ok))
      await single.addTenant('solo', { region: 'us-east-1' })
      assert.deepEqual(await single.withTenant('solo', (sc) => sc.sql('SELECT id FROM customers')), [])
      await new Promise((r) => setImmediate(r))
      assert.deepEqual(warnings.map((w) => (w as Error & { code?: string }).code), ['DOMICILE_SINGLE_ROLE'])
      assert.match(warnings[0]!.message, /ownerUrl/)
    } finally {
      process.off('warning', onWarning)
      await single.close()
    }
  })
})
