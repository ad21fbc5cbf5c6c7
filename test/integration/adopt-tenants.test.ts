/**
 * `domicile adopt tenants` (issue #13, item 3), on real PostgreSQL: an application database created
 * by its own DDL, described by `adopt inspect` (run as a child process) and attached by `migrate`;
 * then every company becomes a tenant homed in its region with a kms key. Checks: the tenants found
 * are exactly the distinct tenant-column values (counted in SQL); each registered tenant reads only
 * its own rows; rerunning adds nothing; a company inserted directly is added by the next run;
 * --from-table reads that table only; tenants homed elsewhere and values that cannot be tenant ids
 * are reported and left alone; --custody none; a failure part way leaves each tenant fully
 * registered or absent and a rerun finishes; input errors exit 2 with their codes.
 */
import { strict as assert } from 'node:assert'
import { readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import pg from 'pg'
import { adoptGlobals } from '../../src/adopt/adopt-globals.js'
import { adoptTenants, type AdoptTenantsResult } from '../../src/adopt/adopt-tenants.js'
import { createDomicile, loadSchema, parseConfig, type Domicile } from '../../src/index.js'
import { isDomicileError } from '../../src/errors.js'
import { onboardTenant } from '../../src/onboarding/onboard-tenant.js'
import { ADOPT_FIXTURE_DDL, createAdoptFixture } from '../support/adopt-fixture.js'
import { makeTempDir, runCli, type CliResult, type TempDir } from '../support/cli.js'
import { postgresUnavailable, startPgCluster, twoRoleDatabases, type PgCluster } from '../support/pg-cluster.js'

const missing = postgresUnavailable()
const TENANTS = 8
const REGION = 'us-east-1'
const OTHER = 'eu-west-1'
const TENANT_TABLES = ['ads', 'campaigns', 'companies', 'contacts', 'invoices']

describe('adopt tenants registers the tenants of an adopted database (real PostgreSQL)', { skip: missing }, () => {
  let cluster: PgCluster
  let dir: TempDir
  /** Superuser sessions on the application database and on the control plane. */
  let shop: pg.Client
  let control: pg.Client
  let d: Domicile

  const cli = (args: readonly string[]): Promise<CliResult> => runCli(['adopt', 'tenants', ...args], { cwd: dir.path })
  async function cliJson(args: readonly string[]): Promise<AdoptTenantsResult> {
    const r = await cli([...args, '--json'])
    assert.equal(r.code, 0, r.stderr)
    return JSON.parse(r.stdout) as AdoptTenantsResult
  }
  /** Distinct tenant-column values over the given tables (the tenants table's is its key), non-negative, as text, in numeric order. */
  async function distinctTenants(tables: readonly string[] = TENANT_TABLES): Promise<string[]> {
    const union = tables.map((t) => `SELECT ${t === 'companies' ? 'id' : 'company_id'} AS c FROM ${t}`).join(' UNION ')
    return (await shop.query<{ c: string }>(`SELECT DISTINCT c, c::text AS t FROM (${union}) u WHERE c IS NOT NULL AND c >= 0 ORDER BY c`)).rows.map((r) => (r as unknown as { t: string }).t)
  }
  async function directory(): Promise<Array<{ id: string; region: string; cell: string; custody: string | null; key_id: string | null; key_state: string }>> {
    return (await control.query('SELECT id, region, cell, custody, key_id, key_state FROM domicile_tenants ORDER BY length(id), id')).rows
  }
  const keyFiles = (): string[] => readdirSync(join(dir.path, 'keys')).filter((f) => f.endsWith('.json')).sort()
  const ids = (from: number, to: number): string[] => Array.from({ length: to - from + 1 }, (_x, i) => String(from + i))

  before(async () => {
    cluster = await startPgCluster('adopt-tenants')
    const logins = await twoRoleDatabases(cluster, ['shop', 'control', 'eu'])
    await createAdoptFixture(logins.ownerUrl('shop'), { tenants: TENANTS, rows: 400 })
    // The second region gets the application's tables from the application's own DDL, no rows.
    const eu = new pg.Client({ connectionString: logins.ownerUrl('eu') })
    await eu.connect()
    await eu.query(ADOPT_FIXTURE_DDL)
    await eu.end()
    dir = await makeTempDir('adopt-tenants-')
    const raw = {
      regions: {
        [REGION]: { driver: 'postgres', url: logins.dataUrl('shop'), ownerUrl: logins.ownerUrl('shop'), jurisdiction: 'US' },
        [OTHER]: { driver: 'postgres', url: logins.dataUrl('eu'), ownerUrl: logins.ownerUrl('eu'), jurisdiction: 'EU' },
      },
      controlPlane: { driver: 'postgres', url: logins.dataUrl('control'), ownerUrl: logins.ownerUrl('control') },
      keys: { dir: './keys' },
      schema: './domicile.schema.mjs',
    }
    writeFileSync(join(dir.path, 'domicile.config.json'), JSON.stringify(raw))
    const schemaFile = join(dir.path, 'domicile.schema.mjs')
    const inspect = await runCli(['adopt', 'inspect', '--region', REGION, '--tenant-column', 'company_id', '--out', schemaFile,
      '--sensitive', 'contacts.email,contacts.full_name'], { cwd: dir.path })
    assert.equal(inspect.code, 0, inspect.stderr)
    const migrate = await runCli(['migrate'], { cwd: dir.path })
    assert.equal(migrate.code, 0, migrate.stderr)
    d = await createDomicile({ config: parseConfig(raw, dir.path), schema: await loadSchema(schemaFile) })
    shop = new pg.Client({ connectionString: cluster.url.replace(/\/postgres$/, '/shop') })
    control = new pg.Client({ connectionString: cluster.url.replace(/\/postgres$/, '/control') })
    await shop.connect()
    await control.connect()
  })

  after(async () => {
    await d?.close()
    await shop?.end()
    await control?.end()
    cluster?.destroy()
    await dir?.cleanup()
  })

  test('input errors exit 2 with their codes and register nothing', async () => {
    const cases: Array<[string, string[], string, RegExp?]> = [
      ['an unknown region', ['--region', 'nowhere-1'], 'ERR_REGION_UNKNOWN'],
      ['an unknown cell', ['--region', REGION, '--cell', 'other'], 'ERR_CELL_UNKNOWN'],
      ['--from-table not in the schema', ['--region', REGION, '--from-table', 'coupons'], 'ERR_TABLE_UNKNOWN'],
      ['--from-table a global table', ['--region', REGION, '--from-table', 'plans'], 'ERR_INPUT_INVALID', /not an adopted tenant table/],
      ['--custody byok', ['--region', REGION, '--custody', 'byok'], 'ERR_INPUT_INVALID', /tenant bind-key/],
      ['--custody hyok', ['--region', REGION, '--custody', 'hyok'], 'ERR_INPUT_INVALID', /tenant bind-key/],
      ['--custody of no kind', ['--region', REGION, '--custody', 'plenty'], 'ERR_INPUT_INVALID'],
      ['--concurrency out of range', ['--region', REGION, '--concurrency', '0'], 'ERR_INPUT_INVALID'],
      ['no --region', [], 'ERR_INPUT_INVALID', /--region is required/],
    ]
    for (const [what, args, code, message] of cases) {
      const r = await cli([...args, '--json'])
      assert.equal(r.code, 2, `${what}: ${r.stderr}`)
      const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { error: { code: string; message: string } }
      assert.equal(out.error.code, code, what)
      if (message) assert.match(out.error.message, message, what)
    }
    // The library refuses the same inputs with the same codes.
    await assert.rejects(adoptTenants(d, { region: REGION, fromTable: 'plans' }), (e: unknown) => isDomicileError(e, 'ERR_INPUT_INVALID'))
    await assert.rejects(adoptTenants(d, { region: REGION, custody: 'byok' as 'kms' }), (e: unknown) => isDomicileError(e, 'ERR_INPUT_INVALID'))
    assert.deepEqual(await directory(), [], 'nothing was registered')
  })

  test('the first run registers every company as a tenant homed in the region, with a kms key', async () => {
    const expected = await distinctTenants()
    assert.deepEqual(expected, ids(1, TENANTS), 'the fixture has companies 1..8, each with rows')
    const r = await cliJson(['--region', REGION])
    assert.deepEqual(r, {
      region: REGION, cell: 'main', store: REGION, tables: [...d.schema.tables.values()].filter((t) => t.adopted && t.scope === 'tenant').map((t) => t.name),
      custody: 'kms', found: expected.length, added: expected, existing: [], elsewhere: [], invalid: { count: 0, examples: [], tables: [] },
    })
    assert.deepEqual([...r.tables].sort(), TENANT_TABLES)
    const rows = await directory()
    assert.deepEqual(rows.map((t) => [t.id, t.region, t.cell, t.custody, t.key_state]), expected.map((id) => [id, REGION, 'main', 'kms', 'enabled']))
    assert.equal(new Set(rows.map((t) => t.key_id)).size, expected.length, 'one key per tenant')
    assert.deepEqual(keyFiles(), rows.map((t) => `${t.key_id}.json`).sort(), 'each key is in the keystore, and no other')
    const audit = await control.query<{ n: number }>(`SELECT count(*)::int AS n FROM domicile_control_audit WHERE type = 'tenant.add' AND outcome = 'ok'`)
    assert.equal(audit.rows[0]!.n, expected.length, 'one tenant.add record per tenant')
    for (const id of expected) assert.equal((await d.keys.status(id)).state, 'enabled', `tenant ${id}'s key`)
  })

  test('each registered tenant reads its own rows and only those', async () => {
    for (const id of ids(1, TENANTS)) {
      const page = await d.tenant(id).table('contacts').list({ limit: 1000 })
      const own = (await shop.query<{ k: string }>('SELECT id::text AS k FROM contacts WHERE company_id = $1 ORDER BY id', [id])).rows.map((x) => x.k)
      assert.ok(own.length > 0, `company ${id} has contacts`)
      assert.deepEqual(page.rows.map((x) => String(x.id)), own, `company ${id} lists exactly its contacts`)
      const campaigns = await d.tenant(id).table('campaigns').list({ limit: 1000 })
      const ownCampaigns = (await shop.query<{ n: number }>('SELECT count(*)::int AS n FROM campaigns WHERE company_id = $1', [id])).rows[0]!.n
      assert.equal(campaigns.rows.length, ownCampaigns, `company ${id}'s campaigns`)
    }
    const c3 = await d.tenant('3').table('contacts').list({ limit: 1000 })
    assert.ok(c3.rows.every((x) => x.company_id === undefined || String(x.company_id) === '3'))
    // Its key is bound: a sensitive value still in plaintext opens through the tenant's scope.
    const first = c3.rows[0]!
    const stored = (await shop.query<{ email: string }>('SELECT email FROM contacts WHERE company_id = 3 AND id = $1', [first.id])).rows[0]!.email
    assert.equal(await d.withTenant('3', (s) => s.reveal(first.email, { purpose: 'adopt tenants test' })), stored)
  })

  test('a rerun adds nothing; the summary says so', async () => {
    const before = await directory()
    const r = await adoptTenants(d, { region: REGION })
    assert.deepEqual(r.added, [])
    assert.deepEqual(r.existing, ids(1, TENANTS))
    assert.equal(r.found, TENANTS)
    assert.deepEqual(await directory(), before, 'the directory is unchanged')
    const text = await cli(['--region', REGION])
    assert.equal(text.code, 0, text.stderr)
    assert.match(text.stdout, /^Region us-east-1: 8 tenants found in /)
    assert.match(text.stdout, /\nadded\s+0\s+-\n/)
    assert.match(text.stdout, /\nexisting\s+8\s+1, 2, 3, 4, 5, 6, 7, 8\n/)
    assert.match(text.stderr, /us-east-1: 8 tenants found in .*; 0 to register, 8 already registered here, 0 homed elsewhere\./, 'progress goes to stderr')
  })

  test('a company inserted directly in the database is added by the next run', async () => {
    await shop.query(`INSERT INTO companies (id, name) VALUES (9, 'Company 9')`)
    await shop.query(`INSERT INTO contacts (company_id, email, full_name) VALUES (9, 'first@company9.example.com', 'First Person')`)
    const r = await cliJson(['--region', REGION])
    assert.deepEqual(r.added, ['9'])
    assert.deepEqual(r.existing, ids(1, TENANTS))
    assert.equal(r.found, (await distinctTenants()).length)
    const t9 = (await directory()).find((t) => t.id === '9')!
    assert.deepEqual([t9.region, t9.cell, t9.custody, t9.key_state], [REGION, 'main', 'kms', 'enabled'])
    const page = await d.tenant('9').table('contacts').list()
    assert.equal(page.rows.length, 1)
    assert.equal(await d.withTenant('9', (s) => s.reveal(page.rows[0]!.email, { purpose: 'adopt tenants test' })), 'first@company9.example.com')
  })

  test('--from-table reads that table only; tenants homed elsewhere and values that are not tenant ids are reported, never changed', async () => {
    // Company 10 is already a tenant of the other region; company 11 has no rows yet; company -5 cannot be a tenant id.
    await onboardTenant(d, { id: '10', region: OTHER, custody: 'kms' })
    await shop.query(`INSERT INTO companies (id, name) VALUES (10, 'Company 10'), (11, 'Company 11'), (-5, 'Company minus five')`)
    await shop.query(`INSERT INTO campaigns (company_id, id, name, cost_model) VALUES (-5, 100000, 'Negative', 'cpc')`)
    const tenMoved = (await directory()).find((t) => t.id === '10')

    // contacts: only companies with contacts (1..9), so 11 is not found.
    const fromContacts = await cliJson(['--region', REGION, '--from-table', 'contacts'])
    const withContacts = await distinctTenants(['contacts'])
    assert.deepEqual(withContacts, ids(1, 9))
    assert.deepEqual({ ...fromContacts, existing: undefined }, {
      region: REGION, cell: 'main', store: REGION, tables: ['contacts'], custody: 'kms', found: withContacts.length,
      added: [], existing: undefined, elsewhere: [], invalid: { count: 0, examples: [], tables: [] },
    })
    assert.deepEqual(fromContacts.existing, withContacts)
    assert.equal((await directory()).some((t) => t.id === '11'), false, 'company 11 was not in the table read')

    // companies: 11 is added, 10 is elsewhere, -5 is invalid.
    const fromCompanies = await cliJson(['--region', REGION, '--from-table', 'companies'])
    assert.deepEqual(fromCompanies.added, ['11'])
    assert.deepEqual(fromCompanies.existing, ids(1, 9))
    assert.deepEqual(fromCompanies.elsewhere, [{ id: '10', region: OTHER, cell: 'main' }])
    assert.deepEqual(fromCompanies.invalid, { count: 1, examples: ['-5'], tables: ['companies'] })
    const companies = (await shop.query<{ n: number }>('SELECT count(*)::int AS n FROM companies WHERE id >= 0')).rows[0]!.n
    assert.equal(fromCompanies.found, companies)
    assert.deepEqual((await directory()).find((t) => t.id === '10'), tenMoved, 'the tenant homed elsewhere is unchanged')
    assert.equal((await directory()).some((t) => t.id === '-5'), false)

    // Every table: -5 is in two of them; the text output names them and its value.
    const all = await adoptTenants(d, { region: REGION })
    assert.deepEqual(all.invalid, { count: 1, examples: ['-5'], tables: all.tables.filter((t) => t === 'companies' || t === 'campaigns') })
    assert.deepEqual(all.added, [])
    const text = await cli(['--region', REGION])
    assert.equal(text.code, 0, text.stderr)
    assert.match(text.stdout, /\nelsewhere\s+1\s+10 \(eu-west-1\/main\)\n/)
    assert.match(text.stdout, /\ninvalid\s+1\s+-5 in (companies, campaigns|campaigns, companies)\n/)
  })

  test('--custody none registers without a key', async () => {
    await shop.query(`INSERT INTO companies (id, name) VALUES (12, 'Company 12')`)
    const files = keyFiles()
    const r = await cliJson(['--region', REGION, '--custody', 'none'])
    assert.deepEqual(r.added, ['12'])
    assert.equal(r.custody, 'none')
    const t12 = (await directory()).find((t) => t.id === '12')!
    assert.deepEqual([t12.region, t12.custody, t12.key_id, t12.key_state], [REGION, null, null, 'none'])
    assert.deepEqual(keyFiles(), files, 'no key was made')
  })

  test('a failure part way leaves each tenant registered fully or not at all; the rerun finishes', async () => {
    await shop.query(`INSERT INTO companies (id, name) VALUES (13, 'Company 13'), (14, 'Company 14'), (15, 'Company 15')`)
    // The control plane refuses tenant 14's directory row (after its key was made).
    await control.query(`CREATE FUNCTION refuse_14() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.id = '14' THEN RAISE EXCEPTION 'refused by test'; END IF; RETURN NEW; END $$`)
    await control.query(`CREATE TRIGGER refuse_14 BEFORE INSERT ON domicile_tenants FOR EACH ROW EXECUTE FUNCTION refuse_14()`)
    const files = keyFiles()
    const failed = await cli(['--region', REGION, '--concurrency', '1'])
    assert.equal(failed.code, 1, failed.stdout + failed.stderr)
    assert.match(failed.stderr, /Registered before this failure: 1 of 3 new tenants; the rest were not registered by this run/)
    const dir1 = await directory()
    assert.deepEqual(dir1.filter((t) => ['13', '14', '15'].includes(t.id)).map((t) => [t.id, t.custody, t.key_state]), [['13', 'kms', 'enabled']])
    const t13 = dir1.find((t) => t.id === '13')!
    assert.deepEqual(keyFiles(), [...files, `${t13.key_id}.json`].sort(), 'tenant 14\'s key was destroyed again; no key for 15 was made')

    await control.query('DROP TRIGGER refuse_14 ON domicile_tenants')
    const rerun = await cliJson(['--region', REGION])
    assert.deepEqual(rerun.added, ['14', '15'])
    const final = await directory()
    const here = final.filter((t) => t.region === REGION).map((t) => t.id)
    assert.deepEqual(here, [...ids(1, 9), '11', '12', '13', '14', '15'])
    assert.deepEqual(keyFiles(), final.filter((t) => t.key_id !== null).map((t) => `${t.key_id}.json`).sort(), 'one key per tenant with a key, and no other')
    const again = await adoptTenants(d, { region: REGION })
    assert.deepEqual(again.added, [])
    assert.equal(again.found, (await shop.query<{ n: number }>('SELECT count(*)::int AS n FROM companies WHERE id >= 0')).rows[0]!.n)
  })

  test('adopt globals: the adopted global tables\' rows go to the control plane and every region; a rerun writes only what changed', async () => {
    const eu = new pg.Client({ connectionString: cluster.url.replace(/\/postgres$/, '/eu') })
    await eu.connect()
    try {
      assert.equal((await eu.query('SELECT count(*)::int AS n FROM plans')).rows[0].n, 0, 'the new region has the table, no rows')
      const first = await runCli(['adopt', 'globals', '--region', REGION, '--json'], { cwd: dir.path })
      assert.equal(first.code, 1, 'exit 1: a table was refused')
      const r = JSON.parse(first.stdout) as { tables: Array<{ table: string; rows: number; written: number }>; refused: Array<{ table: string; reason: string }>; replicated: Array<{ region: string; ok: boolean }> }
      assert.deepEqual(r.tables.map((t) => t.table), ['plans'])
      // The newsletter's sign-ups are e-mail addresses: never copied to other regions.
      assert.deepEqual(r.refused.map((x) => x.table), ['newsletter_signups'])
      assert.match(r.refused[0]!.reason, /column email/)
      assert.doesNotMatch(first.stdout, /@mail\.example\.org/, 'no value in the output')
      assert.equal((await eu.query('SELECT count(*)::int AS n FROM newsletter_signups')).rows[0].n, 0)
      const plans = r.tables.find((t) => t.table === 'plans')!
      assert.deepEqual([plans.rows, plans.written], [3, 3])
      assert.ok(r.replicated.every((x) => x.ok))
      const rows = (c: pg.Client) => c.query(`SELECT id, name, price_cents, features FROM plans ORDER BY id`).then((x) => x.rows)
      assert.deepEqual(await rows(eu), await rows(shop), 'eu-west-1 holds the same plans as the application\'s database')
      assert.deepEqual(await rows(control), await rows(shop), 'and so does the control plane (the authoritative copy)')
      // A rerun writes nothing; a plan changed in the application's database is written again.
      await shop.query(`UPDATE plans SET price_cents = 5900 WHERE id = 'pro'`)
      const again = await adoptGlobals(d, { region: REGION })
      assert.deepEqual(again.tables.find((t) => t.table === 'plans')!.written, 1)
      assert.equal((await eu.query(`SELECT price_cents FROM plans WHERE id = 'pro'`)).rows[0].price_cents, 5900)
      const third = await adoptGlobals(d, { region: REGION })
      assert.ok(third.tables.every((t) => t.written === 0), JSON.stringify(third.tables))
      // Input errors exit 2.
      const bad = await runCli(['adopt', 'globals', '--region', 'mars-1'], { cwd: dir.path })
      assert.equal(bad.code, 2, bad.stderr)
      assert.match(bad.stderr, /ERR_REGION_UNKNOWN/)
    } finally {
      await eu.end()
    }
  })
})
