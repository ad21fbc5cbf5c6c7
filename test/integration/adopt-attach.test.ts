/**
 * `domicile migrate` attaching to an application's existing database (issue #13, item 2), on real
 * PostgreSQL: the fixture database is created by the application's own DDL and owned by the owner
 * login; the schema is the one `domicile adopt inspect` writes (run as a child process). Checks:
 * a schema that does not describe the tables as they are is refused before anything is written;
 * the attach rewrites nothing (same relfilenodes, constraints, rows); sensitive columns still in
 * plaintext are reported pending and read as sealed values; the data layer works on bigint tenant
 * columns, composite keys, a table keyed by the tenant column, database defaults; isolation holds
 * against hostile SQL in a scope; and a tenant id that cannot be a value of the column is refused.
 */
import { strict as assert } from 'node:assert'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { after, before, describe, test } from 'node:test'
import pg from 'pg'
import { createDomicile, loadSchema, parseConfig, type Domicile } from '../../src/index.js'
import { internalsOf } from '../../src/domicile-internals.js'
import { isDomicileError } from '../../src/errors.js'
import { isSealedValue } from '../../src/fields/sealed-value.js'
import { defineSchema, type TableDef } from '../../src/schema/define-schema.js'
import { onboardTenant } from '../../src/onboarding/onboard-tenant.js'
import { createAdoptFixture } from '../support/adopt-fixture.js'
import { makeTempDir, runCli, type TempDir } from '../support/cli.js'
import { postgresUnavailable, startPgCluster, twoRoleDatabases, type PgCluster } from '../support/pg-cluster.js'

const missing = postgresUnavailable()
const TENANTS = 8
const REGION = 'us-east-1'

describe('migrate attaches to an existing application database (real PostgreSQL)', { skip: missing }, () => {
  let cluster: PgCluster
  let dir: TempDir
  let su: pg.Client
  let d: Domicile
  let schemaFile: string
  let raw: Record<string, unknown>
  let relfiles: Record<string, string>
  let constraints: string

  async function open(schema = loadSchema(schemaFile)): Promise<Domicile> {
    return createDomicile({ config: parseConfig(raw, dir.path), schema: await schema })
  }

  before(async () => {
    cluster = await startPgCluster('adopt-attach')
    const logins = await twoRoleDatabases(cluster, ['shop', 'control'])
    await createAdoptFixture(logins.ownerUrl('shop'), { tenants: TENANTS, rows: 400 })
    dir = await makeTempDir('adopt-attach-')
    raw = {
      regions: { [REGION]: { driver: 'postgres', url: logins.dataUrl('shop'), ownerUrl: logins.ownerUrl('shop'), jurisdiction: 'US' } },
      controlPlane: { driver: 'postgres', url: logins.dataUrl('control'), ownerUrl: logins.ownerUrl('control') },
      keys: { dir: './keys' },
      schema: './domicile.schema.mjs',
    }
    writeFileSync(join(dir.path, 'domicile.config.json'), JSON.stringify(raw))
    schemaFile = join(dir.path, 'domicile.schema.mjs')
    const r = await runCli(['adopt', 'inspect', '--region', REGION, '--tenant-column', 'company_id', '--out', schemaFile,
      '--sensitive', 'contacts.email,contacts.full_name,invoices.payer_iban'], { cwd: dir.path })
    assert.equal(r.code, 0, r.stderr)
    su = new pg.Client({ connectionString: cluster.url.replace(/\/postgres$/, '/shop') })
    await su.connect()
    relfiles = await relfilenodes()
    constraints = await constraintCount()
  })

  after(async () => {
    await d?.close()
    await su?.end()
    cluster?.destroy()
    dir?.cleanup()
  })

  async function relfilenodes(): Promise<Record<string, string>> {
    const r = await su.query(`SELECT relname, relfilenode::text AS f FROM pg_class WHERE relname IN ('plans','companies','campaigns','ads','contacts','invoices','newsletter_signups') ORDER BY relname`)
    return Object.fromEntries(r.rows.map((x) => [x.relname, x.f]))
  }
  /** The application tables' constraints (definitions) and indexes: the attach adds and removes none. */
  const constraintCount = async () => JSON.stringify((await su.query(`SELECT conrelid::regclass::text AS t, conname, pg_get_constraintdef(oid) AS def FROM pg_constraint
      WHERE conrelid = ANY(ARRAY['plans','companies','campaigns','ads','contacts','invoices','newsletter_signups']::regclass[])
      UNION ALL SELECT tablename, indexname, indexdef FROM pg_indexes WHERE tablename IN ('plans','companies','campaigns','ads','contacts','invoices','newsletter_signups')
      ORDER BY 1, 2`)).rows)

  test('Precondition: each adopted table exists in the store as the schema describes it.', async () => {
    assert.ok((await loadSchema(schemaFile)).table('contacts').adopted)
    // The module as written, with one wrong declaration at a time.
    const mod = (await import(pathToFileURL(schemaFile).href + `?v=${Date.now()}`)).default as Record<string, TableDef>
    const wrong: Array<[string, Record<string, TableDef>, string]> = [
      ['a column type', { ...mod, contacts: { ...mod.contacts!, columns: { ...mod.contacts!.columns, phone: { type: 'integer', nullable: true } } } }, 'tables.contacts.columns.phone.type'],
      ['the tenant column type', { ...mod, ads: { ...mod.ads!, tenantColumn: { name: 'company_id', type: 'text' } } }, 'tables.ads.tenantColumn.type'],
      ['a missing column', { ...mod, ads: { ...mod.ads!, columns: { ...mod.ads!.columns, colour: { type: 'text', nullable: true } } } }, 'tables.ads.columns.colour'],
      ['the primary key', { ...mod, invoices: { ...mod.invoices!, primaryKey: ['company_id', 'id'] } }, 'tables.invoices.primaryKey'],
      ['a missing table', { ...mod, coupons: { scope: 'tenant', adopted: true, tenantColumn: { name: 'company_id', type: 'bigint' }, primaryKey: ['company_id', 'id'], columns: { id: { type: 'bigint' } } } }, 'tables.coupons'],
    ]
    for (const [what, defsWrong, path] of wrong) {
      const bad = await open(Promise.resolve(defineSchema(defsWrong)))
      try {
        await assert.rejects(bad.migrate(), (e: unknown) => isDomicileError(e, 'ERR_SCHEMA_INVALID') && e.path === path && /Nothing was changed/.test(e.message), what)
      } finally {
        await bad.close()
      }
    }
    // Nothing was written anywhere: no stamp in the region or the control plane.
    assert.equal((await su.query(`SELECT to_regclass('domicile_stamp')::text AS t`)).rows[0].t, null)
    assert.deepEqual(await relfilenodes(), relfiles)
  })

  test('migrate attaches without rewriting anything and reports the columns pending encryption', async () => {
    d = await open()
    const results = await d.migrate()
    assert.ok(results.every((r) => r.ok), JSON.stringify(results))
    const region = results.find((r) => r.store === REGION)!
    assert.deepEqual(region.pending?.map((p) => `${p.table}.${p.column}`).sort(), ['contacts.email', 'contacts.full_name', 'invoices.payer_iban'])
    assert.equal(region.pending?.[0]?.command.startsWith('domicile migrate encrypt '), true)
    // No table was recreated or rewritten; constraints and rows are as they were.
    assert.deepEqual(await relfilenodes(), relfiles)
    assert.equal(await constraintCount(), constraints)
    assert.equal((await su.query('SELECT count(*)::int AS n FROM contacts')).rows[0].n, 160)
    // Row-level security on the tenant column; no FORCE (the application's own login still sees everything).
    const rls = await su.query(`SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname IN ('campaigns','ads','contacts','invoices','companies') ORDER BY relname`)
    assert.ok(rls.rows.every((x) => x.relrowsecurity === true && x.relforcerowsecurity === false))
    // Idempotent: a second migrate changes nothing either.
    const again = await d.migrate()
    assert.ok(again.every((r) => r.ok))
    assert.deepEqual(await relfilenodes(), relfiles)
    // The CLI prints them with the command.
    const cli = await runCli(['migrate'], { cwd: dir.path })
    assert.equal(cli.code, 0, cli.stderr)
    assert.match(cli.stdout, /Pending encryption/)
    assert.match(cli.stdout, /domicile migrate encrypt contacts\.email/)
  })

  test('the data layer on adopted tables: tenant ids are the column\'s values, keys exclude the tenant column, defaults come from the database', async () => {
    for (let c = 1; c <= TENANTS; c++) await onboardTenant(d, { id: String(c), region: REGION, custody: 'kms' })
    // Contact g belongs to company 1 + g % 8: contact 6 is company 7's.
    const c6 = await d.tenant('7').table('contacts').get('6')
    assert.ok(c6, 'company 7 reads its contact by its key without the tenant column')
    assert.equal(c6.id, '6')
    assert.ok(isSealedValue(c6.email), 'plaintext still in the column reads as a sealed value')
    assert.equal(await d.withTenant('7', (s) => s.reveal(c6.email, { purpose: 'adoption test' })), 'contact6@customer6.example.com')
    assert.equal(await d.tenant('7').table('contacts').get('2'), undefined, 'company 3\'s contact is not visible to company 7')
    assert.equal((await d.tenant('7').table('contacts').get('006'))?.id, '6', 'a key with leading zeros is the same key')
    // The tenants table is keyed by the tenant column alone: its row key is the tenant id.
    const company = await d.tenant('7').table('companies').get('7')
    assert.equal(company?.name, 'Company 7')
    assert.equal(await d.tenant('7').table('companies').get('3'), undefined)
    // An insert that omits the bigserial key and created_at: the database fills both; the sealed e-mail is bound to the drawn key.
    const added = await d.tenant('7').table('contacts').insert({ email: 'new@customer.example.com', full_name: 'New Person', attributes: { source: 'api' } })
    assert.match(String(added.id), /^\d+$/)
    assert.ok(Number(added.id) > 160)
    assert.ok(added.created_at instanceof Date || typeof added.created_at === 'string')
    const back = await d.tenant('7').table('contacts').get(String(added.id))
    assert.equal(await d.withTenant('7', (s) => s.reveal(back!.email, { purpose: 'adoption test' })), 'new@customer.example.com')
    const stored = await su.query(`SELECT company_id::text AS c, email, email__shadow FROM contacts WHERE id = $1`, [added.id])
    assert.deepEqual([stored.rows[0].c, stored.rows[0].email], ['7', null], 'the new row is company 7\'s, with no plaintext')
    assert.equal(stored.rows[0].email__shadow[0], 1, 'the new value is sealed')
    // A table with a uuid key not containing the tenant column.
    const inv = await d.tenant('7').table('invoices').insert({ amount_cents: 500, paid: false, payer_iban: 'DE89370400440532013000' })
    assert.match(String(inv.id), /^[0-9a-f-]{36}$/)
    assert.equal((await d.tenant('7').table('invoices').get(String(inv.id).toUpperCase()))?.amount_cents, 500)
    // The CLI: the row key without the tenant column, and the values the database filled in printed.
    const ins = await runCli(['rows', 'insert', '7', 'contacts', '--data', JSON.stringify({ email: 'cli@customer.example.com', full_name: 'Cli Person' }), '--json'], { cwd: dir.path })
    assert.equal(ins.code, 0, ins.stderr)
    const printed = JSON.parse(ins.stdout) as Record<string, unknown>
    assert.match(String(printed.id), /^\d+$/)
    assert.ok(typeof printed.created_at === 'string' && !Number.isNaN(Date.parse(printed.created_at)), ins.stdout)
    const got = await runCli(['rows', 'get', '7', 'contacts', String(printed.id), '--json'], { cwd: dir.path })
    assert.equal(got.code, 0, got.stderr)
    assert.equal((JSON.parse(got.stdout) as Record<string, unknown>).id, printed.id)
    const co = await runCli(['rows', 'get', '7', 'companies', '7', '--json'], { cwd: dir.path })
    assert.equal((JSON.parse(co.stdout) as Record<string, unknown>).name, 'Company 7', co.stderr)
    // find on a plain column; list with a cursor.
    const pageA = await d.tenant('7').table('campaigns').list({ limit: 3 })
    assert.equal(pageA.rows.length, 3)
    const pageB = await d.tenant('7').table('campaigns').list({ limit: 3, cursor: pageA.nextCursor })
    assert.ok(Number(pageB.rows[0]!.id) > Number(pageA.rows[2]!.id))
  })

  test('isolation on adopted tables holds against SQL inside a scope', async () => {
    const n = await d.withTenant('7', async (s) => {
      const r = await s.sql<{ n: number; others: number }>(`SELECT count(*)::int AS n, count(*) FILTER (WHERE company_id <> 7)::int AS others FROM contacts`)
      return r[0]!
    })
    assert.equal(n.others, 0)
    assert.equal(n.n, 22, 'company 7 has 20 fixture contacts and the two added')
    // Setting the tenant setting by hand does not open another tenant's rows.
    await assert.rejects(d.withTenant('7', async (s) => {
      await s.sql(`SELECT set_config('domicile.tenant_id', '3', true)`)
      return s.sql(`SELECT count(*) FROM contacts`)
    }), (e: unknown) => isDomicileError(e))
    // Writing a row for another company is refused by the policy's WITH CHECK.
    await assert.rejects(d.withTenant('7', (s) => s.sql(`INSERT INTO campaigns (company_id, name, cost_model) VALUES (3, 'x', 'cpc')`)), (e: unknown) => isDomicileError(e))
    assert.equal((await su.query(`SELECT count(*)::int AS n FROM campaigns WHERE name = 'x'`)).rows[0].n, 0)
  })

  test('Precondition: the tenant id is a value the tenant column can hold, in its one canonical form.', async () => {
    await onboardTenant(d, { id: 'acme', region: REGION, custody: 'kms' })
    await assert.rejects(d.tenant('acme').table('contacts').get('1'), (e: unknown) => isDomicileError(e, 'ERR_TENANT_INVALID') && /company_id is bigint/.test(e.message))
    // Through SQL the policy matches no row for it (never an error, never another tenant's rows).
    const r = await d.withTenant('acme', (s) => s.sql<{ n: number }>('SELECT count(*)::int AS n FROM contacts'))
    assert.equal(r[0]!.n, 0)
    const internals = internalsOf(d)
    assert.ok(internals.schema.table('contacts').adopted)
  })
})
