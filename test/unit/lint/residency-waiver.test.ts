/**
 * The schema's residency waiver (`residency: { notPersonal: 'reason' }`) and the config's optional
 * "lint" key: parsed, validated, and refused with the offending path when wrong.
 */
import { strict as assert } from 'node:assert'
import { describe, test } from 'node:test'
import { parseConfig } from '../../../src/config/load-config.js'
import { isDomicileError } from '../../../src/errors.js'
import { defineSchema, type ColumnDef } from '../../../src/schema/define-schema.js'

const plans = (name: ColumnDef) => defineSchema({ plans: { scope: 'global', primaryKey: 'id', columns: { id: { type: 'text' }, name } } })
const schemaError = (path: string) => (e: unknown) => isDomicileError(e, 'ERR_SCHEMA_INVALID') && e.path === path

describe('residency waiver in the schema', () => {
  test('a waived column keeps its reason (trimmed); others have none', () => {
    const s = plans({ type: 'text', residency: { notPersonal: '  a plan\'s product name ' } })
    assert.equal(s.table('plans').columns.get('name')!.notPersonal, 'a plan\'s product name')
    assert.equal(s.table('plans').columns.get('id')!.notPersonal, undefined)
  })

  test('Precondition: a residency waiver states its reason.', () => {
    assert.throws(() => plans({ type: 'text', residency: { notPersonal: '' } }), schemaError('tables.plans.columns.name.residency.notPersonal'))
    assert.throws(() => plans({ type: 'text', residency: { notPersonal: '   ' } }), schemaError('tables.plans.columns.name.residency.notPersonal'))
    assert.throws(() => plans({ type: 'text', residency: {} as never }), schemaError('tables.plans.columns.name.residency.notPersonal'))
    assert.throws(() => plans({ type: 'text', residency: { notPersonal: 7 } as never }), schemaError('tables.plans.columns.name.residency.notPersonal'))
  })

  test('a misspelt waiver option or a waiver that is not an object is an error', () => {
    assert.throws(() => plans({ type: 'text', residency: { notPersonel: 'x' } as never }), schemaError('tables.plans.columns.name.residency.notPersonel'))
    assert.throws(() => plans({ type: 'text', residency: 'x' as never }), schemaError('tables.plans.columns.name.residency'))
    assert.throws(() => plans({ type: 'text', notPersonal: 'x' } as never), schemaError('tables.plans.columns.name.notPersonal'))
  })

  test('Precondition: a sensitive column is personal by declaration, so it cannot be waived as not personal.', () => {
    assert.throws(() => defineSchema({ customers: { scope: 'tenant', primaryKey: 'id', columns: { id: { type: 'text' }, email: { type: 'text', sensitive: true, residency: { notPersonal: 'x' } } } } }),
      schemaError('tables.customers.columns.email.residency'))
  })
})

describe('"lint" in domicile.config.json', () => {
  const base = { regions: { eu: { driver: 'pglite', dataDir: 'eu' } }, controlPlane: { driver: 'pglite', dataDir: 'cp' }, schema: './schema.mjs' }
  const configError = (path: string) => (e: unknown) => isDomicileError(e, 'ERR_CONFIG_INVALID') && e.path === path

  test('sources resolve against the config file\'s directory; absent means no lint settings', () => {
    assert.deepEqual(parseConfig({ ...base, lint: { sources: ['src', '/abs/app'], sampleRows: 50 } }, '/app').lint, { sources: ['/app/src', '/abs/app'], sampleRows: 50 })
    assert.equal(parseConfig(base, '/app').lint, undefined)
  })

  test('wrong shapes are refused with their path', () => {
    assert.throws(() => parseConfig({ ...base, lint: ['src'] }, '/app'), configError('lint'))
    assert.throws(() => parseConfig({ ...base, lint: { sources: 'src' } }, '/app'), configError('lint.sources'))
    assert.throws(() => parseConfig({ ...base, lint: { sources: [''] } }, '/app'), configError('lint.sources[0]'))
    assert.throws(() => parseConfig({ ...base, lint: { source: ['src'] } }, '/app'), configError('lint.source'))
    assert.throws(() => parseConfig({ ...base, lint: { sampleRows: 0 } }, '/app'), configError('lint.sampleRows'))
  })
})
