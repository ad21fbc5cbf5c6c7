/**
 * The residency linter (`domicile lint`, src/lint/) end to end:
 * - as a real child process on an embedded project: the example project passes (exit 0); a global
 *   table with `email` fails (exit 1); a waived `plan_name` passes; an empty waiver reason is a schema
 *   error (exit 2); a source file importing `pg` or requiring PGlite fails with file:line; personal
 *   values written into an innocuous global column are counted per store and never printed;
 * - as the library on real PostgreSQL 15 (owner + data-plane logins): a global table larger than ten
 *   samples is sampled (TABLESAMPLE), not read whole, and a region that is down fails the lint.
 */
import { strict as assert } from 'node:assert'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { createDomicile, parseConfig, type Domicile } from '../../src/index.js'
import { internalsOf } from '../../src/domicile-internals.js'
import { EXAMPLE_SCHEMA } from '../../src/cli/templates.js'
import { lintResidency, type LintFinding, type LintResult } from '../../src/lint/lint-residency.js'
import { makeTempDir, runCli, runCliOk, type TempDir } from '../support/cli.js'
import { postgresUnavailable, startPgCluster, twoRoleDatabases, type PgCluster } from '../support/pg-cluster.js'

const errorsOf = (r: LintResult) => r.findings.filter((f) => f.severity === 'error')
const strip = (f: LintFinding) => ({ rule: f.rule, table: f.table, column: f.column, store: f.store, category: f.category, matched: f.matched, sampled: f.sampled })

/** A schema module with one global table. */
function schemaWith(globalTable: string): string {
  return `export default {\n  ${globalTable}\n}\n`
}

const PERSONAL = {
  emails: ['ada.lovelace@example.eu', 'grace@navy.example.mil', 'alan.t@example.co.uk'],
  iban: 'DE89 3704 0044 0532 0130 00',
  phone: '+44 20 7946 0958',
}

describe('domicile lint (CLI, embedded stores)', { concurrency: false }, () => {
  let dir: TempDir
  let cwd: string
  const lint = async (args: readonly string[]) => {
    const r = await runCli(['lint', '--json', ...args], { cwd, timeoutMs: 120_000 })
    return { code: r.code, stdout: r.stdout, stderr: r.stderr, json: r.stdout.trim() ? JSON.parse(r.stdout) as LintResult : undefined }
  }
  /** A config file beside the example one, on the same stores, naming another schema module. */
  const variant = async (name: string, schemaSource: string, extra: Record<string, unknown> = {}) => {
    const base = JSON.parse(await readFile(join(cwd, 'domicile.config.json'), 'utf8')) as Record<string, unknown>
    await writeFile(join(cwd, `${name}.schema.mjs`), schemaSource)
    await writeFile(join(cwd, `${name}.config.json`), JSON.stringify({ ...base, schema: `./${name}.schema.mjs`, ...extra }))
    return join(cwd, `${name}.config.json`)
  }

  before(async () => {
    dir = await makeTempDir('lint-cli-')
    cwd = dir.path
    await runCliOk(['init'], { cwd })
    await runCliOk(['migrate'], { cwd, timeoutMs: 120_000 })
  })
  after(async () => dir?.cleanup())

  test('the example project passes: exit 0, every table and column classified', async () => {
    const r = await lint([])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.json!.ok, true)
    assert.deepEqual(errorsOf(r.json!), [])
    assert.deepEqual(r.json!.findings.map((f) => f.rule), ['sources-unchecked'])
    assert.deepEqual(r.json!.checked.stores, ['control-plane', 'region:us-east-1', 'region:eu-west-1'])
    const customers = r.json!.tables.find((t) => t.name === 'customers')!
    assert.equal(customers.scope, 'tenant')
    assert.deepEqual(customers.columns.map((c) => [c.name, c.protection]), [['id', 'plain'], ['name', 'plain'], ['email', 'searchable'], ['tax_id', 'sensitive'], ['plan', 'plain']])
    const plans = r.json!.tables.find((t) => t.name === 'plans')!
    assert.equal(plans.scope, 'global')
    assert.equal(plans.columns.find((c) => c.name === 'name')!.looksPersonal, 'name')
    assert.equal(typeof plans.columns.find((c) => c.name === 'name')!.waiver, 'string')
    // The text output prints the classification too.
    const text = await runCli(['lint'], { cwd, timeoutMs: 120_000 })
    assert.equal(text.code, 0, text.stderr)
    assert.match(text.stdout, /passed/)
    assert.match(text.stdout, /plans \(global/)
    assert.match(text.stdout, /email\s+text\s+searchable/)
  })

  test('a global table with an "email" column fails: exit 1, the finding names table and column', async () => {
    const config = await variant('email', schemaWith(`contacts: { scope: 'global', primaryKey: 'id', columns: { id: { type: 'text' }, email: { type: 'text' }, price_cents: { type: 'integer' } } },`))
    const r = await lint(['--config', config])
    assert.equal(r.code, 1)
    assert.equal(r.json!.ok, false)
    assert.deepEqual(errorsOf(r.json!).map(strip), [{ rule: 'personal-column-name', table: 'contacts', column: 'email', store: undefined, category: 'email', matched: undefined, sampled: undefined }])
    assert.match(r.stderr, /ERR_(LINT_FAILED|CONFLICT): residency lint failed with 1 finding/)
  })

  test('a waived "plan_name" in a global price list passes, and the reason is shown', async () => {
    const config = await variant('waived', schemaWith(`prices: { scope: 'global', primaryKey: 'id', columns: { id: { type: 'text' }, plan_name: { type: 'text', residency: { notPersonal: 'the name of a plan, not of a person' } } } },`))
    const r = await lint(['--config', config])
    assert.equal(r.code, 0, r.stdout)
    assert.equal(r.json!.tables.find((t) => t.name === 'prices')!.columns.find((c) => c.name === 'plan_name')!.waiver, 'the name of a plan, not of a person')
    // The table was never migrated: a warning, not a failure.
    assert.ok(r.json!.findings.some((f) => f.rule === 'table-missing' && f.table === 'prices'))
  })

  test('an empty waiver reason is a schema error: exit 2, ERR_SCHEMA_INVALID naming the path', async () => {
    const config = await variant('empty', schemaWith(`prices: { scope: 'global', primaryKey: 'id', columns: { id: { type: 'text' }, plan_name: { type: 'text', residency: { notPersonal: '' } } } },`))
    const r = await runCli(['lint', '--json', '--config', config], { cwd, timeoutMs: 120_000 })
    assert.equal(r.code, 2)
    const e = JSON.parse(r.stdout) as { error: { code: string; message: string } }
    assert.equal(e.error.code, 'ERR_SCHEMA_INVALID')
    assert.match(e.error.message, /tables\.prices\.columns\.plan_name\.residency\.notPersonal/)
  })

  test('source files importing "pg" or requiring PGlite fail with file:line; lint.sources in the config and --src both work', async () => {
    await mkdir(join(cwd, 'app', 'db'), { recursive: true })
    await mkdir(join(cwd, 'app', 'node_modules', 'pg'), { recursive: true })
    await writeFile(join(cwd, 'app', 'server.ts'), "import { createDomicile } from 'domicile'\nexport const d = await createDomicile()\n")
    await writeFile(join(cwd, 'app', 'db', 'raw.ts'), "// a shortcut around the data layer\nimport { Pool } from 'pg'\nexport const pool = new Pool()\n")
    await writeFile(join(cwd, 'app', 'legacy.cjs'), "'use strict'\nconst x = 1\nconst { PGlite } = require('@electric-sql/pglite')\n")
    await writeFile(join(cwd, 'app', 'node_modules', 'pg', 'index.js'), "module.exports = require('pg-pool')\n")
    const r = await lint(['--src', 'app'])
    assert.equal(r.code, 1)
    assert.deepEqual(errorsOf(r.json!).map((f) => [f.rule, f.file, f.line]), [
      ['direct-driver-import', join('app', 'db', 'raw.ts'), 2],
      ['direct-driver-import', join('app', 'legacy.cjs'), 3],
    ])
    assert.equal(r.json!.checked.filesScanned, 3)
    const config = await variant('sources', EXAMPLE_SCHEMA, { lint: { sources: ['app/db'] } })
    const viaConfig = await lint(['--config', config])
    assert.equal(viaConfig.code, 1)
    assert.deepEqual(errorsOf(viaConfig.json!).map((f) => `${f.file}:${f.line}`), [`${join('app', 'db', 'raw.ts')}:2`])
    const missing = await runCli(['lint', '--src', 'no-such-dir'], { cwd, timeoutMs: 120_000 })
    assert.equal(missing.code, 2, missing.stderr)
  })

  test('personal values in an innocuous global column are counted per store and column, never printed', async () => {
    const notes = schemaWith(`notes: { scope: 'global', primaryKey: 'id', columns: { id: { type: 'text' }, body: { type: 'text', nullable: true }, meta: { type: 'jsonb', nullable: true } } },`)
    const config = await variant('values', notes)
    await runCliOk(['migrate', '--config', config], { cwd, timeoutMs: 120_000 })
    // Written with raw SQL on the owner sessions, as a careless import job would.
    const d = await createDomicile({ configPath: config, changeFeed: false })
    try {
      const p = internalsOf(d)
      await p.controlPlane.withSession(async (s) => {
        for (const [i, e] of PERSONAL.emails.entries()) await s.query('INSERT INTO notes (id, body) VALUES ($1, $2)', [`n${i}`, `contact ${e} for renewals`])
        await s.query("INSERT INTO notes (id, body) VALUES ('n9', 'Pro plan, 12 seats, EUR 49/month')")
      }, { role: 'owner' })
      await p.router.withRegionAdmin('eu-west-1', async (s) => {
        await s.query('INSERT INTO notes (id, body, meta) VALUES ($1, $2, $3)', ['r1', `refunds to ${PERSONAL.iban}`, JSON.stringify({ support: PERSONAL.phone })])
        await s.query("INSERT INTO notes (id, body) VALUES ('r2', 'nothing personal here')")
      })
    } finally {
      await d.close()
    }
    const r = await lint(['--config', config])
    assert.equal(r.code, 1)
    assert.deepEqual(errorsOf(r.json!).map(strip), [
      { rule: 'personal-values', table: 'notes', column: 'body', store: 'control-plane', category: 'email', matched: 3, sampled: 4 },
      { rule: 'personal-values', table: 'notes', column: 'body', store: 'region:eu-west-1', category: 'iban', matched: 1, sampled: 2 },
      { rule: 'personal-values', table: 'notes', column: 'meta', store: 'region:eu-west-1', category: 'phone', matched: 1, sampled: 1 },
    ])
    const text = await runCli(['lint', '--config', config], { cwd, timeoutMs: 120_000 })
    assert.equal(text.code, 1)
    for (const out of [r.stdout, r.stderr, text.stdout, text.stderr]) {
      for (const v of [...PERSONAL.emails, PERSONAL.iban, PERSONAL.iban.replace(/ /g, ''), PERSONAL.phone, 'ada.lovelace', '7946']) assert.ok(!out.includes(v), `output shows a sampled value: ${v}`)
    }
  })
})

const why = postgresUnavailable()

describe('lintResidency on PostgreSQL', { skip: why, concurrency: false }, () => {
  let eu: PgCluster
  let us: PgCluster
  let d: Domicile
  let dir: string

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'domicile-lint-pg-'))
    eu = await startPgCluster('lint-eu')
    us = await startPgCluster('lint-us')
    const euLogins = await twoRoleDatabases(eu, ['region', 'control'])
    const usLogins = await twoRoleDatabases(us, ['region'])
    writeFileSync(join(dir, 'schema.mjs'), schemaWith(`catalog: { scope: 'global', primaryKey: 'id', columns: { id: { type: 'integer' }, label: { type: 'text' } } },`))
    const config = parseConfig({
      regions: {
        'eu-west-1': { driver: 'postgres', url: euLogins.dataUrl('region'), ownerUrl: euLogins.ownerUrl('region'), connectTimeoutMs: 500 },
        'us-east-1': { driver: 'postgres', url: usLogins.dataUrl('region'), ownerUrl: usLogins.ownerUrl('region'), connectTimeoutMs: 500 },
      },
      controlPlane: { driver: 'postgres', url: euLogins.dataUrl('control'), ownerUrl: euLogins.ownerUrl('control') },
      schema: './schema.mjs',
      keys: { dir: join(dir, 'keys') },
    }, dir)
    d = await createDomicile({ config, changeFeed: false })
    await d.migrate()
  })

  after(async () => {
    await d?.close()
    eu?.destroy()
    us?.destroy()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  test('a clean pass on real PostgreSQL: every store sampled, no finding but the missing sources', async () => {
    const r = await lintResidency(d, { sampleRows: 100 })
    assert.equal(r.ok, true)
    assert.deepEqual(r.findings.map((f) => f.rule), ['sources-unchecked'])
    assert.deepEqual(r.checked.stores, ['control-plane', 'region:eu-west-1', 'region:us-east-1'])
  })

  test('a large global table is sampled (TABLESAMPLE, at most sampleRows rows), not read whole', async () => {
    await internalsOf(d).router.withRegionAdmin('us-east-1', async (s) => {
      await s.query("INSERT INTO catalog (id, label) SELECT g, 'owner' || g || '@example.com' FROM generate_series(1, 20000) g")
      await s.query('ANALYZE catalog')
    })
    const r = await lintResidency(d, { sampleRows: 100 })
    const f = errorsOf(r).map(strip)
    assert.equal(f.length, 1)
    assert.deepEqual({ ...f[0], matched: undefined, sampled: undefined }, { rule: 'personal-values', table: 'catalog', column: 'label', store: 'region:us-east-1', category: 'email', matched: undefined, sampled: undefined })
    // Every row holds an e-mail address: every sampled value matches; a sample, not 20000 rows.
    assert.equal(f[0]!.matched, f[0]!.sampled)
    assert.ok(f[0]!.sampled! > 0 && f[0]!.sampled! <= 100, `sampled ${f[0]!.sampled}`)
  })

  test('a region whose PostgreSQL is stopped fails the lint (it cannot vouch for data it did not read)', async () => {
    eu.stop()
    try {
      const r = await lintResidency(d, { sampleRows: 100 })
      assert.equal(r.ok, false)
      const down = errorsOf(r).filter((x) => x.rule === 'store-unchecked').map((x) => x.store)
      // The control plane lives on the same cluster as eu-west-1 here.
      assert.deepEqual(down, ['control-plane', 'region:eu-west-1'])
    } finally {
      eu.start()
    }
  })
})
