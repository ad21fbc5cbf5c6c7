/**
 * Upgrading to cells: stores stamped, and a directory written, by a version without cells. Until
 * `migrate` runs, the new version refuses the old region store with ERR_NOT_MIGRATED (never a guess);
 * `migrate` makes each existing store its region's cell "main" and each tenant a tenant of it, and
 * nothing is lost.
 */
import { strict as assert } from 'node:assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { createDomicile, defineSchema, parseConfig, type Domicile } from '../../src/index.js'
import { isDomicileError } from '../../src/errors.js'
import { internalsOf } from '../../src/domicile-internals.js'

const schema = defineSchema({ notes: { scope: 'tenant', primaryKey: 'id', columns: { id: { type: 'text' }, body: { type: 'text' } } } })

describe('upgrading stores made before cells', () => {
  let dir: string
  const open = (): Promise<Domicile> => createDomicile({
    config: parseConfig({
      regions: { 'eu-west-1': { driver: 'pglite', dataDir: './eu' } },
      controlPlane: { driver: 'pglite', dataDir: './cp' },
      schema: './unused.mjs',
    }, dir),
    schema,
  })

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'domicile-cells-upgrade-'))
    const d = await open()
    try {
      assert.ok((await d.migrate()).every((r) => r.ok))
      await d.addTenant('acme', { region: 'eu-west-1' })
      await d.withTenant('acme', (s) => s.table('notes').insert({ id: 'n1', body: 'kept' }))
      // The stores as a version without cells left them: no cell column anywhere.
      const p = internalsOf(d)
      await p.router.withRegionAdmin('eu-west-1', (s) => s.query('ALTER TABLE domicile_stamp DROP COLUMN cell'))
      await p.controlPlane.withSession(async (s) => {
        await s.query('ALTER TABLE domicile_stamp DROP COLUMN cell')
        await s.query('ALTER TABLE domicile_tenants DROP COLUMN cell')
      }, { role: 'owner' })
    } finally {
      await d.close()
    }
  })

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  test('before migrate the old region store is refused with ERR_NOT_MIGRATED; after it, everything is in cell "main"', async () => {
    const d = await open()
    try {
      assert.equal((await d.getTenant('acme')).cell, 'main', 'an old directory row reads as cell "main"')
      await assert.rejects(d.withTenant('acme', (s) => s.table('notes').get('n1')), (e: unknown) => isDomicileError(e, 'ERR_NOT_MIGRATED') && /older version/.test(e.message))
      const results = await d.migrate()
      assert.deepEqual(results.map((r) => [r.store, r.ok]), [['control-plane', true], ['eu-west-1', true]])
      assert.deepEqual(await d.withTenant('acme', (s) => s.table('notes').get('n1')), { id: 'n1', body: 'kept' })
      const p = internalsOf(d)
      const stamp = await p.router.withRegionAdmin('eu-west-1', (s) => s.query<{ region: string; cell: string }>('SELECT region, cell FROM domicile_stamp'))
      assert.deepEqual(stamp.rows[0], { region: 'eu-west-1', cell: 'main' })
      const dirRow = await p.controlPlane.withSession((s) => s.query<{ cell: string }>("SELECT cell FROM domicile_tenants WHERE id = 'acme'"), { role: 'owner' })
      assert.equal(dirRow.rows[0]?.cell, 'main')
    } finally {
      await d.close()
    }
  })
})
