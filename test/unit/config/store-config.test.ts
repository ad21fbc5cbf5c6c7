/**
 * Store settings in domicile.config.json: the two logins of a PostgreSQL store, stores that
 * would share one embedded data directory, and regions listing several stores (cells).
 */
import { strict as assert } from 'node:assert'
import { describe, test } from 'node:test'
import { parseConfig } from '../../../src/config/load-config.js'
import { isDomicileError } from '../../../src/errors.js'

const base = (regions: Record<string, unknown>, controlPlane: unknown = { driver: 'pglite', dataDir: 'cp' }) =>
  ({ regions, controlPlane, schema: './schema.mjs' })
const invalid = (path: string) => (e: unknown) => isDomicileError(e, 'ERR_CONFIG_INVALID') && e.path === path

describe('store config', () => {
  test('a PostgreSQL store takes a data-plane url and an owner url', () => {
    const c = parseConfig(base({ eu: { driver: 'postgres', url: 'postgres://data@h/eu', ownerUrl: 'postgres://owner@h/eu' } },
      { driver: 'postgres', urlEnv: 'CP_URL', ownerUrlEnv: 'CP_OWNER_URL' }), '/app')
    // A region with one store is a region with one cell, "main".
    assert.deepEqual(c.regions.eu, { cells: { main: { driver: 'postgres', url: 'postgres://data@h/eu', ownerUrl: 'postgres://owner@h/eu' } } })
    assert.deepEqual(c.controlPlane, { driver: 'postgres', urlEnv: 'CP_URL', ownerUrlEnv: 'CP_OWNER_URL' })
  })

  test('ownerUrl and ownerUrlEnv together, or an ownerUrl that is not postgres://, are errors', () => {
    assert.throws(() => parseConfig(base({ eu: { driver: 'postgres', url: 'postgres://d@h/eu', ownerUrl: 'postgres://o@h/eu', ownerUrlEnv: 'X' } }), '/app'), invalid('regions.eu'))
    assert.throws(() => parseConfig(base({ eu: { driver: 'postgres', url: 'postgres://d@h/eu', ownerUrl: 'mysql://o@h/eu' } }), '/app'), invalid('regions.eu.ownerUrl'))
    assert.throws(() => parseConfig(base({ eu: { driver: 'postgres', url: 'postgres://d@h/eu', ownerURL: 'postgres://o@h/eu' } }), '/app'), invalid('regions.eu.ownerURL'))
  })

  test('Precondition: no two stores share an embedded data directory (two stores on one database would mix regions).', () => {
    assert.throws(() => parseConfig(base({ eu: { driver: 'pglite', dataDir: 'same' }, us: { driver: 'pglite', dataDir: './same' } }), '/app'), invalid('regions.us.dataDir'))
    assert.throws(() => parseConfig(base({ eu: { driver: 'pglite', dataDir: 'regions/eu' } }, { driver: 'pglite', dataDir: 'regions/eu/' }), '/app'), invalid('controlPlane.dataDir'))
    // In-memory stores are each their own database.
    assert.doesNotThrow(() => parseConfig(base({ eu: { driver: 'pglite', dataDir: 'memory://' }, us: { driver: 'pglite', dataDir: 'memory://' } }, { driver: 'pglite', dataDir: 'memory://' }), '/app'))
  })

  test('a region may list several stores as cells, in configuration order', () => {
    const c = parseConfig(base({
      eu: { jurisdiction: 'EU', cells: { a: { driver: 'postgres', url: 'postgres://d@h1/eu' }, b: { driver: 'pglite', dataDir: 'eu-b' } } },
      us: { driver: 'pglite', dataDir: 'us' },
    }), '/app')
    assert.deepEqual(Object.keys(c.regions.eu!.cells), ['a', 'b'])
    assert.equal(c.regions.eu!.jurisdiction, 'EU')
    assert.deepEqual(c.regions.eu!.cells.b, { driver: 'pglite', dataDir: '/app/eu-b' })
    assert.deepEqual(Object.keys(c.regions.us!.cells), ['main'])
  })

  test('cells: typos, bad names, an empty list, a store beside cells, and two cells on one data directory are errors', () => {
    assert.throws(() => parseConfig(base({ eu: { cells: {} } }), '/app'), invalid('regions.eu.cells'))
    assert.throws(() => parseConfig(base({ eu: { cells: { 'A b': { driver: 'pglite', dataDir: 'x' } } } }), '/app'), invalid('regions.eu.cells.A b'))
    assert.throws(() => parseConfig(base({ eu: { cells: { a: { driver: 'pglite', dataDir: 'x', jurisdiction: 'EU' } } } }), '/app'), invalid('regions.eu.cells.a.jurisdiction'))
    assert.throws(() => parseConfig(base({ eu: { driver: 'pglite', dataDir: 'x', cells: { a: { driver: 'pglite', dataDir: 'y' } } } }), '/app'), invalid('regions.eu.driver'))
    assert.throws(() => parseConfig(base({ eu: { cels: { a: { driver: 'pglite', dataDir: 'y' } } } }), '/app'), invalid('regions.eu.driver'))
    assert.throws(() => parseConfig(base({ eu: { cells: { a: { driver: 'pglite', dataDir: 'same' }, b: { driver: 'pglite', dataDir: 'same' } } } }), '/app'), invalid('regions.eu.cells.b.dataDir'))
  })
})
