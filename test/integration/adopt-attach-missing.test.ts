/**
 * `migrate` attaches to adopted tables (the application's own) and never creates them: a schema
 * naming an adopted table that the store does not have is refused before anything is written to any
 * store (here on embedded stores; real PostgreSQL: adopt-attach.test.ts).
 */
import { strict as assert } from 'node:assert'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { createDomicile, defineSchema, parseConfig, type Domicile } from '../../src/index.js'
import { isDomicileError } from '../../src/errors.js'
import { internalsOf } from '../../src/domicile-internals.js'
import { runCli } from '../support/cli.js'

const SCHEMA = {
  contacts: {
    scope: 'tenant', adopted: true, tenantColumn: { name: 'account_id', type: 'bigint' }, primaryKey: ['account_id', 'id'],
    columns: { id: { type: 'bigint', default: true }, email: { type: 'text' } },
  },
  notes: { scope: 'tenant', primaryKey: 'id', columns: { id: { type: 'text' }, body: { type: 'text' } } },
} as const

describe('migrate never creates an adopted table', () => {
  let dir: string
  let d: Domicile
  const raw = {
    regions: { 'eu-west-1': { driver: 'pglite', dataDir: 'memory://' } },
    controlPlane: { driver: 'pglite', dataDir: 'memory://' },
    schema: './domicile.schema.mjs',
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'domicile-adopt-guard-'))
    d = await createDomicile({ config: parseConfig(raw, dir), schema: defineSchema(SCHEMA as never) })
  })

  after(async () => {
    await d?.close()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  test('Precondition: each adopted table exists in the store as the schema describes it.', async () => {
    await assert.rejects(d.migrate(), (e: unknown) => isDomicileError(e, 'ERR_SCHEMA_INVALID') && e.path === 'tables.contacts' && /does not exist/.test(e.message) && /Nothing was changed/.test(e.message))
    // Nothing was written: no stamp, no internal table, in the control plane or the region.
    const p = internalsOf(d)
    const cp = await p.controlPlane.withSession((s) => s.query<{ t: string | null }>("SELECT to_regclass('domicile_stamp')::text AS t"), { role: 'owner' })
    assert.equal(cp.rows[0]?.t, null)
    const region = await p.router.withRegionAdmin({ region: 'eu-west-1', cell: 'main' }, (s) => s.query<{ t: string | null; n: string | null }>(
      "SELECT to_regclass('domicile_stamp')::text AS t, to_regclass('notes')::text AS n"), { verifyStamp: false })
    assert.deepEqual(region.rows[0], { t: null, n: null })
  })

  test('the CLI says so and exits 2', async () => {
    writeFileSync(join(dir, 'domicile.schema.mjs'), `export default ${JSON.stringify(SCHEMA)}\n`)
    writeFileSync(join(dir, 'domicile.config.json'), JSON.stringify({ ...raw, regions: { 'eu-west-1': { driver: 'pglite', dataDir: './eu' } }, controlPlane: { driver: 'pglite', dataDir: './cp' } }))
    const r = await runCli(['migrate', '--json'], { cwd: dir })
    assert.equal(r.code, 2, r.stderr)
    assert.match(r.stdout + r.stderr, /ERR_SCHEMA_INVALID/)
    assert.match(r.stderr, /application's DDL/)
  })
})
