/**
 * Encrypt-in-place of a populated plaintext column (issue #10, item 2), on real PostgreSQL with
 * two roles: three tenants with keys, 6,000 rows, a plaintext `text` column declared sensitive and
 * searchable. A concurrent writer inserts and updates rows throughout; the encryption runs in child
 * processes killed (SIGKILL) at chosen points (mid-batch, between batches, inside the swap
 * transaction) and is finished by running it again. Afterwards: --verify passes, a raw read
 * shows no plaintext, every row decrypts to what was last acknowledged, `find` works during and
 * after, and `migrate decrypt` (also killed once) restores the plaintext.
 */
import { strict as assert } from 'node:assert'
import { spawnSync } from 'node:child_process'
import { rmSync } from 'node:fs'
import { after, before, describe, test } from 'node:test'
import { internalsOf } from '../../src/domicile-internals.js'
import { isDomicileError } from '../../src/errors.js'
import { isSealedValue } from '../../src/fields/sealed-value.js'
import { decryptColumn, encryptColumn } from '../../src/ops/encrypt-column.js'
import { verifyColumn } from '../../src/ops/encrypt-column-verify.js'
import type { ProgressEvent } from '../../src/ops/progress.js'
import { REPO_ROOT } from '../support/cli.js'
import { postgresUnavailable } from '../support/pg-cluster.js'
import { initialNote, rowId, runChild, startEipFixture, type EipFixture } from '../support/encrypt-in-place-fixture.js'

const missing = postgresUnavailable()
const TENANTS = ['acme', 'globex', 'initech']
const ROWS = 2000

type Row = { id: string; n: number; note: unknown }

describe('encrypt-in-place of a populated plaintext column (real PostgreSQL)', { skip: missing }, () => {
  let f: EipFixture
  /** What each row must hold: the initial plaintext, then every write the writer was told succeeded. */
  const expected = new Map<string, string | null>()
  const key = (t: string, id: string) => `${t}/${id}`

  before(async () => {
    f = await startEipFixture('eip', TENANTS, ROWS)
    for (const t of TENANTS) for (let i = 0; i < ROWS; i++) expected.set(key(t, rowId(i)), initialNote(t, i))
  })

  after(async () => {
    await f?.close()
    if (f) rmSync(f.dir, { recursive: true, force: true })
  })

  async function columnTypes(): Promise<Record<string, string>> {
    const r = await f.su.query(`SELECT attname, format_type(atttypid, NULL) AS t FROM pg_attribute WHERE attrelid = 'notes'::regclass AND attnum > 0 AND NOT attisdropped`)
    return Object.fromEntries(r.rows.map((x) => [x.attname, x.t]))
  }

  /** Every row of every tenant, revealed through the public API, equals what was acknowledged. */
  async function assertContent(label: string): Promise<void> {
    let seen = 0
    for (const t of TENANTS) {
      let cursor: string | undefined
      const got = new Map<string, unknown>()
      do {
        const page = await f.d.withTenant(t, async (s) => {
          const p = await s.table<Row>('notes').list({ limit: 1000, ...(cursor ? { cursor } : {}) })
          for (const r of p.rows) assert.ok(r.note === null || isSealedValue(r.note), `${label}: ${t}/${r.id} comes back as a sealed value`)
          const open = await s.revealRows(p.rows, { purpose: 'encrypt-in-place test', columns: ['note'] })
          return { rows: open, next: p.nextCursor }
        })
        for (const r of page.rows) got.set(r.id, r.note)
        cursor = page.next
      } while (cursor)
      for (const [k, v] of expected) {
        if (!k.startsWith(`${t}/`)) continue
        const id = k.slice(t.length + 1)
        assert.ok(got.has(id), `${label}: row ${k} is present`)
        assert.equal(got.get(id), v, `${label}: row ${k} holds what was written`)
        seen++
      }
      assert.equal(got.size, [...expected.keys()].filter((k) => k.startsWith(`${t}/`)).length, `${label}: no extra rows for ${t}`)
    }
    assert.ok(seen >= TENANTS.length * ROWS)
  }

  /**
   * A concurrent writer through the public API (one transaction per call): inserts new rows and
   * updates existing ones, records each write once it is acknowledged, and checks `find` on the
   * searchable column now and then (normalised search: other case, surrounding spaces).
   */
  function startWriter(tag: string): { stop: () => Promise<{ writes: number; finds: number; retried: number }> } {
    let stop = false
    let writes = 0
    let finds = 0
    let retried = 0
    let i = 0
    const loop = (async () => {
      while (!stop) {
        const t = TENANTS[i % TENANTS.length]!
        const repo = f.d.tenant(t).table<Row>('notes')
        try {
          if (i % 3 === 0) {
            const id = `w-${tag}-${i}`
            const note = `written ${tag} ${i}`
            await repo.insert({ id, n: i, note })
            expected.set(key(t, id), note)
          } else if (i % 3 === 1) {
            const id = rowId((i * 7919) % ROWS)
            const note = i % 10 === 1 ? null : `updated ${tag} ${i}`
            await repo.update(id, { note })
            expected.set(key(t, id), note)
          } else {
            // An initial row not touched by the writer is found by its plaintext or its blind index.
            const j = ((i * 104729) % (ROWS / 2)) * 2 + 1
            const id = rowId(j)
            const want = expected.get(key(t, id))
            if (typeof want === 'string') {
              const found = await repo.find({ note: `  ${want.toUpperCase().replace('ÜNÏCODE', 'ünïcode')} ` } as Partial<Row>)
              assert.ok(found.some((r) => r.id === id), `find during ${tag}: ${t}/${id}`)
              finds++
            }
          }
          writes++
        } catch (e) {
          // A write that failed was not acknowledged, so it is not expected; retryable codes only.
          // (After a decrypt's swap the column is plaintext while the schema still says sensitive: writes are refused.)
          if (!(isDomicileError(e) && (e.code === 'ERR_CONFLICT' || (tag === 'dec' && e.code === 'ERR_NOT_MIGRATED')))) throw e
          retried++
        }
        i++
      }
    })()
    return {
      async stop() {
        stop = true
        await loop
        return { writes, finds, retried }
      },
    }
  }

  test('before the job: plaintext rows read as sealed values, reveal is audited, find matches them, writes are sealed at once', async () => {
    const types = await columnTypes()
    assert.equal(types.note, 'text')
    assert.equal(types.note__shadow, 'bytea', 'migrate added the shadow column')
    const row = await f.d.tenant('acme').table<Row>('notes').get(rowId(3))
    assert.ok(isSealedValue(row!.note))
    const before = await f.su.query(`SELECT count(*)::int AS n FROM domicile_audit WHERE tenant_id = 'acme' AND type = 'field.reveal'`)
    const plain = await f.d.withTenant('acme', (s) => s.reveal(row!.note, { purpose: 'test' }))
    assert.equal(plain, initialNote('acme', 3))
    const afterReveal = await f.su.query(`SELECT count(*)::int AS n FROM domicile_audit WHERE tenant_id = 'acme' AND type = 'field.reveal'`)
    assert.equal(afterReveal.rows[0].n, before.rows[0].n + 1, 'the reveal of a not-yet-sealed value is audited')
    const found = await f.d.tenant('acme').table<Row>('notes').find({ note: ' NOTE acme #3 ünïcode' } as Partial<Row>)
    assert.deepEqual(found.map((r) => r.id), [rowId(3)])
    // Another tenant's identical-looking text does not match (RLS + tenant filter).
    assert.deepEqual(await f.d.tenant('globex').table<Row>('notes').find({ note: 'note acme #3 ünïcode' } as Partial<Row>), [])
    await f.d.tenant('acme').table<Row>('notes').update(rowId(5), { note: 'sealed at once' })
    expected.set(key('acme', rowId(5)), 'sealed at once')
    const raw = await f.su.query(`SELECT note, note__shadow, note__bidx FROM notes WHERE tenant_id = 'acme' AND id = $1`, [rowId(5)])
    assert.equal(raw.rows[0].note, null, 'the plaintext is gone from the row')
    assert.ok(Buffer.isBuffer(raw.rows[0].note__shadow) && raw.rows[0].note__shadow[0] === 1, 'the new value is sealed')
    assert.ok(Buffer.isBuffer(raw.rows[0].note__bidx), 'with its blind index')
    assert.deepEqual((await f.d.tenant('acme').table<Row>('notes').find({ note: 'SEALED AT ONCE' } as Partial<Row>)).map((r) => r.id), [rowId(5)])
  })

  test('Precondition: the target is TABLE.COLUMN.', async () => {
    await assert.rejects(encryptColumn(f.d, 'notes'), (e: unknown) => isDomicileError(e) && e.code === 'ERR_INPUT_INVALID')
    await assert.rejects(encryptColumn(f.d, 'notes.n'), (e: unknown) => isDomicileError(e) && e.code === 'ERR_SCHEMA_INVALID')
    for (const concurrency of [0, 17, 1.5]) {
      await assert.rejects(encryptColumn(f.d, 'notes.note', { concurrency }), (e: unknown) => isDomicileError(e) && e.code === 'ERR_INPUT_INVALID' && e.path === 'concurrency')
    }
  })

  test('Precondition: a rate limit is a positive number of rows per second.', async () => {
    for (const maxRowsPerSecond of [0, -5, Number.NaN, Number.POSITIVE_INFINITY]) {
      await assert.rejects(encryptColumn(f.d, 'notes.note', { maxRowsPerSecond }), (e: unknown) => isDomicileError(e) && e.code === 'ERR_INPUT_INVALID' && e.path === 'maxRowsPerSecond')
    }
  })

  test('encrypt, killed (SIGKILL) mid-batch, between batches and inside the swap, then rerun: no row lost, none sealed twice; --verify passes', async () => {
    const writer = startWriter('enc')
    try {
      // 1. Killed inside the 3rd batch's transaction, after its UPDATE, before COMMIT.
      const k1 = await runChild(f, 'encrypt', 'batch:3')
      assert.equal(k1.signal, 'SIGKILL', k1.stderr)
      const afterK1 = await f.su.query(`SELECT count(*)::int AS n FROM notes WHERE note__shadow IS NOT NULL`)
      // 2. Killed after the 4th committed batch of the rerun.
      const k2 = await runChild(f, 'encrypt', 'convert:4')
      assert.equal(k2.signal, 'SIGKILL', k2.stderr)
      const afterK2 = await f.su.query(`SELECT count(*)::int AS n FROM notes WHERE note__shadow IS NOT NULL`)
      assert.ok(afterK2.rows[0].n >= afterK1.rows[0].n + 4 * 500 - 10, 'the committed batches of the killed run stay done')
      const progressLines = k2.stdout.split('\n').filter((l) => l.includes('"progress"'))
      assert.ok(progressLines.some((l) => /"state":"encrypt"/.test(l) && /"total":\d+/.test(l)), 'progress reports rows and a total')
      // 3. Killed inside the swap transaction (lock held, column dropped, not committed).
      const k3 = await runChild(f, 'encrypt', 'swap:1')
      assert.equal(k3.signal, 'SIGKILL', k3.stderr)
      const types = await columnTypes()
      assert.equal(types.note, 'text', 'the killed swap changed nothing')
      assert.equal(types.note__shadow, 'bytea')
      const running = await internalsOf(f.d).journal!.running('notes.note')
      assert.equal(running?.kind, 'encrypt-column', 'the journal still says the operation runs')
      // 4. Rerun in-process to the end, with --verify.
      const events: ProgressEvent[] = []
      const r = await encryptColumn(f.d, 'notes.note', { verify: true, progress: { update: (e) => events.push(e), note: () => undefined } })
      assert.equal(r.state, 'done')
      assert.equal(r.operation, running!.id, 'the rerun resumed the same operation')
      assert.ok(r.verify?.ok, JSON.stringify(r.verify))
      assert.equal(r.verify!.failed, 0)
      assert.ok(events.some((e) => e.state === 'swap'))
    } finally {
      const w = await writer.stop()
      assert.ok(w.writes > 50, `the writer kept going (${JSON.stringify(w)})`)
      assert.ok(w.finds > 10, `find worked during the job (${JSON.stringify(w)})`)
    }
    const types = await columnTypes()
    assert.equal(types.note, 'bytea', 'the swap left one sealed column')
    assert.equal(types.note__shadow, undefined, 'and no shadow')
    // Raw read: no plaintext anywhere in the table's live rows, and every value is a v1 sealed field.
    const raw = await f.su.query(`SELECT count(*)::int AS n,
        count(*) FILTER (WHERE position(convert_to('Note ', 'UTF8') IN note) > 0 OR position(convert_to('written ', 'UTF8') IN note) > 0 OR position(convert_to('updated ', 'UTF8') IN note) > 0)::int AS plain,
        count(*) FILTER (WHERE get_byte(note, 0) <> 1)::int AS bad FROM notes WHERE note IS NOT NULL`)
    assert.equal(raw.rows[0].plain, 0)
    assert.equal(raw.rows[0].bad, 0)
    assert.ok(raw.rows[0].n > TENANTS.length * ROWS * 0.9)
    // None sealed twice: each row's value opens under its own AAD (verify), and the audit has start/checkpoint/end.
    const audit = await f.su.query(`SELECT type, count(DISTINCT tenant_id)::int AS tenants FROM domicile_audit WHERE type LIKE 'column.encrypt.%' GROUP BY type ORDER BY type`)
    assert.deepEqual(audit.rows.map((x) => x.type), ['column.encrypt.checkpoint', 'column.encrypt.end', 'column.encrypt.start'])
    // Start and end are recorded for every tenant; checkpoints where a run converted the tenant's rows
    // (a tenant finished by a killed run may have none in the rerun, depending on where the kill fell).
    const by = new Map(audit.rows.map((x) => [x.type as string, x.tenants as number]))
    assert.equal(by.get('column.encrypt.start'), TENANTS.length)
    assert.equal(by.get('column.encrypt.end'), TENANTS.length)
    assert.ok((by.get('column.encrypt.checkpoint') ?? 0) >= 1)
    const journal = await internalsOf(f.d).journal!.list({ limit: 5 })
    assert.equal(journal.find((o) => o.target === 'notes.note')?.status, 'done')
    await assertContent('after encrypt')
    // After: find through the blind index only.
    for (const t of TENANTS) {
      const want = expected.get(key(t, rowId(11)))
      if (typeof want !== 'string') continue
      const found = await f.d.tenant(t).table<Row>('notes').find({ note: want.toUpperCase().replace('ÜNÏCODE', 'ünïcode') } as Partial<Row>)
      assert.ok(found.some((x) => x.id === rowId(11)), `find after: ${t}`)
    }
    // The dead row versions were vacuumed: the conversion left one per row (6,000); what remains is
    // under a tenth of that (the writer's own updates after the last VACUUM, statistics lag).
    const dead = await f.su.query(`SELECT n_dead_tup::int AS n FROM pg_stat_user_tables WHERE relname = 'notes'`)
    assert.ok(dead.rows[0].n < TENANTS.length * ROWS * 0.1, `dead tuples after the job: ${dead.rows[0].n}`)
  })

  test('--verify fails on a value that is not a sealed value of its own row', async () => {
    // Copy one row's sealed value onto another row (raw, as an attacker with the owner's login could).
    await f.su.query(`UPDATE notes SET note = (SELECT note FROM notes WHERE tenant_id = 'acme' AND id = $1) WHERE tenant_id = 'acme' AND id = $2`, [rowId(1), rowId(3)])
    const v = await verifyColumn(f.d, 'notes.note', 'encrypt')
    assert.equal(v.ok, false)
    assert.equal(v.failed, 1)
    assert.deepEqual(v.regions[0]!.failedTenants, ['acme'])
    // Put it back the way the application would: a write through the data layer.
    await f.d.tenant('acme').table<Row>('notes').update(rowId(3), { note: 'repaired' })
    expected.set(key('acme', rowId(3)), 'repaired')
    assert.ok((await verifyColumn(f.d, 'notes.note', 'encrypt')).ok)
  })

  test('--verify counts a row the owner sees and its tenant cannot, and not the application writing during the check', async () => {
    const repo = f.d.tenant('acme').table<Row>('notes')
    // Enough rows that acme's values take more than one page of the check (2,000).
    const have = (await f.su.query(`SELECT count(note)::int AS n FROM notes WHERE tenant_id = 'acme'`)).rows[0].n as number
    for (let i = 0; i < Math.max(0, 2010 - have); i++) {
      const id = `z-${String(i).padStart(5, '0')}`
      await repo.insert({ id, n: i, note: `late ${i}` })
      expected.set(key('acme', id), `late ${i}`)
    }
    const last = (await f.su.query(`SELECT max(id) AS id FROM notes WHERE tenant_id = 'acme' AND note IS NOT NULL`)).rows[0].id as string
    // A row behind the read whose sealed value is put back during the check (the application's
    // write, replayed raw so that it lands exactly between two pages).
    await repo.insert({ id: 'a-race', n: 0, note: 'behind the read' })
    expected.set(key('acme', 'a-race'), 'behind the read')
    const saved = (await f.su.query(`SELECT encode(note, 'hex') AS h, encode(note__bidx, 'hex') AS b FROM notes WHERE tenant_id = 'acme' AND id = 'a-race'`)).rows[0] as { h: string; b: string }
    await f.su.query(`UPDATE notes SET note = NULL, note__bidx = NULL WHERE tenant_id = 'acme' AND id = 'a-race'`)
    // After the check's first page of acme: clear a value ahead of the read and restore one behind
    // it. The counts before and after agree, the rows read are one short, and no row is hidden.
    const p = f.su as unknown as { connectionParameters: { host: string; port: number; user: string; database: string; password?: string } }
    const cp = p.connectionParameters
    const raceSql = `UPDATE notes SET note = NULL, note__bidx = NULL WHERE tenant_id = 'acme' AND id = '${last}';
      UPDATE notes SET note = decode('${saved.h}', 'hex'), note__bidx = decode('${saved.b}', 'hex') WHERE tenant_id = 'acme' AND id = 'a-race';`
    let raced = 0
    const v = await verifyColumn(f.d, 'notes.note', 'encrypt', {
      progress: {
        update: () => {
          if (raced++ !== 0) return
          // The callback is synchronous: the writes commit before the check reads its next page.
          const r = spawnSync(process.execPath, ['--input-type=module', '-e',
            `import pg from 'pg'; const c = new pg.Client(${JSON.stringify({ host: cp.host, port: cp.port, user: cp.user, database: cp.database, password: cp.password })}); await c.connect(); await c.query(${JSON.stringify(raceSql)}); await c.end()`],
          { cwd: REPO_ROOT, encoding: 'utf8' })
          assert.equal(r.status, 0, r.stderr)
        },
        note: () => undefined,
      },
    })
    expected.set(key('acme', last), null)
    assert.ok(raced > 1)
    assert.equal(v.unaccounted, 0, JSON.stringify(v))
    assert.ok(v.ok, JSON.stringify(v))
    // A row hidden from its tenant by a policy the owner added: counted, and the check fails.
    await repo.update(rowId(7), { note: 'hidden soon' })
    expected.set(key('acme', rowId(7)), 'hidden soon')
    await f.su.query(`CREATE POLICY hide_one ON notes AS RESTRICTIVE FOR SELECT USING (NOT (tenant_id = 'acme' AND id = '${rowId(7)}'))`)
    try {
      const hidden = await verifyColumn(f.d, 'notes.note', 'encrypt')
      assert.equal(hidden.ok, false)
      assert.equal(hidden.unaccounted, 1, JSON.stringify(hidden))
      assert.equal(hidden.failed, 0)
    } finally {
      await f.su.query(`DROP POLICY hide_one ON notes`)
    }
    assert.ok((await verifyColumn(f.d, 'notes.note', 'encrypt')).ok)
  })

  test('decrypt is the rollback: killed once, rerun with several tenants at once; plaintext restored row by row while the writer keeps going', async () => {
    const writer = startWriter('dec')
    let w
    try {
      const k = await runChild(f, 'decrypt', 'convert:3')
      assert.equal(k.signal, 'SIGKILL', k.stderr)
      const mid = await columnTypes()
      assert.equal(mid.note, 'bytea')
      assert.equal(mid.note__shadow, 'text', 'decrypting: plaintext goes to a text shadow')
      // Resumed with several tenants at once (each on its own connection), the writer still going.
      const r = await decryptColumn(f.d, 'notes.note', { verify: true, concurrency: 3 })
      assert.ok(r.verify?.ok, JSON.stringify(r.verify))
    } finally {
      w = await writer.stop()
    }
    assert.ok(w.writes > 20, JSON.stringify(w))
    const types = await columnTypes()
    assert.equal(types.note, 'text')
    assert.equal(types.note__shadow, undefined)
    // Raw read: the plaintext is back, row by row.
    const raw = await f.su.query(`SELECT tenant_id, id, note FROM notes`)
    const got = new Map(raw.rows.map((x) => [key(x.tenant_id, x.id), x.note]))
    assert.equal(got.size, expected.size)
    for (const [k, v] of expected) assert.equal(got.get(k), v, `row ${k} after decrypt`)
    // With the schema still declaring the column sensitive, the data layer writes no plaintext outside a migration.
    await assert.rejects(f.d.tenant('acme').table<Row>('notes').update(rowId(9), { note: 'x' }), (e: unknown) => isDomicileError(e) && e.code === 'ERR_NOT_MIGRATED')
    // Reads still work, and the decrypt's reveals were audited.
    const row = await f.d.tenant('acme').table<Row>('notes').get(rowId(9))
    assert.ok(isSealedValue(row!.note) || row!.note === null)
    const reveals = await f.su.query(`SELECT count(*)::int AS n FROM domicile_audit WHERE type = 'field.reveal' AND detail->>'purpose' LIKE 'domicile migrate decrypt%'`)
    assert.ok(reveals.rows[0].n >= TENANTS.length * ROWS * 0.9)
  })
})
