/**
 * `domicile adopt inspect` without a database: classification of a catalog (tenant, tenants
 * table, global, flagged, left out), --sensitive acceptance and its refusals, and the writer (the
 * module it writes loads and defineSchema accepts it; atomic, no overwrite without force).
 */
import { strict as assert } from 'node:assert'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { after, describe, test } from 'node:test'
import type { Catalog, CatalogColumn, CatalogTable } from '../../../src/adopt/catalog-reader.js'
import { proposeSchema, tableDefs, type SchemaProposal } from '../../../src/adopt/propose-schema.js'
import type { ColumnSample } from '../../../src/adopt/sample-values.js'
import { renderSchemaModule, writeFileAtomic } from '../../../src/adopt/schema-writer.js'
import { isDomicileError } from '../../../src/errors.js'
import { defineSchema, type TableDef } from '../../../src/schema/define-schema.js'

const TYPES: Record<string, [string, string]> = {
  bigint: ['int8', 'bigint'], bigserial: ['int8', 'bigint'], int: ['int4', 'integer'], text: ['text', 'text'], uuid: ['uuid', 'uuid'],
  date: ['date', 'date'], numeric: ['numeric', 'numeric'], ts: ['timestamptz', 'timestamp with time zone'], jsonb: ['jsonb', 'jsonb'],
}
/** `name type [null] [def] [gen]` → a catalog column (NOT NULL unless "null"). */
function col(spec: string): CatalogColumn {
  const [name, type, ...flags] = spec.split(' ') as [string, string, ...string[]]
  const [baseType, sqlType] = TYPES[type]!
  return { name, baseType, sqlType, typeKind: 'b', notNull: !flags.includes('null'), hasDefault: flags.includes('def') || type === 'bigserial', generated: flags.includes('gen') }
}
function table(name: string, cols: string[], pk: string[] | null, fks: Array<[string[], string, string[]]> = [], rows = 10): CatalogTable {
  return {
    name, partitioned: false, columns: cols.map(col), primaryKey: pk, checks: 0, indexes: pk ? 1 : 0, rows, rowsExact: true,
    foreignKeys: fks.map(([columns, refTable, refColumns], i) => ({ name: `${name}_fk${i}`, columns, refSchema: 'public', refTable, refColumns })),
  }
}

const CATALOG: Catalog = {
  schema: 'public',
  tables: [
    table('orgs', ['id bigserial', 'name text', 'owner_email text null'], ['id']),
    table('projects', ['org_id bigint', 'id bigserial', 'name text', 'due date null'], ['org_id', 'id'], [[['org_id'], 'orgs', ['id']]]),
    table('members', ['org_id bigint', 'id uuid def', 'name text', 'email text', 'badge text null'], ['id'], [[['org_id'], 'orgs', ['id']]]),
    table('settings', ['org_id bigint', 'theme text'], ['org_id'], [[['org_id'], 'orgs', ['id']]]),
    table('countries', ['code text', 'name text'], ['code']),
    table('audit_trail', ['id bigserial', 'member_id uuid', 'ip_address text null'], ['id'], [[['member_id'], 'members', ['id']]]),
    table('events', ['id bigint', 'payload jsonb null'], null),
    table('Legacy', ['id bigint'], ['id']),
    table('reports', ['org_id bigint', 'day date'], ['org_id', 'day']),
    table('logs', ['org_id bigint null', 'id bigserial', 'level text', 'at date'], ['id']),
  ],
}
const SAMPLES = new Map<string, Map<string, ColumnSample>>([
  ['members', new Map([['badge', { sampled: 20, matches: { email: 0, phone: 0, iban: 0, 'national-id': 18 } }]])],
  ['countries', new Map([['name', { sampled: 5, matches: { email: 1, phone: 0, iban: 0, 'national-id': 0 } }]])],
])
const propose = (sensitive: string[] = []): SchemaProposal => proposeSchema(CATALOG, SAMPLES, { region: 'eu-west-1', tenantColumn: 'org_id', sensitive, sampleRows: 20 })
const byName = (p: SchemaProposal, name: string) => p.tables.find((t) => t.name === name)!

describe('adopt: proposeSchema', () => {
  test('tables with the tenant column are tenant tables; the table its foreign keys reference is the tenants table', () => {
    const p = propose()
    assert.deepEqual(p.tables.map((t) => [t.name, t.classification]), [
      ['orgs', 'tenants-table'], ['logs', 'tenant'], ['members', 'tenant'], ['projects', 'tenant'], ['reports', 'tenant'], ['settings', 'tenant'],
      ['Legacy', 'global'], ['audit_trail', 'global'], ['countries', 'global'], ['events', 'global'],
    ])
    assert.deepEqual(byName(p, 'orgs').tenantColumn, { name: 'id', type: 'bigint' })
    assert.equal(byName(p, 'orgs').reason, 'org_id in members, projects, settings references its key')
    assert.deepEqual(byName(p, 'projects').tenantColumn, { name: 'org_id', type: 'bigint' })
  })

  test('without foreign keys the tenants table is found by its name', () => {
    const catalog: Catalog = { schema: 'public', tables: [table('organizations', ['id uuid', 'name text'], ['id']), table('notes', ['org_id uuid', 'id bigint'], ['org_id', 'id'])] }
    const p = proposeSchema(catalog, new Map(), { region: 'r', tenantColumn: 'org_id' })
    assert.equal(byName(p, 'organizations').classification, 'tenants-table')
    assert.deepEqual(byName(p, 'organizations').tenantColumn, { name: 'id', type: 'uuid' })
    const q = proposeSchema({ schema: 'public', tables: [table('company', ['id int', 'name text'], ['id']), table('notes', ['company_id int', 'id bigint'], ['id'])] }, new Map(), { region: 'r', tenantColumn: 'company_id' })
    assert.equal(byName(q, 'company').classification, 'tenants-table', 'named after the tenant column')
  })

  test('suggestions carry their evidence; keys and the tenant column are never suggested', () => {
    const p = propose()
    const members = byName(p, 'members')
    const sugg = Object.fromEntries(members.columns.filter((c) => c.suggestion).map((c) => [c.name, c.suggestion]))
    assert.deepEqual(sugg, {
      name: ["name looks like a person's name column"],
      email: ['name looks like an email column'],
      badge: ['18 of 20 sampled values look like national ids (US SSN, UK NINO)'],
    })
    assert.deepEqual(byName(p, 'orgs').columns.filter((c) => c.suggestion).map((c) => c.name), ['owner_email'])
    assert.deepEqual(byName(p, 'projects').columns.filter((c) => c.suggestion).map((c) => c.name), [], 'projects.name names a thing')
  })

  test('global tables that look personal or reference tenant tables are flagged', () => {
    const p = propose()
    assert.deepEqual(byName(p, 'countries').flagged, ['name: 1 of 5 sampled values looks like emails'])
    assert.deepEqual(byName(p, 'audit_trail').flagged, [
      'ip_address: name looks like an IP address column',
      'member_id references tenant table members: its rows probably belong to tenants',
    ])
    assert.deepEqual(byName(p, 'projects').flagged, [])
  })

  test('tables and columns the model cannot take stay out, with the reason; warnings for what that breaks', () => {
    const p = propose()
    assert.match(byName(p, 'events').leftOut!, /no primary key/)
    assert.match(byName(p, 'Legacy').leftOut!, /not a lower-case identifier/)
    assert.match(byName(p, 'reports').leftOut!, /primary key column day stays out of the model \(unsupported type date/)
    assert.equal(byName(p, 'projects').columns.find((c) => c.name === 'due')!.leftOut, 'unsupported type date: kept out of the model')
    assert.equal(byName(p, 'projects').inModel, true)
    assert.deepEqual(byName(p, 'logs').warnings, [
      'org_id allows NULL: after migrate, rows without a tenant are visible to no tenant',
      'at is NOT NULL without a default and stays out of the model: inserts through Domicile cannot fill it',
    ])
    assert.deepEqual(Object.keys(tableDefs(p)).sort(), ['audit_trail', 'countries', 'logs', 'members', 'orgs', 'projects', 'settings'])
  })

  test('the proposal is a valid schema of adopted tables', () => {
    const defs = tableDefs(propose(['members.email']))
    const s = defineSchema(defs)
    assert.equal(s.table('members').columns.get('email')!.sensitive !== false, true)
    assert.deepEqual(s.table('projects').primaryKeyColumns, ['org_id', 'id'])
    assert.equal(s.table('settings').columns.size, 1)
    assert.deepEqual(defs.members, {
      scope: 'tenant', adopted: true, tenantColumn: { name: 'org_id', type: 'bigint' }, primaryKey: 'id',
      columns: { id: { type: 'uuid', default: true }, name: { type: 'text' }, email: { type: 'text', sensitive: true }, badge: { type: 'text', nullable: true } },
    })
  })

  test('Precondition: at least one table has the tenant column.', () => {
    assert.throws(() => proposeSchema(CATALOG, SAMPLES, { region: 'eu-west-1', tenantColumn: 'company_id' }), (e: unknown) =>
      isDomicileError(e, 'ERR_INPUT_INVALID') && /no.*"company_id"/i.test(e.message) && /org_id \(3 tables\)/.test(e.message))
  })

  test('Precondition: an accepted sensitive column is one the proposed schema can encrypt.', () => {
    const refused = (entry: string, code: string, re: RegExp) => assert.throws(() => propose([entry]), (e: unknown) => isDomicileError(e) && e.code === code && re.test(e.message), entry)
    refused('nope.email', 'ERR_TABLE_UNKNOWN', /no table "nope"/)
    refused('members.mail', 'ERR_COLUMN_UNKNOWN', /no column "mail".*Its columns: org_id, id, name, email, badge/)
    refused('countries.name', 'ERR_INPUT_INVALID', /global table/)
    refused('members.id', 'ERR_INPUT_INVALID', /primary key/)
    refused('members.org_id', 'ERR_INPUT_INVALID', /tenant column/)
    refused('projects.due', 'ERR_INPUT_INVALID', /stays out/)
    refused('events.payload', 'ERR_INPUT_INVALID', /global table/)
    refused('reports.day', 'ERR_INPUT_INVALID', /stays out of the proposed schema/)
    refused('orgs.name.x', 'ERR_INPUT_INVALID', /TABLE\.COLUMN/)
    const withDefault: Catalog = { schema: 'public', tables: [table('notes', ['org_id bigint', 'id bigint', 'email text def'], ['id'])] }
    assert.throws(() => proposeSchema(withDefault, new Map(), { region: 'r', tenantColumn: 'org_id', sensitive: ['notes.email'] }), (e: unknown) => isDomicileError(e, 'ERR_INPUT_INVALID') && /default/.test(e.message))
  })
})

describe('adopt: schema writer', () => {
  const dir = mkdtempSync(join(tmpdir(), 'domicile-adopt-unit-'))
  after(() => rmSync(dir, { recursive: true, force: true }))

  test('the written module loads, and defineSchema gives the proposal\'s tables', async () => {
    const p = propose(['members.email', 'members.badge'])
    const source = renderSchemaModule(p, 'domicile adopt inspect --region eu-west-1 --tenant-column org_id')
    const file = join(dir, 'schema-a.mjs')
    writeFileSync(file, source)
    const mod = (await import(pathToFileURL(file).href)) as { default: Record<string, TableDef> }
    assert.deepEqual(mod.default, tableDefs(p))
    const s = defineSchema(mod.default)
    assert.deepEqual([...s.table('members').sensitiveColumns].map((c) => c.name), ['email', 'badge'])
    assert.match(source, /\/\/ SUGGESTION sensitive: name looks like a person's name column\n {6}name: \{ type: 'text' \},/)
    assert.match(source, /\/\/ sensitive \(accepted; name looks like an email column\)\n {6}email: \{ type: 'text', sensitive: true \},/)
    assert.match(source, /\/\/ FLAGGED: ip_address: name looks like an IP address column/)
    assert.match(source, /\/\/ due \(date\): unsupported type date: kept out of the model/)
    assert.match(source, /\/\/ "events" \(global, 10 rows\): it has no primary key/)
    assert.doesNotMatch(source, /^import /m, 'a plain module, like the files "domicile init" writes')
  })

  test('comments cannot be broken out of by names with newlines or quotes', async () => {
    const hostile: Catalog = { schema: 'public', tables: [table('t', ['org_id bigint', 'id bigint'], ['org_id', 'id']), table("x\n}; throw 1; //'", ['id bigint'], ['id'])] }
    const p = proposeSchema(hostile, new Map(), { region: 'r\nx', tenantColumn: 'org_id' })
    const file = join(dir, 'schema-b.mjs')
    writeFileSync(file, renderSchemaModule(p, "cmd\n'; throw 2"))
    const mod = (await import(pathToFileURL(file).href)) as { default: Record<string, TableDef> }
    assert.deepEqual(Object.keys(mod.default), ['t'])
  })

  test('Precondition: the proposed schema never overwrites a file unless asked to.', async () => {
    const file = join(dir, 'sub', 'out.mjs')
    await writeFileAtomic(file, 'one\n', { force: false })
    assert.equal(readFileSync(file, 'utf8'), 'one\n')
    await assert.rejects(writeFileAtomic(file, 'two\n', { force: false }), (e: unknown) => isDomicileError(e, 'ERR_INPUT_INVALID') && /already exists.*--force/.test(e.message))
    assert.equal(readFileSync(file, 'utf8'), 'one\n', 'unchanged when refused')
    await writeFileAtomic(file, 'three\n', { force: true })
    assert.equal(readFileSync(file, 'utf8'), 'three\n')
    assert.deepEqual(readdirSync(join(dir, 'sub')), ['out.mjs'], 'no temporary file left behind')
    assert.equal(existsSync(join(dir, 'sub', 'out.mjs')), true)
  })
})
