/**
 * Encrypt-in-place on the embedded default (PGlite): the same job as on PostgreSQL
 * (test/integration/encrypt-in-place.test.ts), in one process, over several batches per tenant so
 * that the keyset paging (each batch after the previous one's last key) is exercised. The
 * rows are written by the application before the column is declared sensitive; afterwards every
 * row reveals to what was written, the raw column holds sealed values only, search by the blind
 * index finds rows, and `migrate decrypt` (held to a rows-per-second limit) gives the plaintext back.
 */
import { strict as assert } from 'node:assert'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { createDomicile, parseConfig, type Domicile } from '../../src/index.js'
import { internalsOf } from '../../src/domicile-internals.js'
import { isSealedValue } from '../../src/fields/sealed-value.js'
import { decryptColumn, encryptColumn } from '../../src/ops/encrypt-column.js'

const TENANTS = ['acme', 'globex']
const ROWS = 230
const BATCH = 50
const REGION = 'eu-west-1'

const SCHEMA = (sensitive: boolean) => `export default {
  notes: { scope: 'tenant', primaryKey: 'id', columns: {
    id: { type: 'text' }, n: { type: 'integer' },
    note: { type: 'text', nullable: true${sensitive ? ", sensitive: { searchable: true, normalize: ['trim', 'lower'] }" : ''} },
  } },
}
`
const noteOf = (t: string, i: number): string | null => (i % 25 === 3 ? null : `Note ${t} #${i} ünïcode`)
const idOf = (i: number): string => `r${String(i).padStart(4, '0')}`
type Row = { id: string; n: number; note: unknown }

describe('encrypt-in-place on PGlite', () => {
  let dir: string
  let d: Domicile
  const open = (schema: string): Promise<Domicile> => createDomicile({
    config: parseConfig({
      regions: { [REGION]: { driver: 'pglite', dataDir: './eu' } },
      controlPlane: { driver: 'pglite', dataDir: './cp' },
      schema,
      keys: { dir: './keys' },
    }, dir),
  })

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'domicile-eip-pglite-'))
    writeFileSync(join(dir, 'schema-v1.mjs'), SCHEMA(false))
    writeFileSync(join(dir, 'schema-v2.mjs'), SCHEMA(true))
    // The application before: a plaintext column, rows written through it.
    const v1 = await open('./schema-v1.mjs')
    try {
      assert.ok((await v1.migrate()).every((r) => r.ok))
      for (const t of TENANTS) {
        const p = await v1.keys.provision(t, { custody: 'kms' })
        await v1.addTenant(t, { region: REGION, key: p.key, keyState: p.keyState })
        await v1.withTenant(t, async (s) => {
          for (let i = 0; i < ROWS; i++) await s.table<Row>('notes').insert({ id: idOf(i), n: i, note: noteOf(t, i) })
        })
      }
    } finally {
      await v1.close()
    }
    // The application after: the column declared sensitive and searchable.
    d = await open('./schema-v2.mjs')
    assert.ok((await d.migrate()).every((r) => r.ok))
  })

  after(async () => {
    await d?.close()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  /** The column as stored (owner session): text before the job and after decrypt, bytea after encrypt. */
  async function rawNotes(): Promise<Array<{ t: string; note: unknown }>> {
    const r = await internalsOf(d).router.withRegionAdmin(REGION, (s) => s.query<{ t: string; note: unknown }>('SELECT tenant_id AS t, note FROM notes ORDER BY tenant_id, id'))
    return r.rows
  }

  async function revealAll(t: string): Promise<Map<string, unknown>> {
    return d.withTenant(t, async (s) => {
      const page = await s.table<Row>('notes').list({ limit: 1000 })
      const open = await s.revealRows(page.rows, { purpose: 'encrypt-in-place test', columns: ['note'] })
      return new Map(open.map((r) => [r.id, r.note]))
    })
  }

  test('encrypt: every batch sealed, nothing left in plaintext, content and search intact; decrypt restores it', async () => {
    const before = await rawNotes()
    assert.equal(before.length, TENANTS.length * ROWS)
    assert.ok(before.some((r) => typeof r.note === 'string'), 'the column starts as plaintext')

    const states = new Set<string>()
    const progress = { update: (e: { state: string }) => void states.add(e.state), note: () => undefined }
    const r = await encryptColumn(d, 'notes.note', { batchSize: BATCH, verify: true, progress })
    const nonNull = TENANTS.length * ROWS - TENANTS.length * Math.ceil(ROWS / 25)
    assert.equal(r.rows, nonNull, 'every non-null value converted once')
    assert.equal(r.verify?.ok, true)
    assert.ok(states.has('encrypt') && states.has('swap'))

    const after = await rawNotes()
    assert.equal(after.length, TENANTS.length * ROWS)
    for (const row of after) assert.ok(row.note === null || (row.note instanceof Uint8Array && !Buffer.from(row.note).toString('utf8').includes('Note')), 'no plaintext left in the column')
    for (const t of TENANTS) {
      const got = await revealAll(t)
      assert.equal(got.size, ROWS)
      for (let i = 0; i < ROWS; i++) assert.equal(got.get(idOf(i)), noteOf(t, i), `${t}/${idOf(i)}`)
      const found = await d.tenant(t).table<Row>('notes').find({ note: `  NOTE ${t.toUpperCase()} #201 ünïcode ` } as Partial<Row>)
      assert.deepEqual(found.map((x) => x.id), [idOf(201)])
      assert.ok(isSealedValue(found[0]!.note))
    }

    // The rollback, held to 150 rows a second: ~2.6 s from the first batch to the last (unheld:
    // ~0.15 s here); at least half of that, whatever the first batch cost a loaded machine.
    const RATE = 150
    let first = 0
    let last = 0
    const timing = { update: (e: { state: string }) => { if (e.state === 'decrypt') { first ||= performance.now(); last = performance.now() } }, note: () => undefined }
    const back = await decryptColumn(d, 'notes.note', { batchSize: BATCH, maxRowsPerSecond: RATE, progress: timing })
    assert.equal(back.rows, nonNull)
    const minMs = ((nonNull - BATCH) / RATE) * 1000
    assert.ok(last - first >= minMs / 2, `the rate limit held: ${Math.round(last - first)} ms for ${nonNull} rows at ${RATE} rows/s (at least ${Math.round(minMs / 2)} ms)`)
    const plain = await rawNotes()
    for (const t of TENANTS) {
      const mine = plain.filter((x) => x.t === t)
      assert.deepEqual(mine.map((x) => x.note), Array.from({ length: ROWS }, (_, i) => noteOf(t, i)), `${t}: plaintext restored in key order`)
    }
  })
})
