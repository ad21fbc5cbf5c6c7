/**
 * `domicile adopt inspect` end to end, as a real child process, on an application database that
 * the application's own DDL created (test/support/adopt-fixture.ts) on real PostgreSQL, and on an
 * embedded (PGlite) store: exact classifications and suggestions (their counts checked against
 * the database with plain SQL), the written module loading as a schema, --out refusing to
 * overwrite without --force, the owner login used when configured, the database left as it was,
 * and input errors exiting 2 with their codes. No schema file exists before it runs.
 */
import { strict as assert } from 'node:assert'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { after, before, describe, test } from 'node:test'
import { ADOPT_FIXTURE_DDL, adoptFixtureFillSql, createAdoptFixture, type AdoptFixture } from '../support/adopt-fixture.js'
import { makeTempDir, runCli, type TempDir } from '../support/cli.js'
import { postgresUnavailable, startPgCluster, type PgCluster } from '../support/pg-cluster.js'
import { loadSchema } from '../../src/index.js'
import { defineSchema, type TableDef } from '../../src/schema/define-schema.js'

const pgMissing = postgresUnavailable()

/** The embedded store's application database (PGlite's initdb takes seconds: built while the PostgreSQL suite runs). */
let embedded: Promise<TempDir> | undefined
function embeddedDatabase(): Promise<TempDir> {
  embedded ??= (async () => {
    const dir = await makeTempDir('adopt-pglite-')
    const { PGlite } = await import('@electric-sql/pglite')
    const db = new PGlite(join(dir.path, 'app-db'))
    await db.exec(ADOPT_FIXTURE_DDL)
    await db.exec(adoptFixtureFillSql({ tenants: 3, rows: 40 }))
    await db.close()
    return dir
  })()
  return embedded
}

interface InspectJson {
  region: string
  store: string
  dbSchema: string
  tenantColumn: string
  sampleRows: number
  tables: Array<{ name: string; classification: string; rows: number; rowsExact: boolean; tenantColumn: { name: string; type: string } | null; primaryKey: string[] | null; inModel: boolean; flagged: string[]; warnings: string[]; columns: Array<{ name: string; leftOut: string | null }> }>
  suggestions: Array<{ table: string; column: string; evidence: string[]; accepted: boolean }>
  flagged: Array<{ table: string; evidence: string[] }>
  written: string | null
  module: string
}

function config(dir: string, region: Record<string, unknown>): string {
  const file = join(dir, `config-${Math.random().toString(36).slice(2)}.json`)
  writeFileSync(file, JSON.stringify({
    regions: { 'eu-west-1': region, 'us-east-1': { driver: 'pglite', dataDir: './.domicile/us' } },
    controlPlane: { driver: 'pglite', dataDir: './.domicile/control-plane' },
    schema: './domicile.schema.mjs',
  }))
  return file
}

/** The expected evidence, from plain SQL counts (every row is sampled: --sample exceeds the rows). */
async function expectedSuggestions(q: (sql: string) => Promise<Record<string, number>>, accepted: ReadonlySet<string>): Promise<InspectJson['suggestions']> {
  const c = await q(`SELECT count(*)::int AS contacts, count(national_id)::int AS ids, count(phone)::int AS phones,
    count(*) FILTER (WHERE backup_contact LIKE '%@%')::int AS backup_emails FROM contacts`)
  const co = await q(`SELECT count(billing_email)::int AS n, count(*) FILTER (WHERE billing_email LIKE '%@%')::int AS emails FROM companies`)
  const i = await q('SELECT count(payer_iban)::int AS n FROM invoices')
  const s = (table: string, column: string, evidence: string[]) => ({ table, column, evidence, accepted: accepted.has(`${table}.${column}`) })
  return [
    s('companies', 'billing_email', ['name looks like an email column', `${co.emails} of ${co.n} sampled values look like emails`]),
    s('contacts', 'email', ['name looks like an email column', `${c.contacts} of ${c.contacts} sampled values look like emails`]),
    s('contacts', 'full_name', ["name looks like a person's name column"]),
    s('contacts', 'phone', ['name looks like a phone number column', `${c.phones} of ${c.phones} sampled values look like phone numbers`]),
    s('contacts', 'national_id', ['name looks like a national id column', `${c.ids} of ${c.ids} sampled values look like national ids (US SSN, UK NINO)`]),
    s('contacts', 'backup_contact', [`${c.backup_emails} of ${c.contacts} sampled values look like emails`]),
    s('invoices', 'payer_iban', ['name looks like a bank account column', `${i.n} of ${i.n} sampled values look like IBANs`]),
  ]
}

const CLASSIFICATION = [
  ['companies', 'tenants-table', 'id', ['id']],
  ['ads', 'tenant', 'company_id', ['company_id', 'id']],
  ['campaigns', 'tenant', 'company_id', ['company_id', 'id']],
  ['contacts', 'tenant', 'company_id', ['company_id', 'id']],
  ['invoices', 'tenant', 'company_id', ['id']],
  ['newsletter_signups', 'global', null, ['id']],
  ['plans', 'global', null, ['id']],
]
const classificationOf = (r: InspectJson) => r.tables.map((t) => [t.name, t.classification, t.tenantColumn?.name ?? null, t.primaryKey])
const FLAGGED = [{ table: 'newsletter_signups', evidence: ['email: name looks like an email column; 20 of 20 sampled values look like emails'] }]

describe('adopt inspect on real PostgreSQL', { skip: pgMissing }, () => {
  let cluster: PgCluster
  let dir: TempDir
  let url = ''
  let fixture: AdoptFixture
  let cfg = ''
  const query = async (sql: string): Promise<Record<string, number>> => {
    const { default: pg } = await import('pg')
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    try {
      return (await client.query(sql)).rows[0] as Record<string, number>
    } finally {
      await client.end()
    }
  }
  const catalogFingerprint = () => query(`SELECT count(*)::int AS relations, (SELECT count(*)::int FROM pg_roles) AS roles,
    (SELECT count(*)::int FROM pg_class WHERE relname LIKE 'domicile%') AS domicile, (SELECT count(*)::int FROM contacts) AS contacts FROM pg_class`)

  before(async () => {
    void embeddedDatabase().catch(() => undefined) // awaited (and its failure reported) by the embedded suite
    cluster = await startPgCluster('adopt')
    url = cluster.database('app')
    fixture = await createAdoptFixture(url)
    dir = await makeTempDir('adopt-')
    cfg = config(dir.path, { driver: 'postgres', url })
  })
  after(async () => {
    cluster?.destroy()
    await dir?.cleanup()
  })

  test('--out --json: exact classification and suggestions; the written module is the schema; the database is unchanged', async () => {
    const before = await catalogFingerprint()
    assert.equal(existsSync(join(dir.path, 'domicile.schema.mjs')), false, 'no schema file yet')
    const r = await runCli(['adopt', 'inspect', '--config', cfg, '--region', 'eu-west-1', '--tenant-column', 'company_id', '--out', 'domicile.schema.mjs',
      '--sample', '1000', '--sensitive', 'contacts.email,contacts.national_id', '--json'], { cwd: dir.path })
    assert.equal(r.code, 0, r.stderr)
    const out = JSON.parse(r.stdout) as InspectJson
    assert.equal(out.region, 'eu-west-1')
    assert.match(out.store, /^127\.0\.0\.1:\d+\/app$/, 'the store without credentials')
    assert.deepEqual(classificationOf(out), CLASSIFICATION)
    assert.deepEqual(out.tables.map((t) => [t.name, t.rows, t.rowsExact]), [
      ['companies', fixture.counts.companies, true], ['ads', fixture.counts.ads, true], ['campaigns', fixture.counts.campaigns, true],
      ['contacts', fixture.counts.contacts, true], ['invoices', fixture.counts.invoices, true], ['newsletter_signups', 20, true], ['plans', 3, true],
    ])
    assert.deepEqual(out.suggestions, await expectedSuggestions(query, new Set(['contacts.email', 'contacts.national_id'])))
    assert.deepEqual(out.flagged, FLAGGED)
    assert.deepEqual(out.tables.flatMap((t) => t.columns.filter((c) => c.leftOut !== null).map((c) => `${t.name}.${c.name}: ${c.leftOut}`)), ['campaigns.start_date: unsupported type date: kept out of the model'])
    const file = join(dir.path, 'domicile.schema.mjs')
    assert.equal(out.written, file)
    assert.equal(readFileSync(file, 'utf8'), out.module)

    // The module loads as a schema: imported directly, and the way the CLI loads the config's schema.
    const mod = (await import(pathToFileURL(file).href)) as { default: Record<string, TableDef> }
    const schema = defineSchema(mod.default)
    const viaConfig = await loadSchema(file)
    assert.deepEqual([...viaConfig.tables.keys()], [...schema.tables.keys()])
    assert.deepEqual([...schema.tables.values()].map((t) => [t.name, t.scope, t.adopted, t.tenantColumn?.name ?? null, t.primaryKeyColumns]), CLASSIFICATION.map(([n, c, tc, pk]) => [n, c === 'global' ? 'global' : 'tenant', true, tc, pk]))
    assert.deepEqual(schema.table('contacts').sensitiveColumns.map((c) => c.name), ['email', 'national_id'])
    assert.deepEqual(schema.table('contacts').tenantColumn, { name: 'company_id', type: 'bigint' })
    assert.equal(schema.table('contacts').primaryKey, 'id')
    assert.equal(schema.table('invoices').columns.get('id')!.hasDefault, true)
    assert.equal(schema.table('campaigns').columns.has('start_date'), false)
    assert.match(out.module, /\/\/ SUGGESTION sensitive: name looks like a phone number column; \d+ of \d+ sampled values look like phone numbers\n {6}phone: \{ type: 'text', nullable: true \},/)

    assert.deepEqual(await catalogFingerprint(), before, 'inspect created nothing and changed no rows')
  })

  test('Precondition: the proposed schema never overwrites a file unless asked to.', async () => {
    const file = join(dir.path, 'kept.mjs')
    writeFileSync(file, '// mine\n')
    const args = ['adopt', 'inspect', '--config', cfg, '--region', 'eu-west-1', '--tenant-column', 'company_id', '--out', 'kept.mjs', '--sample', '0']
    const refused = await runCli([...args, '--json'], { cwd: dir.path })
    assert.equal(refused.code, 2, refused.stderr)
    assert.equal((JSON.parse(refused.stdout) as { error: { code: string } }).error.code, 'ERR_INPUT_INVALID')
    assert.match(refused.stderr, /kept\.mjs already exists\. Pass --force/)
    assert.equal(readFileSync(file, 'utf8'), '// mine\n')
    const forced = await runCli([...args, '--force'], { cwd: dir.path })
    assert.equal(forced.code, 0, forced.stderr)
    assert.match(readFileSync(file, 'utf8'), /^\/\/ Domicile schema proposed by: domicile adopt inspect --region eu-west-1 --tenant-column company_id\n/)
    // Human output: the summary table and the sections.
    assert.match(forced.stdout, /^companies +8 +tenants table +id +billing_email$/m)
    assert.match(forced.stdout, /^contacts +160 +tenant +company_id, id +email, full_name, phone, national_id$/m, 'without a sample, names only')
    assert.match(forced.stdout, /^newsletter_signups +20 +global FLAGGED +id +-$/m)
    assert.match(forced.stdout, /^Wrote kept\.mjs \(7 tables\)/m)
  })

  test('the owner login is used when one is configured', async () => {
    const port = new URL(url).port
    const ownerCfg = config(dir.path, { driver: 'postgres', url: `postgres://no_such_login@127.0.0.1:${port}/app`, ownerUrl: url })
    const r = await runCli(['adopt', 'inspect', '--config', ownerCfg, '--region', 'eu-west-1', '--tenant-column', 'company_id', '--sample', '5', '--json'], { cwd: dir.path })
    assert.equal(r.code, 0, r.stderr)
    const out = JSON.parse(r.stdout) as InspectJson
    assert.deepEqual(classificationOf(out), CLASSIFICATION)
    assert.equal(out.written, null)
  })

  test('input errors exit 2 with a typed error', async () => {
    const base = ['adopt', 'inspect', '--config', cfg, '--json', '--sample', '0']
    const cases: Array<[string[], string, RegExp]> = [
      [['--region', 'mars-1', '--tenant-column', 'company_id'], 'ERR_REGION_UNKNOWN', /Region "mars-1" is not configured/],
      [['--region', 'eu-west-1', '--tenant-column', 'org_id'], 'ERR_INPUT_INVALID', /has a column named "org_id".*company_id \(4 tables\)/],
      [['--region', 'eu-west-1', '--tenant-column', 'company_id', '--sensitive', 'contacts.nope'], 'ERR_COLUMN_UNKNOWN', /table contacts has no column "nope"/],
      [['--region', 'eu-west-1', '--tenant-column', 'company_id', '--sensitive', 'nope.email'], 'ERR_TABLE_UNKNOWN', /no table "nope"/],
      [['--region', 'eu-west-1', '--tenant-column', 'company_id', '--sensitive', 'newsletter_signups.email'], 'ERR_INPUT_INVALID', /global table/],
      [['--region', 'eu-west-1', '--tenant-column', 'company_id', '--db-schema', 'app'], 'ERR_INPUT_INVALID', /no schema named "app"/],
      [['--region', 'eu-west-1'], 'ERR_INPUT_INVALID', /--tenant-column is required/],
    ]
    const results = await Promise.all(cases.map(([args]) => runCli([...base, ...args], { cwd: dir.path })))
    cases.forEach(([args, code, message], i) => {
      const r = results[i]!
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
      assert.equal((JSON.parse(r.stdout.trim().split('\n').pop()!) as { error: { code: string } }).error.code, code, args.join(' '))
      assert.match(r.stderr, message, args.join(' '))
    })
  })
})

describe('adopt inspect on an embedded (PGlite) store', () => {
  let dir: TempDir
  before(async () => {
    dir = await embeddedDatabase()
  })
  after(async () => {
    await dir?.cleanup()
  })

  test('the same classification and suggestions as on PostgreSQL', async () => {
    const cfg = config(dir.path, { driver: 'pglite', dataDir: './app-db' })
    const r = await runCli(['adopt', 'inspect', '--config', cfg, '--region', 'eu-west-1', '--tenant-column', 'company_id', '--sample', '1000', '--json'], { cwd: dir.path })
    assert.equal(r.code, 0, r.stderr)
    const out = JSON.parse(r.stdout) as InspectJson
    assert.deepEqual(classificationOf(out), CLASSIFICATION)
    assert.deepEqual(out.suggestions.map((s) => `${s.table}.${s.column}`), ['companies.billing_email', 'contacts.email', 'contacts.full_name', 'contacts.phone', 'contacts.national_id', 'contacts.backup_contact', 'invoices.payer_iban'])
    assert.deepEqual(out.flagged, FLAGGED)
    assert.deepEqual(out.tables.map((t) => t.rows), [3, 12, 4, 16, 8, 20, 3])
  })

  test('a missing embedded store is an input error, not a new empty database', async () => {
    const cfg = config(dir.path, { driver: 'pglite', dataDir: './not-there' })
    const r = await runCli(['adopt', 'inspect', '--config', cfg, '--region', 'eu-west-1', '--tenant-column', 'company_id'], { cwd: dir.path })
    assert.equal(r.code, 2, r.stderr)
    assert.match(r.stderr, /ERR_INPUT_INVALID: .*does not exist/)
    assert.equal(existsSync(join(dir.path, 'not-there')), false)
  })
})
