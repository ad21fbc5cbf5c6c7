/**
 * Cells (src/regions/placement.ts and the router's name resolution): where a new tenant goes, how a
 * store is named in listings, and which names resolve to which store.
 */
import { strict as assert } from 'node:assert'
import { describe, test } from 'node:test'
import { isDomicileError } from '../../../src/errors.js'
import { allStores, chooseCell, shown, storeLabel, type CellMap } from '../../../src/regions/placement.js'
import { RegionRouter } from '../../../src/regions/router.js'

const cells: CellMap = new Map([['eu-west-1', ['a', 'b', 'c']], ['us-east-1', ['main']]])
const code = (c: string) => (e: unknown) => isDomicileError(e) && e.code === c

describe('placement', () => {
  test('a new tenant goes to the cell with the fewest tenants; ties go to the first in configuration order', () => {
    assert.equal(chooseCell('eu-west-1', cells, new Map()), 'a')
    assert.equal(chooseCell('eu-west-1', cells, new Map([['a', 2], ['b', 1], ['c', 1]])), 'b')
    assert.equal(chooseCell('eu-west-1', cells, new Map([['a', 2], ['b', 2]])), 'c', 'a cell absent from the counts has none')
    assert.equal(chooseCell('us-east-1', cells, new Map([['main', 9]])), 'main')
  })

  test('a moving tenant never goes back to its own cell; none is left in a one-cell region', () => {
    assert.equal(chooseCell('eu-west-1', cells, new Map(), { exclude: 'a' }), 'b')
    assert.equal(chooseCell('eu-west-1', cells, new Map([['b', 5]]), { exclude: 'a' }), 'c')
    assert.equal(chooseCell('us-east-1', cells, new Map(), { exclude: 'main' }), undefined)
  })

  test('a named cell must be one of the region\'s; an unknown region is refused', () => {
    assert.equal(chooseCell('eu-west-1', cells, new Map([['c', 100]]), { requested: 'c' }), 'c', 'a named cell wins over the counts')
    assert.throws(() => chooseCell('eu-west-1', cells, new Map(), { requested: 'main' }), code('ERR_CELL_UNKNOWN'))
    assert.throws(() => chooseCell('ap-south-1', cells, new Map()), code('ERR_REGION_UNKNOWN'))
  })

  test('stores are named region/cell only in a region with several cells', () => {
    assert.equal(storeLabel({ region: 'eu-west-1', cell: 'b' }, cells), 'eu-west-1/b')
    assert.equal(storeLabel({ region: 'us-east-1', cell: 'main' }, cells), 'us-east-1')
    assert.deepEqual(allStores(cells).map((p) => storeLabel(p, cells)), ['eu-west-1/a', 'eu-west-1/b', 'eu-west-1/c', 'us-east-1'])
  })

  test('names from input are quoted, escaped and cut in messages', () => {
    assert.equal(shown('eu-west-1'), '"eu-west-1"')
    assert.equal(shown('a\nb'), '"a\\nb"')
    assert.equal(shown('x'.repeat(500)).length, 64 + 3)
  })

  test('the router resolves region and region/cell names, and nothing else', () => {
    const router = new RegionRouter(cells, () => false)
    assert.deepEqual(router.resolve('us-east-1'), { region: 'us-east-1', cell: 'main' })
    assert.deepEqual(router.resolve('eu-west-1/c'), { region: 'eu-west-1', cell: 'c' })
    assert.throws(() => router.resolve('eu-west-1'), code('ERR_CELL_UNKNOWN'), 'a region with several cells needs its cell named')
    assert.throws(() => router.resolve('eu-west-1/z'), code('ERR_CELL_UNKNOWN'))
    assert.throws(() => router.resolve('us-east-1/a'), code('ERR_CELL_UNKNOWN'))
    assert.throws(() => router.resolve('ap-south-1'), code('ERR_REGION_UNKNOWN'))
    assert.deepEqual(router.storesOf('eu-west-1').map((p) => p.cell), ['a', 'b', 'c'])
    assert.equal(router.stores.length, 4)
  })
})
