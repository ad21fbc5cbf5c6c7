/**
 * The SQL of a tenant move on adopted tables (issue #13): the copier and verifier filter on each
 * table's own tenant column (`company_id bigint`, or `id` of a table keyed by the tenant id alone)
 * and upsert on the table's real primary key; the COPY path casts its literal to the column's type;
 * a tenant id the column cannot hold matches no row; another tenant's row with the same key in
 * the target is never overwritten; the target's sequences move past the copied keys, never back.
 * A table Domicile creates (`tenant_id text`) keeps its SQL. Runs on two embedded PGlite stores (the
 * batched path) and, when PostgreSQL 15 is installed, on two databases of one cluster (COPY).
 */
import { strict as assert } from 'node:assert'
import { after, before, describe, test } from 'node:test'
import { isDomicileError } from '../../../src/errors.js'
import { createPGliteDriver } from '../../../src/regions/drivers/pglite-driver.js'
import { createPostgresDriver } from '../../../src/regions/drivers/postgres-driver.js'
import type { StoreDriver, StoreSession } from '../../../src/regions/store-driver.js'
import { defineSchema } from '../../../src/schema/define-schema.js'
import { advanceSequences, applyRepairs, readChunk, writeChunk, type CopyChunk, copyFormat, deleteTenantRows, insertBatch, readBatch, readRows, remainingRows, upsertSql, type TableRepair } from '../../../src/ops/tenant-move-copier.js'
import { planTables, type MovePlan, type MoveTable } from '../../../src/ops/tenant-move-plan.js'
import { readTx, writeTx } from '../../../src/ops/tenant-move-sql.js'
import { contentHash, countRows, differingBuckets, rowHashes, summarize, type Bucketing } from '../../../src/ops/tenant-move-verifier.js'
import { postgresUnavailable, startPgCluster, type PgCluster } from '../../support/pg-cluster.js'

const schema = defineSchema({
  notes: { scope: 'tenant', primaryKey: 'id', columns: { id: { type: 'text' }, body: { type: 'text', nullable: true } } },
  accounts: { scope: 'tenant', adopted: true, tenantColumn: { name: 'id', type: 'bigint' }, primaryKey: 'id', columns: { name: { type: 'text' } } },
  contacts: {
    scope: 'tenant', adopted: true, tenantColumn: { name: 'company_id', type: 'bigint' }, primaryKey: ['company_id', 'id'],
    columns: { id: { type: 'bigint', default: true }, email: { type: 'text', sensitive: true } },
  },
  items: { scope: 'tenant', adopted: true, tenantColumn: { name: 'company_id', type: 'bigint' }, primaryKey: 'id', columns: { id: { type: 'uuid' }, label: { type: 'text' } } },
})

/** The application's own DDL, the same in both regions. */
const APP_DDL = `
  CREATE TABLE notes (tenant_id text NOT NULL, id text NOT NULL, body text, PRIMARY KEY (tenant_id, id));
  CREATE TABLE accounts (id bigint PRIMARY KEY, name text NOT NULL);
  CREATE TABLE contacts (company_id bigint NOT NULL REFERENCES accounts (id), id bigserial, email text, PRIMARY KEY (company_id, id));
  CREATE TABLE items (id uuid PRIMARY KEY, company_id bigint NOT NULL REFERENCES accounts (id), label text NOT NULL);`

const uuid = (n: number): string => `00000000-0000-4000-8000-${n.toString().padStart(12, '0')}`

const SOURCE_DATA = `
  INSERT INTO accounts VALUES (7, 'seven'), (8, 'eight');
  INSERT INTO contacts (company_id, email) SELECT 7, 'c' || g || '@seven.example' FROM generate_series(1, 40) g;
  INSERT INTO contacts (company_id, email) SELECT 8, 'c' || g || '@eight.example' FROM generate_series(1, 5) g;
  INSERT INTO items SELECT ('00000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid, 7, 'item ' || g FROM generate_series(1, 20) g;
  INSERT INTO items VALUES ('${uuid(100)}', 8, 'theirs');
  INSERT INTO notes VALUES ('7', 'n1', 'seven''s note'), ('acme', 'n1', 'acme''s note');`

/** Another tenant (9) already lives in the target region. */
const TARGET_DATA = `
  INSERT INTO accounts VALUES (9, 'nine');
  INSERT INTO contacts (company_id, email) VALUES (9, 'a@nine.example'), (9, 'b@nine.example');
  INSERT INTO items VALUES ('${uuid(900)}', 9, 'nine''s');`

/** The bucketing of moves planned now. */
const BK: Bucketing = { bits: 8, hash: 'hashtext' }

const one = async (s: StoreSession, sql: string, params: unknown[] = []): Promise<unknown> => Object.values((await s.query(sql, params)).rows[0] ?? {})[0]

async function sameEverywhere(src: StoreSession, dst: StoreSession, plan: MovePlan, tenant: string): Promise<void> {
  for (const t of plan.tables) {
    const [a, b] = [await summarize(src, t, tenant, BK), await summarize(dst, t, tenant, BK)]
    assert.equal(b.rows, a.rows, `${t.name}: rows`)
    assert.equal(contentHash(b), contentHash(a), `${t.name}: content`)
  }
}

/** One catch-up round as the move runs it: buckets that differ, their rows, repairs in one target transaction. */
async function catchUp(src: StoreSession, dst: StoreSession, plan: MovePlan, tenant: string): Promise<number> {
  const repairs: TableRepair[] = []
  for (const t of plan.tables) {
    const diff = differingBuckets(await summarize(src, t, tenant, BK), await summarize(dst, t, tenant, BK))
    if (diff.length === 0) continue
    const [ha, hb] = [await rowHashes(src, t, tenant, BK, diff), await rowHashes(dst, t, tenant, BK, diff)]
    const upsert = [...ha].filter(([k, m]) => hb.get(k) !== m).map(([k]) => k)
    const remove = [...hb.keys()].filter((k) => !ha.has(k))
    repairs.push({ table: t, upsert: await readRows(src, t, tenant, upsert), remove })
  }
  return repairs.length === 0 ? 0 : applyRepairs(dst, plan, tenant, repairs)
}

async function copyBatched(src: StoreSession, dst: StoreSession, plan: MovePlan, tenant: string): Promise<void> {
  for (const t of plan.tables) {
    let after: string | null = null
    for (;;) {
      const b = await readTx(src, () => readBatch(src, t, tenant, after, 16))
      if (b.rows > 0) await writeTx(dst, () => insertBatch(dst, t, b))
      if (b.rows < 16) break
      after = b.last
    }
  }
}

async function copyStreamed(src: StoreSession, dst: StoreSession, plan: MovePlan, tenant: string, format?: 'text'): Promise<void> {
  for (const t of plan.tables) {
    const f = format ?? await copyFormat(src, dst, t)
    let after: string | null = null
    for (;;) {
      const c: CopyChunk = await readTx(src, async () => {
        const chunk = await readChunk(src, t, tenant, after, 16, f)
        await writeChunk(dst, chunk, plan.deferred)
        return chunk
      })
      if (c.last === null) break
      after = c.last
    }
  }
}

const table = (plan: MovePlan, name: string): MoveTable => plan.tables.find((t) => t.name === name)!

/** The whole scenario on a source and a target session; `copy` is the bulk-copy path under test. */
async function scenario(src: StoreSession, dst: StoreSession, copy: (plan: MovePlan) => Promise<void>): Promise<void> {
  await src.exec(APP_DDL + SOURCE_DATA)
  await dst.exec(APP_DDL + TARGET_DATA)
  const plan = await planTables(schema, src, dst)

  // The plan: parents first, each table's tenant column, real key and owned sequences.
  assert.ok(plan.tables.findIndex((t) => t.name === 'accounts') < plan.tables.findIndex((t) => t.name === 'contacts'))
  assert.deepEqual(table(plan, 'notes').keyColumns, ['tenant_id', 'id'])
  assert.deepEqual(table(plan, 'notes').tenantColumn, { name: 'tenant_id', type: 'text' })
  assert.deepEqual(table(plan, 'contacts').keyColumns, ['company_id', 'id'])
  assert.deepEqual(table(plan, 'contacts').tenantColumn, { name: 'company_id', type: 'bigint' })
  assert.deepEqual(table(plan, 'accounts').keyColumns, ['id'])
  assert.deepEqual(table(plan, 'items').keyColumns, ['id'])
  // items.company_id (its foreign key to accounts) leads no index: the purge would scan items once
  // per deleted account row. contacts' foreign key is the leading column of its primary key.
  assert.deepEqual(plan.unindexedForeignKeys.map((f) => [f.table, [...f.columns], f.parent]), [['items', ['company_id'], 'accounts']])
  assert.deepEqual(table(plan, 'contacts').sequences, [{ sequence: 'contacts_id_seq', column: 'id' }])
  for (const n of ['notes', 'accounts', 'items']) assert.deepEqual(table(plan, n).sequences, [], n)

  // Bulk copy of tenant 7: its rows only, in every table.
  await copy(plan)
  await sameEverywhere(src, dst, plan, '7')
  assert.equal(await countRows(dst, table(plan, 'contacts'), '7'), 40)
  assert.equal(await countRows(dst, table(plan, 'items'), '7'), 20)
  assert.equal(await countRows(dst, table(plan, 'accounts'), '7'), 1)
  assert.equal(await countRows(dst, table(plan, 'notes'), '7'), 1)
  assert.equal(await countRows(dst, table(plan, 'contacts'), '8'), 0, 'no row of tenant 8 travelled')
  assert.equal(Number(await one(dst, 'SELECT count(*) FROM notes')), 1, 'no note of acme travelled')

  // The application writes on in the source: updates, deletes, inserts; catch-up repairs the target.
  await src.exec(`UPDATE contacts SET email = 'changed@seven.example' WHERE company_id = 7 AND id = 3;
    DELETE FROM items WHERE id = '${uuid(4)}'; INSERT INTO items VALUES ('${uuid(21)}', 7, 'new');
    INSERT INTO contacts (company_id, email) VALUES (7, 'late@seven.example');
    UPDATE accounts SET name = 'Seven Ltd' WHERE id = 7; UPDATE notes SET body = 'edited' WHERE tenant_id = '7'`)
  assert.ok(await catchUp(src, dst, plan, '7') >= 6)
  await sameEverywhere(src, dst, plan, '7')
  assert.equal(await catchUp(src, dst, plan, '7'), 0)

  // The target's sequence moves past the copied keys (46: after tenant 8's 41..45), once, never back.
  assert.equal(await advanceSequences(dst, plan, '7'), 1)
  assert.equal(Number(await one(dst, 'SELECT last_value FROM contacts_id_seq')), 46)
  assert.equal(await advanceSequences(dst, plan, '7'), 0)
  await dst.query("SELECT setval('contacts_id_seq', 1000)")
  assert.equal(await advanceSequences(dst, plan, '7'), 0)
  assert.equal(Number(await one(dst, "SELECT nextval('contacts_id_seq')")), 1001, 'never set back')
  const inserted = await dst.query<{ id: string }>("INSERT INTO contacts (company_id, email) VALUES (7, 'after@seven.example') RETURNING id::text AS id")
  assert.equal(inserted.rows[0]!.id, '1002')

  // A tenant id the bigint column cannot hold has no rows there (no error); the text table still answers.
  assert.equal(await countRows(src, table(plan, 'contacts'), 'acme'), 0)
  assert.equal((await readTx(src, () => readBatch(src, table(plan, 'contacts'), 'acme', null, 16))).rows, 0)
  assert.equal(await countRows(src, table(plan, 'notes'), 'acme'), 1)
  assert.equal(await countRows(src, table(plan, 'contacts'), '007'), 0, 'not the canonical form of 7')

  // Tenant 9 (at home in the target) is untouched by the move and its purge.
  await writeTx(dst, () => deleteTenantRows(dst, plan, '7'), { deferred: plan.deferred })
  assert.deepEqual(await remainingRows(dst, plan, '7'), { notes: 0, accounts: 0, contacts: 0, items: 0 })
  assert.deepEqual(Object.values(await remainingRows(dst, plan, '9')).reduce((a, b) => a + b, 0), 4)

  // An item of tenant 7 whose uuid another tenant's row holds in the target: never overwritten, the repair refused.
  await dst.exec(`INSERT INTO accounts VALUES (7, 'seven'); INSERT INTO items VALUES ('${uuid(5)}', 9, 'nine''s own')`)
  const items = table(plan, 'items')
  const batch = await readTx(src, () => readBatch(src, items, '7', null, 100))
  assert.equal(await writeTx(dst, () => insertBatch(dst, items, batch)), 19, 'the colliding row is left out of the bulk copy')
  // The upsert itself does not touch another tenant's row either.
  assert.equal((await dst.query(upsertSql(items), [(await readRows(src, items, '7', [uuid(5)])).data])).rowCount, 0)
  await assert.rejects(catchUp(src, dst, plan, '7'), (e: unknown) => isDomicileError(e, 'ERR_CONFLICT') && /another tenant/.test(e.message) && !e.message.includes(uuid(5)))
  assert.deepEqual((await dst.query('SELECT company_id::text AS c, label FROM items WHERE id = $1', [uuid(5)])).rows, [{ c: '9', label: "nine's own" }])

  // The plan still refuses regions whose tables differ.
  await dst.exec('ALTER TABLE contacts ADD COLUMN extra text')
  await assert.rejects(planTables(schema, src, dst), (e: unknown) => isDomicileError(e, 'ERR_NOT_MIGRATED'))
}

describe('tenant move SQL on adopted tables', () => {
  test('the upsert targets the real primary key; only a key without the tenant column gets the tenant guard', async () => {
    const fake = (name: string, tenantColumn: { name: string; type: 'text' | 'bigint' }, keyColumns: string[], columns: string[]) =>
      ({ name, tenantColumn, keyColumns, columns, def: schema.table(name) }) as unknown as MoveTable
    assert.equal(upsertSql(fake('notes', { name: 'tenant_id', type: 'text' }, ['tenant_id', 'id'], ['tenant_id', 'id', 'body'])),
      'INSERT INTO "notes" SELECT r.* FROM unnest($1::"notes"[]) r ON CONFLICT ("tenant_id", "id") DO UPDATE SET "body" = EXCLUDED."body"')
    assert.equal(upsertSql(fake('contacts', { name: 'company_id', type: 'bigint' }, ['company_id', 'id'], ['company_id', 'id', 'email'])),
      'INSERT INTO "contacts" SELECT r.* FROM unnest($1::"contacts"[]) r ON CONFLICT ("company_id", "id") DO UPDATE SET "email" = EXCLUDED."email"')
    assert.equal(upsertSql(fake('accounts', { name: 'id', type: 'bigint' }, ['id'], ['id', 'name'])),
      'INSERT INTO "accounts" SELECT r.* FROM unnest($1::"accounts"[]) r ON CONFLICT ("id") DO UPDATE SET "name" = EXCLUDED."name"')
    assert.equal(upsertSql(fake('items', { name: 'company_id', type: 'bigint' }, ['id'], ['id', 'company_id', 'label'])),
      'INSERT INTO "items" SELECT r.* FROM unnest($1::"items"[]) r ON CONFLICT ("id") DO UPDATE SET "label" = EXCLUDED."label" WHERE "items"."company_id" = EXCLUDED."company_id"')
  })

  describe('on PGlite (batched copy)', () => {
    const drivers: StoreDriver[] = []
    before(() => {
      drivers.push(createPGliteDriver({ dataDir: 'memory://' }), createPGliteDriver({ dataDir: 'memory://' }))
    })
    after(async () => {
      for (const d of drivers) await d.close()
    })
    test('copy, catch-up, sequences, purge and collisions', async () => {
      const [a, b] = drivers as [StoreDriver, StoreDriver]
      await a.withSession((src) => b.withSession((dst) => scenario(src, dst, (plan) => copyBatched(src, dst, plan, '7'))))
    })
  })

  const missing = postgresUnavailable()
  describe('on PostgreSQL (COPY)', { skip: missing }, () => {
    let cluster: PgCluster | undefined
    const drivers: StoreDriver[] = []
    before(async () => {
      cluster = await startPgCluster('adopted-move')
      for (const db of ['src_bin', 'dst_bin', 'src_text', 'dst_text', 'src_direct', 'dst_direct']) drivers.push(createPostgresDriver({ url: cluster.database(db) }))
    })
    after(async () => {
      for (const d of drivers) await d.close()
      cluster?.destroy()
    })
    test('binary COPY: the tenant literal is cast to the column type', async () => {
      const [a, b] = drivers as [StoreDriver, StoreDriver]
      await a.withSession((src) => b.withSession((dst) => scenario(src, dst, (plan) => copyStreamed(src, dst, plan, '7')), { role: 'owner' }), { role: 'owner' })
    })
    test('a chunk goes straight into the table; one the target refuses takes the staging way, from memory or streaming', async () => {
      const [a, b] = drivers.slice(4) as [StoreDriver, StoreDriver]
      await a.withSession((src) => b.withSession(async (dst) => {
        await src.exec(APP_DDL + SOURCE_DATA)
        await dst.exec(APP_DDL + TARGET_DATA)
        const plan = await planTables(schema, src, dst)
        const [accounts, contacts, items] = [table(plan, 'accounts'), table(plan, 'contacts'), table(plan, 'items')]
        const chunkOf = (t: MoveTable, memoryBytes?: number) => readTx(src, () => readChunk(src, t, '7', null, 1000, 'binary', memoryBytes))
        const staged = async () => Number(await one(dst, "SELECT count(*) FROM pg_class WHERE relname LIKE 'domicile_move_stage_%' AND relpersistence = 't'"))

        // The parent is not in the target: the target refuses the chunk; the rows wait for catch-up.
        const c1 = await chunkOf(contacts)
        assert.ok(c1.ended, 'a small chunk is held in memory')
        assert.deepEqual(await writeChunk(dst, c1, plan.deferred), { rows: 40, inserted: 0, chunkChecked: false })
        assert.equal(await staged(), 1, 'the refused chunk went through the staging table')
        // Parents first: the chunks go straight in (another session: a staging table would be a new one).
        await b.withSession(async (dst2) => {
          assert.deepEqual(await writeChunk(dst2, await chunkOf(accounts), plan.deferred), { rows: 1, inserted: 1, chunkChecked: false })
          assert.deepEqual(await writeChunk(dst2, await chunkOf(contacts), plan.deferred), { rows: 40, inserted: 40, chunkChecked: false })
          assert.equal(await staged(), 1, 'no staging table was made for the chunks that went straight in (the one counted is the first session\'s)')
          // The same chunk again (a chunk copied before a crash): refused straight, skipped staged.
          assert.deepEqual(await writeChunk(dst2, await chunkOf(contacts), plan.deferred), { rows: 40, inserted: 0, chunkChecked: false })
          assert.equal(Number(await one(dst2, "SELECT count(*) FROM contacts WHERE company_id = 7")), 40, 'nothing twice')
          // Another tenant's row holds one item's key: that row is left out, the others are in.
          await dst2.exec(`INSERT INTO items VALUES ('${uuid(5)}', 9, 'nine''s own')`)
          assert.deepEqual(await writeChunk(dst2, await chunkOf(items), plan.deferred), { rows: 20, inserted: 19, chunkChecked: false })
          assert.deepEqual((await dst2.query('SELECT company_id::text AS c FROM items WHERE id = $1', [uuid(5)])).rows, [{ c: '9' }])
          // A chunk larger than the memory bound streams through the staging table.
          await dst2.exec('DELETE FROM items WHERE company_id = 7')
          const big = await readTx(src, async () => {
            const c = await readChunk(src, items, '7', null, 1000, 'binary', 64)
            assert.equal(c.ended, false, 'more than 64 bytes: left streaming')
            return writeChunk(dst2, c, plan.deferred)
          })
          assert.deepEqual(big, { rows: 20, inserted: 19, chunkChecked: false })
          // The session goes on after each refusal.
          assert.equal(Number(await one(dst2, 'SELECT 1')), 1)
        }, { role: 'owner' })
        assert.equal(Number(await one(src, 'SELECT 1')), 1, 'so does the source')
      }, { role: 'owner' }), { role: 'owner' })
    })
    test('text COPY', async () => {
      const [, , a, b] = drivers as [StoreDriver, StoreDriver, StoreDriver, StoreDriver]
      await a.withSession((src) => b.withSession((dst) => scenario(src, dst, (plan) => copyStreamed(src, dst, plan, '7', 'text')), { role: 'owner' }), { role: 'owner' })
    })
  })
})
