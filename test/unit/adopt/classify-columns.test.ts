/**
 * Column judgements of `domicile adopt inspect`: model types, national-id shapes, and the evidence
 * behind sensitive-column suggestions and flagged global tables.
 */
import { strict as assert } from 'node:assert'
import { describe, test } from 'node:test'
import { columnFindings, modelType, suggestionEvidence, tenantColumnType } from '../../../src/adopt/classify-columns.js'
import { countNationalIds, countNinos, countSsns } from '../../../src/adopt/national-ids.js'
import { valueKinds, type ColumnSample } from '../../../src/adopt/sample-values.js'

const sample = (sampled: number, m: Partial<ColumnSample['matches']>): ColumnSample => ({ sampled, matches: { email: 0, phone: 0, iban: 0, 'national-id': 0, ...m } })

describe('adopt: column types', () => {
  test('catalog types map to the model types the brief names; others stay out', () => {
    const cases: Array<[string, string | undefined]> = [
      ['text', 'text'], ['varchar', 'text'], ['citext', 'text'], ['int4', 'integer'], ['int8', 'bigint'], ['bool', 'boolean'],
      ['numeric', 'numeric'], ['timestamptz', 'timestamptz'], ['jsonb', 'jsonb'], ['uuid', 'uuid'], ['bytea', 'bytea'],
      ['timestamp', undefined], ['date', undefined], ['int2', undefined], ['float8', undefined], ['json', undefined], ['bpchar', undefined], ['_text', undefined],
    ]
    for (const [baseType, want] of cases) assert.equal(modelType({ baseType, typeKind: 'b' }), want, baseType)
    assert.equal(modelType({ baseType: 'mood', typeKind: 'e' }), undefined, 'an enum')
  })

  test('tenant column types: text, integer, bigint, uuid', () => {
    assert.equal(tenantColumnType({ baseType: 'int8', typeKind: 'b' }), 'bigint')
    assert.equal(tenantColumnType({ baseType: 'int4', typeKind: 'b' }), 'integer')
    assert.equal(tenantColumnType({ baseType: 'varchar', typeKind: 'b' }), 'text')
    assert.equal(tenantColumnType({ baseType: 'uuid', typeKind: 'b' }), 'uuid')
    assert.equal(tenantColumnType({ baseType: 'numeric', typeKind: 'b' }), undefined)
    assert.equal(tenantColumnType({ baseType: 'bool', typeKind: 'b' }), undefined)
  })
})

describe('adopt: national ids', () => {
  test('US SSNs ddd-dd-dddd in issuable ranges, also inside text', () => {
    assert.equal(countSsns('123-45-6789'), 1)
    assert.equal(countSsns('SSN: 123-45-6789; spouse 234-56-7890.'), 2)
    for (const never of ['000-12-3456', '666-12-3456', '912-34-5678', '123-00-4567', '123-45-0000']) assert.equal(countSsns(never), 0, never)
    for (const other of ['123456789', '1123-45-6789', '123-45-67890', 'A123-45-6789', '2024-01-15', '123-45-6789-1']) assert.equal(countSsns(other), 0, other)
  })

  test('UK National Insurance numbers, compact or spaced, never-issued prefixes excluded', () => {
    assert.equal(countNinos('AB123456C'), 1)
    assert.equal(countNinos('NINO: AB 12 34 56 C'), 1)
    for (const never of ['QQ123456C', 'GB123456A', 'NK123456A', 'DA123456A', 'AO123456A', 'AB123456E', 'ab123456c', 'XAB123456C']) assert.equal(countNinos(never), 0, never)
    assert.equal(countNationalIds('123-45-6789 and AB123456C'), 2)
  })

  test('value kinds: e-mail, phone (with +), IBAN (mod 97), national id', () => {
    assert.deepEqual(valueKinds('ada@example.eu'), ['email'])
    assert.deepEqual(valueKinds('+44 20 7946 0958'), ['phone'])
    assert.deepEqual(valueKinds('DE89 3704 0044 0532 0130 00'), ['iban'])
    assert.deepEqual(valueKinds('DE89 3704 0044 0532 0130 01'), [], 'a wrong IBAN check digit')
    assert.deepEqual(valueKinds('123-45-6789'), ['national-id'])
    assert.deepEqual(valueKinds('{"a": "ada@example.eu", "b": "+1 202 555 0143"}'), ['email', 'phone'])
    assert.deepEqual(valueKinds('Campaign 7, budget 1000'), [])
  })
})

describe('adopt: sensitive-column evidence', () => {
  test('names and values give evidence in words', () => {
    const f = columnFindings('contacts', 'email', sample(50, { email: 47 }))
    assert.deepEqual(suggestionEvidence(f, 'tenant'), ['name looks like an email column', '47 of 50 sampled values look like emails'])
    assert.deepEqual(suggestionEvidence(columnFindings('contacts', 'national_id', undefined), 'tenant'), ['name looks like a national id column'])
    assert.deepEqual(suggestionEvidence(columnFindings('contacts', 'backup', sample(40, { phone: 4, 'national-id': 3 })), 'tenant'), ['4 of 40 sampled values look like phone numbers'])
  })

  test('tenant tables: a kind counts from 10% of the sample; global tables: from one value', () => {
    const f = columnFindings('things', 'notes', sample(100, { email: 9 }))
    assert.deepEqual(suggestionEvidence(f, 'tenant'), [], '9% is below the threshold')
    assert.deepEqual(suggestionEvidence(columnFindings('things', 'notes', sample(100, { email: 10 })), 'tenant'), ['10 of 100 sampled values look like emails'])
    assert.deepEqual(suggestionEvidence(f, 'global'), ['9 of 100 sampled values look like emails'])
    assert.deepEqual(suggestionEvidence(columnFindings('things', 'notes', sample(1, { email: 1 })), 'tenant'), ['1 of 1 sampled value looks like emails'])
  })

  test('a column called just "name" counts only on a table of people', () => {
    for (const table of ['companies', 'campaigns', 'plans', 'ads']) {
      const f = columnFindings(table, 'name', undefined)
      assert.equal(f.genericName, true, table)
      assert.deepEqual(suggestionEvidence(f, 'global'), [], table)
    }
    for (const table of ['contacts', 'users', 'customer_accounts', 'team_members']) {
      assert.deepEqual(suggestionEvidence(columnFindings(table, 'name', undefined), 'tenant'), ["name looks like a person's name column"], table)
    }
    assert.deepEqual(suggestionEvidence(columnFindings('campaigns', 'owner_name', undefined), 'tenant'), ["name looks like a person's name column"])
  })
})
