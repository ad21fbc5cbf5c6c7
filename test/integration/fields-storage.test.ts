/**
 * Field-level encryption through the data layer, on real (in-memory PGlite) region stores: what
 * the store physically holds, how sealed values behave in application code, blind-index search,
 * refusal of unsupported predicates, binding of ciphertext to its row and column, tamper
 * detection, and the audited, purpose-bound reveal (which survives a rollback).
 */
import { after, before, describe, test } from 'node:test'
import { strict as assert } from 'node:assert'
import { inspect } from 'node:util'
import { DecryptionFailedError, type DomicileError } from '../../src/errors.js'
import type { Row } from '../../src/index.js'
import { createDomicileFixture, rejectsWithCode, type DomicileFixture } from '../support/domicile-fixture.js'

const REGION = 'eu-west-1'

function bytes(v: unknown): Buffer {
  assert.ok(v instanceof Uint8Array, `expected bytea as a Uint8Array, got ${typeof v}`)
  return Buffer.from(v)
}

/** Asserts `haystack` holds `plain` neither as UTF-8 text nor as hex (any case). */
function assertNoPlaintext(haystack: Buffer | string, plain: string, where: string): void {
  const text = typeof haystack === 'string' ? haystack : haystack.toString('latin1')
  const hex = (typeof haystack === 'string' ? Buffer.from(haystack, 'utf8') : haystack).toString('hex')
  const plainHex = Buffer.from(plain, 'utf8').toString('hex')
  assert.ok(!text.includes(plain), `${where}: plaintext found as text`)
  assert.ok(!text.toLowerCase().includes(plainHex), `${where}: plaintext found as hex digits`)
  assert.ok(!hex.includes(plainHex), `${where}: plaintext bytes found`)
}

describe('sealed fields in the data layer', { concurrency: false }, () => {
  let fx: DomicileFixture

  before(async () => {
    fx = await createDomicileFixture({ regions: [REGION] })
  })
  after(async () => {
    await fx?.close()
  })

  test('sensitive columns are stored as ciphertext; a 16-byte value costs at most 40 bytes more', async () => {
    await fx.addTenant('store-a', { region: REGION })
    const email = ' Ada.Lovelace@Example.EU '
    const taxId = 'DE12345678901234' // 16 bytes
    await fx.domicile.withTenant('store-a', (s) => s.table('customers').insert({ id: 'c1', name: 'Ada', email, tax_id: taxId, plan: 'pro' }))

    // Through the tenant's own transaction (RLS-bound role) ...
    const [raw] = await fx.domicile.withTenant('store-a', (s) => s.sql<Row>('SELECT email, tax_id, email__bidx FROM customers WHERE id = $1', ['c1']))
    assert.ok(raw)
    const storedEmail = bytes(raw.email)
    const storedTax = bytes(raw.tax_id)
    for (const plain of [email, email.trim(), email.trim().toLowerCase(), taxId]) {
      assertNoPlaintext(storedEmail, plain, 'email column')
      assertNoPlaintext(storedTax, plain, 'tax_id column')
      assertNoPlaintext(bytes(raw.email__bidx), plain, 'email blind index')
    }
    assert.ok(storedTax.length - Buffer.byteLength(taxId) <= 40, `overhead ${storedTax.length - 16} bytes`)
    assert.ok(storedTax.length > Buffer.byteLength(taxId), 'the sealed value is longer than the plaintext')

    // ... and physically, as the store owner, in the text form of every row of the table.
    const dump = await fx.regionAdmin(REGION, (s) => s.query<{ t: string }>("SELECT t::text AS t FROM customers t WHERE tenant_id = 'store-a'"))
    assert.equal(dump.rows.length, 1)
    for (const plain of [email.trim(), email.trim().toLowerCase(), taxId]) assertNoPlaintext(dump.rows[0]!.t, plain, 'row dump')
    assert.match(dump.rows[0]!.t, /Ada/, 'non-sensitive columns are stored in the clear (the dump is real)')
  })

  test('reads return sealed values that never print their contents; insert and update take plaintext', async () => {
    await fx.addTenant('store-b', { region: REGION })
    const taxId = 'FR-9988776655'
    const row = await fx.domicile.withTenant('store-b', async (s) => {
      const inserted = await s.table('customers').insert({ id: 'c1', name: 'Émilie', email: 'emilie@example.fr', tax_id: taxId })
      for (const v of [inserted.email, inserted.tax_id]) assert.equal(String(v), '[sealed]')
      return s.table('customers').get('c1')
    })
    assert.ok(row)
    assert.equal(row.name, 'Émilie')
    for (const v of [row.email, row.tax_id]) {
      assert.equal(String(v), '[sealed]')
      assert.equal(`${v}`, '[sealed]')
      assert.equal(JSON.stringify(v), '"[sealed]"')
      assert.equal(inspect(v), '[sealed]')
      assert.ok(!inspect(v, { showHidden: true, depth: 10 }).includes('emilie'))
    }
    const printed = [JSON.stringify(row), inspect(row, { depth: 10, showHidden: true }), `${row.tax_id as string}`].join('\n')
    assert.ok(!printed.includes(taxId) && !printed.includes('emilie@'), printed)
    assert.match(JSON.stringify(row), /"tax_id":"\[sealed\]"/)

    const revealed = await fx.domicile.withTenant('store-b', async (s) => {
      await s.table('customers').update('c1', { tax_id: 'FR-0000000001' })
      const r = await s.table('customers').get('c1')
      return [await s.reveal(r!.tax_id, { purpose: 'test: update takes plaintext' }), await s.reveal(r!.email, { purpose: 'test' })]
    })
    assert.deepEqual(revealed, ['FR-0000000001', 'emilie@example.fr'])
  })

  test('equality search on a searchable column goes through the normalised blind index; other predicates are refused', async () => {
    await fx.addTenant('store-c', { region: REGION })
    await fx.domicile.withTenant('store-c', async (s) => {
      const c = s.table('customers')
      await c.insert({ id: 'c1', name: 'Ada', email: ' Ada@Example.eu', tax_id: 'DE1' })
      await c.insert({ id: 'c2', name: 'Bob', email: 'bob@example.eu', tax_id: 'DE2' })
      for (const probe of ['ada@example.eu', 'ADA@EXAMPLE.EU', '  Ada@Example.eu  ', '\tada@EXAMPLE.eu\n']) {
        const found = await c.find({ email: probe })
        assert.deepEqual(found.map((r) => r.id), ['c1'], `find({ email: ${JSON.stringify(probe)} })`)
      }
      assert.deepEqual((await c.find({ email: 'ada@example.com' })).map((r) => r.id), [])
      assert.deepEqual((await c.find({ email: 'bob@example.eu', name: 'Bob' })).map((r) => r.id), ['c2'])
      assert.deepEqual((await c.find({ email: 'bob@example.eu', name: 'Ada' })).map((r) => r.id), [])
      await rejectsWithCode(c.find({ tax_id: 'DE1' }), 'ERR_QUERY_UNSUPPORTED', 'find on a non-searchable sensitive column')
      await rejectsWithCode(c.find({ email: { like: '%a' } } as unknown as Row), 'ERR_QUERY_UNSUPPORTED', 'LIKE on a sensitive column')
      await rejectsWithCode(c.find({ email: { gt: 'a' } } as unknown as Row), 'ERR_QUERY_UNSUPPORTED', 'range on a sensitive column')
      await rejectsWithCode(c.find({ email__bidx: new Uint8Array(8) } as unknown as Row), 'ERR_COLUMN_UNKNOWN', 'the index column is not addressable')
    })
  })

  test('the blind index of one email differs between two tenants', async () => {
    await fx.addTenant('bidx-a', { region: REGION })
    await fx.addTenant('bidx-b', { region: REGION })
    for (const t of ['bidx-a', 'bidx-b']) {
      await fx.domicile.withTenant(t, (s) => s.table('customers').insert({ id: 'c1', name: 'Same', email: 'same@example.eu' }))
    }
    const r = await fx.regionAdmin(REGION, (s) => s.query<{ tenant_id: string; email__bidx: Uint8Array }>(
      "SELECT tenant_id, email__bidx FROM customers WHERE tenant_id IN ('bidx-a', 'bidx-b') ORDER BY tenant_id"))
    assert.equal(r.rows.length, 2)
    const [a, b] = r.rows.map((x) => bytes(x.email__bidx))
    assert.ok(a!.length >= 4 && b!.length >= 4)
    assert.ok(!a!.equals(b!), 'same email, two tenants: different blind indexes')
    // Within one tenant the index is deterministic (else search could not work).
    await fx.domicile.withTenant('bidx-a', (s) => s.table('customers').insert({ id: 'c2', name: 'Same again', email: 'SAME@example.eu ' }))
    const again = await fx.regionAdmin(REGION, (s) => s.query<{ email__bidx: Uint8Array }>("SELECT email__bidx FROM customers WHERE tenant_id = 'bidx-a' AND id = 'c2'"))
    assert.ok(bytes(again.rows[0]!.email__bidx).equals(a!))
  })

  test('ciphertext moved to another row or column, or with a flipped bit, fails opaquely; the rest of the row still reads', async () => {
    await fx.addTenant('tamper', { region: REGION })
    await fx.domicile.withTenant('tamper', async (s) => {
      const c = s.table('customers')
      await c.insert({ id: 'c1', name: 'One', email: 'one@example.eu', tax_id: 'TAX-ONE' })
      await c.insert({ id: 'c2', name: 'Two', email: 'two@example.eu', tax_id: 'TAX-TWO' })
      await c.insert({ id: 'c3', name: 'Three', email: 'three@example.eu', tax_id: 'TAX-THREE' })
    })
    // Inside the same tenant, with raw SQL: c1's tax_id onto c2, c1's email into c1's tax_id, one bit of c3's tax_id.
    const stored = await fx.domicile.withTenant('tamper', async (s) => {
      await s.sql("UPDATE customers SET tax_id = (SELECT tax_id FROM customers WHERE id = 'c1') WHERE id = 'c2'")
      await s.sql('UPDATE customers SET tax_id = email WHERE id = $1', ['c1'])
      const [r3] = await s.sql<Row>("SELECT tax_id FROM customers WHERE id = 'c3'")
      const flipped = bytes(r3!.tax_id)
      flipped[flipped.length - 20]! ^= 0x01
      await s.sql("UPDATE customers SET tax_id = $1 WHERE id = 'c3'", [flipped])
      return s.sql<Row>('SELECT id, tax_id FROM customers ORDER BY id')
    })
    assert.equal(stored.length, 3)

    const errors: DomicileError[] = []
    await fx.domicile.withTenant('tamper', async (s) => {
      const c = s.table('customers')
      for (const id of ['c2', 'c1', 'c3']) {
        const row = await c.get(id)
        assert.ok(row)
        errors.push(await rejectsWithCode(s.reveal(row.tax_id, { purpose: 'test: tamper' }), 'ERR_DECRYPTION_FAILED', `reveal of tampered ${id}.tax_id`))
        // The row's other fields are unaffected.
        assert.equal(await s.reveal(row.email, { purpose: 'test: tamper' }), `${String(row.name).toLowerCase()}@example.eu`)
        assert.ok(['One', 'Two', 'Three'].includes(String(row.name)))
      }
      // revealRows fails as a whole with the same opaque error.
      const page = await c.list()
      errors.push(await rejectsWithCode(s.revealRows(page.rows, { purpose: 'test: tamper page' }), 'ERR_DECRYPTION_FAILED', 'revealRows over tampered rows'))
    })
    const expected = new DecryptionFailedError().message
    for (const e of errors) {
      assert.equal(e.message, expected, 'one message for every failure kind')
      assert.equal(e.cause, undefined, 'no cause')
      assert.equal(e.name, 'DecryptionFailedError')
      for (const secret of ['TAX-ONE', 'TAX-TWO', 'TAX-THREE', 'one@example.eu']) assert.ok(!inspect(e).includes(secret))
    }
  })

  test('revealRows opens every sealed field of a page; reveal needs a purpose', async () => {
    await fx.addTenant('reveal-rows', { region: REGION })
    const people = [
      { id: 'a1', name: 'A', email: 'a@example.eu', tax_id: 'T-A', plan: 'pro' },
      { id: 'a2', name: 'B', email: 'b@example.eu', tax_id: null, plan: 'free' },
      { id: 'a3', name: 'C', email: null, tax_id: 'T-C', plan: null },
    ]
    await fx.domicile.withTenant('reveal-rows', async (s) => {
      for (const p of people) await s.table('customers').insert(p)
      const page = await s.table('customers').list({ limit: 10 })
      const open = await s.revealRows(page.rows, { purpose: 'test: export', actor: 'tester' })
      assert.deepEqual(open, people)
      // Only the named columns.
      const onlyEmail = await s.revealRows(page.rows, { purpose: 'test: export', columns: ['email'] })
      assert.equal(onlyEmail[0]!.email, 'a@example.eu')
      assert.equal(String(onlyEmail[0]!.tax_id), '[sealed]')

      const v = page.rows[0]!.tax_id
      await rejectsWithCode(s.reveal(v, undefined as never), 'ERR_INPUT_INVALID', 'reveal without options')
      await rejectsWithCode(s.reveal(v, {} as never), 'ERR_INPUT_INVALID', 'reveal without purpose')
      await rejectsWithCode(s.reveal(v, { purpose: '  ' }), 'ERR_INPUT_INVALID', 'reveal with a blank purpose')
      await rejectsWithCode(s.revealRows(page.rows, {} as never), 'ERR_INPUT_INVALID', 'revealRows without purpose')
      await rejectsWithCode(s.reveal('T-A', { purpose: 'test' }), 'ERR_INPUT_INVALID', 'reveal of a plain string')
    })
  })

  test('a reveal writes an audit row with identifiers and purpose, never plaintext', async () => {
    await fx.addTenant('audit-a', { region: REGION })
    const taxId = 'AUDIT-SECRET-4711'
    const purpose = 'support ticket 4711'
    const rows = await fx.domicile.withTenant('audit-a', async (s) => {
      await s.table('customers').insert({ id: 'cust-9', name: 'Audited', email: 'audited@example.eu', tax_id: taxId })
      const r = await s.table('customers').get('cust-9')
      assert.equal(await s.reveal(r!.tax_id, { purpose, actor: 'agent-7' }), taxId)
      return s.sql<{ tenant_id: string; type: string; outcome: string; actor: string | null; detail: Record<string, unknown> }>(
        "SELECT tenant_id, type, outcome, actor, detail FROM domicile_audit WHERE type = 'field.reveal' ORDER BY id")
    })
    assert.equal(rows.length, 1)
    const a = rows[0]!
    assert.equal(a.tenant_id, 'audit-a')
    assert.equal(a.outcome, 'ok')
    assert.equal(a.actor, 'agent-7')
    assert.deepEqual({ table: a.detail.table, column: a.detail.column, rowKey: a.detail.rowKey, purpose: a.detail.purpose },
      { table: 'customers', column: 'tax_id', rowKey: 'cust-9', purpose })
    const everything = await fx.regionAdmin(REGION, (s) => s.query<{ t: string }>("SELECT t::text AS t FROM domicile_audit t WHERE tenant_id = 'audit-a'"))
    assert.ok(everything.rows.length >= 1)
    for (const r of everything.rows) assertNoPlaintext(r.t, taxId, 'audit row')
  })

  test('a reveal in a scope that then rolls back still leaves its audit row', async () => {
    await fx.addTenant('audit-rb', { region: REGION })
    await fx.domicile.withTenant('audit-rb', (s) => s.table('customers').insert({ id: 'c1', name: 'Kept', tax_id: 'RB-SECRET' }))
    const purpose = 'rollback case'
    await assert.rejects(fx.domicile.withTenant('audit-rb', async (s) => {
      await s.table('customers').insert({ id: 'c2', name: 'Rolled back' })
      const r = await s.table('customers').get('c1')
      assert.equal(await s.reveal(r!.tax_id, { purpose, actor: 'agent-rb' }), 'RB-SECRET')
      throw new Error('boom after reveal')
    }), /boom after reveal/)
    const after = await fx.domicile.withTenant('audit-rb', async (s) => ({
      audit: await s.sql<{ outcome: string; actor: string | null; detail: Record<string, unknown> }>(
        "SELECT outcome, actor, detail FROM domicile_audit WHERE type = 'field.reveal' ORDER BY id"),
      c2: await s.table('customers').get('c2'),
    }))
    assert.equal(after.c2, undefined, 'the scope really rolled back')
    assert.equal(after.audit.length, 1, 'exactly one record of the reveal survives')
    assert.equal(after.audit[0]!.outcome, 'ok')
    assert.equal(after.audit[0]!.actor, 'agent-rb')
    assert.equal(after.audit[0]!.detail.purpose, purpose)
    assert.equal(after.audit[0]!.detail.rowKey, 'c1')
    assert.ok(!JSON.stringify(after.audit).includes('RB-SECRET'))
  })

  test("a sealed value of one tenant cannot be revealed in another tenant's scope", async () => {
    await fx.addTenant('owner-a', { region: REGION })
    await fx.addTenant('owner-b', { region: REGION })
    const sealed = await fx.domicile.withTenant('owner-a', async (s) => {
      const r = await s.table('customers').insert({ id: 'c1', name: 'A', tax_id: 'A-ONLY' })
      return r.tax_id
    })
    await fx.domicile.withTenant('owner-b', async (s) => {
      await s.table('customers').insert({ id: 'c1', name: 'B', tax_id: 'B-ONLY' })
      await rejectsWithCode(s.reveal(sealed, { purpose: 'test: cross-tenant' }), 'ERR_INPUT_INVALID', "reveal in another tenant's scope")
      const own = await s.table('customers').get('c1')
      await rejectsWithCode(s.revealRows([{ x: sealed }, own!], { purpose: 'test: cross-tenant' }), 'ERR_INPUT_INVALID', 'revealRows with a foreign value')
    })
    assert.equal(await fx.domicile.withTenant('owner-a', (s) => s.reveal(sealed, { purpose: 'test: own scope' })), 'A-ONLY')
  })
})
