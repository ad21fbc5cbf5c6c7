/**
 * The tamper-evident audit log (issue #12 item 4): a SHA-256 hash chain over every region's
 * `domicile_audit` and the control plane's `domicile_control_audit`, computed by the database at
 * commit, recomputed in Node by `verifyAuditChains` / `domicile audit verify`.
 *
 * Embedded PGlite and real PostgreSQL 15 in the README's two-role setup. Each kind of tampering
 * is done with raw SQL as the owner, then undone, and the chain must verify again (so a verifier
 * that always failed would fail the test too). Concurrent appends come from four Domicile
 * instances (four pools) revealing in parallel; SQL in a tenant scope must not be able to touch
 * the audit rows or the chain head.
 */
import { strict as assert } from 'node:assert'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { auditTail, createDomicile, parseConfig, verifyAuditChains, type ChainVerification, type Domicile } from '../../src/index.js'
import { chainHash } from '../../src/audit/audit-chain-hash.js'
import { internalsOf } from '../../src/domicile-internals.js'
import { isDomicileError } from '../../src/errors.js'
import { EXAMPLE_SCHEMA } from '../../src/cli/templates.js'
import type { StoreSession } from '../../src/regions/store-driver.js'
import { CHAIN_TIME_FORMAT, REGION_AUDIT_CHAIN } from '../../src/schema/audit-chain-ddl.js'
import { runCli } from '../support/cli.js'
import { createDomicileFixture, type DomicileFixture } from '../support/domicile-fixture.js'
import { postgresUnavailable, startPgCluster, twoRoleDatabases, type PgCluster } from '../support/pg-cluster.js'

const EU = 'eu-west-1'
const missing = postgresUnavailable()

type Admin = <T>(fn: (s: StoreSession) => Promise<T>) => Promise<T>
const regionAdmin = (d: Domicile): Admin => (fn) => internalsOf(d).router.withRegionAdmin(EU, fn)

async function seedAndReveal(d: Domicile, tenant: string, reveals: number): Promise<void> {
  await d.withTenant(tenant, (s) => s.table('customers').insert({ id: 'c1', name: 'Ada', email: `ada@${tenant}.example`, tax_id: 'TX-1' }))
  for (let i = 0; i < reveals; i++) {
    await d.withTenant(tenant, async (s) => {
      const row = await s.table('customers').get('c1')
      assert.equal(await s.reveal(row!.email, { purpose: `ticket ${i}`, actor: 'audit-test' }), `ada@${tenant}.example`)
    })
  }
}

async function regionChain(d: Domicile): Promise<ChainVerification> {
  const v = await verifyAuditChains(d, { region: EU, pageSize: 3 })
  assert.equal(v.chains.length, 1)
  return v.chains[0]!
}

async function headPosition(admin: Admin): Promise<number> {
  return admin(async (s) => Number((await s.query<{ p: string }>('SELECT position::text AS p FROM domicile_audit_chain')).rows[0]!.p))
}

const DISABLE = 'ALTER TABLE domicile_audit DISABLE TRIGGER domicile_audit_chain_link'
const ENABLE = 'ALTER TABLE domicile_audit ENABLE TRIGGER domicile_audit_chain_link'
const COLUMNS = 'id, tenant_id, at, type, outcome, actor, detail, chain_pos, prev_hash, hash'

interface TamperCase {
  readonly name: string
  /** Raw SQL as the owner; n is the chain's length before the tampering. */
  readonly tamper: (s: StoreSession, n: number) => Promise<void>
  readonly expect: (n: number) => { position: number | null; problem: string }
}

const shiftUpFrom = async (s: StoreSession, k: number): Promise<void> => {
  await s.query('UPDATE domicile_audit SET chain_pos = -chain_pos WHERE chain_pos >= $1', [k])
  await s.query('UPDATE domicile_audit SET chain_pos = -chain_pos + 1 WHERE chain_pos < 0')
}
const hashAt = async (s: StoreSession, pos: number): Promise<Uint8Array> =>
  (await s.query<{ hash: Uint8Array }>('SELECT hash FROM domicile_audit WHERE chain_pos = $1', [pos])).rows[0]!.hash

const TAMPERING: readonly TamperCase[] = [
  { name: 'an edited outcome', tamper: async (s) => { await s.query(`UPDATE domicile_audit SET outcome = 'denied' WHERE chain_pos = 4`) }, expect: () => ({ position: 4, problem: 'hash-mismatch' }) },
  { name: 'an edited detail (purpose)', tamper: async (s) => { await s.query(`UPDATE domicile_audit SET detail = detail || '{"purpose":"nothing to see"}'::jsonb WHERE chain_pos = 5`) }, expect: () => ({ position: 5, problem: 'hash-mismatch' }) },
  { name: 'an edited timestamp', tamper: async (s) => { await s.query(`UPDATE domicile_audit SET at = at - interval '1 microsecond' WHERE chain_pos = 2`) }, expect: () => ({ position: 2, problem: 'hash-mismatch' }) },
  { name: 'an edited record whose own hash was recomputed', tamper: async (s) => {
    await s.query(`UPDATE domicile_audit SET actor = 'someone-else' WHERE chain_pos = 4`)
    const r = (await s.query<{ id: string; tenant_id: string; at: string; type: string; outcome: string; actor: string; detail: string; prev_hash: Uint8Array }>(
      `SELECT id::text AS id, tenant_id, to_char(at AT TIME ZONE 'UTC', '${CHAIN_TIME_FORMAT}') AS at, type, outcome, actor, detail::text AS detail, prev_hash FROM domicile_audit WHERE chain_pos = 4`)).rows[0]!
    const h = chainHash(REGION_AUDIT_CHAIN.label, r.prev_hash, { position: 4n, id: BigInt(r.id), tenantId: r.tenant_id, at: r.at, type: r.type, outcome: r.outcome, actor: r.actor, detail: r.detail })
    await s.query('UPDATE domicile_audit SET hash = $1 WHERE chain_pos = 4', [h])
  }, expect: () => ({ position: 5, problem: 'prev-mismatch' }) },
  { name: 'a deleted middle record', tamper: async (s) => { await s.query('DELETE FROM domicile_audit WHERE chain_pos = 4') }, expect: () => ({ position: 4, problem: 'missing' }) },
  { name: 'a deleted first record', tamper: async (s) => { await s.query('DELETE FROM domicile_audit WHERE chain_pos = 1') }, expect: () => ({ position: 1, problem: 'missing' }) },
  { name: 'a deleted tail', tamper: async (s, n) => { await s.query('DELETE FROM domicile_audit WHERE chain_pos >= $1', [n - 1]) }, expect: (n) => ({ position: n - 1, problem: 'truncated' }) },
  { name: 'records reordered (positions 4 and 5 swapped)', tamper: async (s) => {
    await s.query('UPDATE domicile_audit SET chain_pos = -1 WHERE chain_pos = 4')
    await s.query('UPDATE domicile_audit SET chain_pos = 4 WHERE chain_pos = 5')
    await s.query('UPDATE domicile_audit SET chain_pos = 5 WHERE chain_pos = -1')
  }, expect: () => ({ position: 4, problem: 'prev-mismatch' }) },
  { name: 'a forged record inserted in the middle (naive hash)', tamper: async (s) => {
    await s.query(DISABLE)
    await shiftUpFrom(s, 4)
    await s.query(`INSERT INTO domicile_audit (${COLUMNS}) VALUES (999001, 'acme', now(), 'field.reveal', 'ok', 'forger', '{}'::jsonb, 4, $1, $2)`, [await hashAt(s, 3), Buffer.alloc(32, 0x11)])
    await s.query(ENABLE)
  }, expect: () => ({ position: 4, problem: 'hash-mismatch' }) },
  { name: 'a well-formed forged record inserted in the middle (hash computed with the public algorithm)', tamper: async (s) => {
    await s.query(DISABLE)
    await shiftUpFrom(s, 4)
    const prev = await hashAt(s, 3)
    const at = '2020-01-01T00:00:00.000000Z'
    const h = chainHash(REGION_AUDIT_CHAIN.label, prev, { position: 4n, id: 999002n, tenantId: 'acme', at, type: 'field.reveal', outcome: 'ok', actor: 'forger', detail: '{}' })
    await s.query(`INSERT INTO domicile_audit (${COLUMNS}) VALUES (999002, 'acme', $1::timestamptz, 'field.reveal', 'ok', 'forger', '{}'::jsonb, 4, $2, $3)`, [at, prev, h])
    await s.query(ENABLE)
  }, expect: () => ({ position: 5, problem: 'prev-mismatch' }) },
  { name: 'a record appended after the head without the chain', tamper: async (s, n) => {
    await s.query(DISABLE)
    await s.query(`INSERT INTO domicile_audit (${COLUMNS}) VALUES (999003, 'acme', now(), 'field.reveal', 'ok', 'forger', '{}'::jsonb, $1, $2, $3)`, [n + 1, await hashAt(s, n), Buffer.alloc(32, 0x22)])
    await s.query(ENABLE)
  }, expect: (n) => ({ position: n + 1, problem: 'beyond-head' }) },
  { name: 'a record written with the trigger disabled', tamper: async (s) => {
    await s.query(DISABLE)
    await s.query(`INSERT INTO domicile_audit (tenant_id, type, outcome) VALUES ('acme', 'field.reveal', 'ok')`)
    await s.query(ENABLE)
  }, expect: () => ({ position: null, problem: 'unchained' }) },
  { name: 'a chain head moved back (tail hidden from the head)', tamper: async (s, n) => {
    await s.query('UPDATE domicile_audit_chain SET position = $1', [n - 1])
  }, expect: (n) => ({ position: n - 1, problem: 'head-mismatch' }) },
]

/** Runs every tampering case on the chain of `d`'s region; each is undone afterwards. */
function tamperingSuite(get: () => Domicile): void {
  for (const c of TAMPERING) {
    test(`detects ${c.name}, naming the first bad position`, async () => {
      const d = get()
      const admin = regionAdmin(d)
      const clean = await regionChain(d)
      assert.equal(clean.ok, true, JSON.stringify(clean))
      const n = await headPosition(admin)
      assert.ok(n >= 8, `a chain of at least 8 records (${n})`)
      const head = await admin((s) => s.query<{ position: string; hash: Uint8Array }>('SELECT position::text AS position, hash FROM domicile_audit_chain')).then((r) => r.rows[0]!)
      await admin((s) => s.query(`CREATE TABLE audit_backup AS SELECT ${COLUMNS} FROM domicile_audit`))
      try {
        await admin((s) => c.tamper(s, n))
        const v = await regionChain(d)
        assert.equal(v.ok, false, `${c.name} must be detected: ${JSON.stringify(v)}`)
        assert.deepEqual({ position: v.firstBad?.position, problem: v.firstBad?.problem }, c.expect(n), v.firstBad?.message)
        assert.match(v.firstBad!.message, /cannot be trusted/)
      } finally {
        await admin(async (s) => {
          await s.query(DISABLE)
          await s.query('DELETE FROM domicile_audit')
          await s.query(`INSERT INTO domicile_audit (${COLUMNS}) SELECT ${COLUMNS} FROM audit_backup`)
          await s.query('DROP TABLE audit_backup')
          await s.query('UPDATE domicile_audit_chain SET position = $1::bigint, hash = $2', [head.position, head.hash])
          await s.query(ENABLE)
        })
      }
      const restored = await regionChain(d)
      assert.equal(restored.ok, true, `restored: ${JSON.stringify(restored)}`)
    })
  }
}

describe('audit hash chain (embedded PGlite)', () => {
  let fx: DomicileFixture
  let d: Domicile

  before(async () => {
    fx = await createDomicileFixture({ regions: [EU] })
    d = fx.domicile
    await fx.addTenant('acme', { region: EU })
    await seedAndReveal(d, 'acme', 6)
    await d.keys.revoke('acme', 'audit-test')
    await d.keys.restore('acme', 'audit-test')
  })
  after(async () => {
    await fx?.close()
  })

  test('a clean chain verifies: gapless positions, every hash recomputed in Node, the head at the last record', async () => {
    const v = await verifyAuditChains(d, { pageSize: 2 })
    assert.equal(v.ok, true, JSON.stringify(v))
    assert.deepEqual(v.chains.map((c) => c.store), [EU, 'control-plane'])
    assert.deepEqual(v.unavailable, [])
    const rows = await regionAdmin(d)((s) => s.query<{ pos: string; id: string }>('SELECT chain_pos::text AS pos, id::text AS id FROM domicile_audit ORDER BY chain_pos'))
    assert.deepEqual(rows.rows.map((r) => Number(r.pos)), rows.rows.map((_, i) => i + 1))
    assert.equal(v.chains[0]!.records, rows.rows.length)
    assert.equal(v.chains[0]!.head!.position, rows.rows.length)
    const cp = v.chains[1]!
    assert.ok(cp.records >= 3, 'tenant.add, key.revoke, key.restore (at least)')
    const types = await internalsOf(d).controlPlane.withSession((s) => s.query<{ type: string }>('SELECT type FROM domicile_control_audit ORDER BY chain_pos'), { role: 'owner' })
    assert.ok(types.rows.some((r) => r.type === 'key.revoke') && types.rows.some((r) => r.type === 'key.restore'), JSON.stringify(types.rows))
  })

  test('a record written in a transaction that rolls back takes no position (the retry after the rollback does)', async () => {
    const before = await headPosition(regionAdmin(d))
    await assert.rejects(d.withTenant('acme', async (s) => {
      const row = await s.table('customers').get('c1')
      await s.reveal(row!.email, { purpose: 'rolled back', actor: 'audit-test' })
      throw new Error('abort')
    }), /abort/)
    const v = await regionChain(d)
    assert.equal(v.ok, true, JSON.stringify(v))
    assert.ok(v.records > before, 'records after the rollback')
    const rolled = await regionAdmin(d)((s) => s.query<{ n: number }>(`SELECT count(*)::int AS n FROM domicile_audit WHERE detail->>'purpose' = 'rolled back'`))
    assert.equal(rolled.rows[0]!.n, 1, 'the reveal is recorded exactly once (after the rollback)')
  })

  tamperingSuite(() => d)

  test('audit tail: newest first, region and control plane, never the plaintext', async () => {
    const t = await auditTail(d, 'acme', { limit: 50 })
    assert.equal(t.region, EU)
    assert.ok(t.records.some((r) => r.store === 'region' && r.type === 'field.reveal'), 'a reveal record from the region')
    assert.ok(t.records.some((r) => r.store === 'control-plane' && r.type === 'key.revoke'), 'a key.revoke record from the control plane')
    const times = t.records.map((r) => r.at)
    assert.deepEqual(times, [...times].sort().reverse(), 'newest first')
    assert.ok(t.records.every((r) => r.hash === null || /^[0-9a-f]{64}$/.test(r.hash)), 'hashes are hex')
    const text = JSON.stringify(t)
    assert.ok(!text.includes('ada@acme.example') && !text.includes('TX-1'), 'no plaintext of a sensitive field')
    assert.equal((await auditTail(d, 'acme', { limit: 2 })).records.length, 2)
    await assert.rejects(auditTail(d, 'acme', { limit: 0 }), (e: unknown) => isDomicileError(e) && e.code === 'ERR_INPUT_INVALID')
    await assert.rejects(auditTail(d, 'nobody'), (e: unknown) => isDomicileError(e) && e.code === 'ERR_TENANT_UNKNOWN')
  })

  test('records stored before the chain existed are chained once by the upgrading migrate', async () => {
    const admin = regionAdmin(d)
    // The store as it was before the chain: no trigger, no head, no chain columns filled.
    await admin(async (s) => {
      await s.query('DROP TRIGGER domicile_audit_chain_link ON domicile_audit')
      await s.query('DROP TABLE domicile_audit_chain')
      await s.query('UPDATE domicile_audit SET chain_pos = NULL, prev_hash = NULL, hash = NULL')
    })
    const n = (await admin((s) => s.query<{ n: number }>('SELECT count(*)::int AS n FROM domicile_audit'))).rows[0]!.n
    const missingHead = await regionChain(d)
    assert.equal(missingHead.firstBad?.problem, 'head-missing')
    const results = await d.migrate()
    assert.ok(results.every((r) => r.ok), JSON.stringify(results))
    const v = await regionChain(d)
    assert.equal(v.ok, true, JSON.stringify(v))
    assert.equal(v.records, n)
    assert.equal(v.backfilled, n)
    // A second migrate changes nothing, and new records continue the chain.
    await d.migrate()
    await d.withTenant('acme', async (s) => { await s.reveal((await s.table('customers').get('c1'))!.email, { purpose: 'after upgrade', actor: 'audit-test' }) })
    const after = await regionChain(d)
    assert.equal(after.ok, true, JSON.stringify(after))
    assert.ok(after.records > n, 'new records continue the chain')
    assert.equal(after.backfilled, n)
  })
})

describe('audit hash chain (real PostgreSQL, two roles)', { skip: missing }, () => {
  let cluster: PgCluster
  let dir: string
  let d: Domicile
  let raw: Record<string, unknown>
  const extra: Domicile[] = []

  before(async () => {
    cluster = await startPgCluster('auditchain')
    dir = mkdtempSync(join(tmpdir(), 'domicile-audit-chain-'))
    const logins = await twoRoleDatabases(cluster)
    writeFileSync(join(dir, 'domicile.schema.mjs'), EXAMPLE_SCHEMA)
    raw = {
      regions: { [EU]: { driver: 'postgres', url: logins.dataUrl('eu'), ownerUrl: logins.ownerUrl('eu'), poolSize: 4 } },
      controlPlane: { driver: 'postgres', url: logins.dataUrl('control'), ownerUrl: logins.ownerUrl('control') },
      schema: './domicile.schema.mjs',
      keys: { dir: join(dir, 'keys') },
    }
    writeFileSync(join(dir, 'domicile.config.json'), JSON.stringify(raw))
    d = await createDomicile({ config: parseConfig(raw, dir) })
    const results = await d.migrate()
    assert.ok(results.every((r) => r.ok), JSON.stringify(results))
    for (const t of ['acme', 'globex']) {
      const p = await d.keys.provision(t, { custody: 'kms' })
      await d.addTenant(t, { region: EU, key: p.key, keyState: p.keyState })
      await seedAndReveal(d, t, 3)
    }
    await d.keys.revoke('globex', 'audit-test')
    await d.keys.restore('globex', 'audit-test')
  })

  after(async () => {
    for (const x of extra) await x.close().catch(() => undefined)
    await d?.close()
    cluster?.destroy()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  test('a clean chain verifies after reveals and key operations', async () => {
    const v = await verifyAuditChains(d)
    assert.equal(v.ok, true, JSON.stringify(v))
    assert.deepEqual(v.chains.map((c) => [c.store, c.ok]), [[EU, true], ['control-plane', true]])
    assert.ok(v.chains[0]!.records >= 8, 'at least 8 region records')
  })

  test('four pools revealing in parallel keep one valid chain (no fork, no gap, rollbacks included)', async () => {
    for (let i = 0; i < 4; i++) extra.push(await createDomicile({ config: parseConfig(raw, dir) }))
    const before = await headPosition(regionAdmin(d))
    const loop = async (x: Domicile, n: number): Promise<void> => {
      for (let i = 0; i < 12; i++) {
        const tenant = (i + n) % 2 === 0 ? 'acme' : 'globex'
        const run = x.withTenant(tenant, async (s) => {
          const row = await s.table('customers').get('c1')
          await s.reveal(row!.email, { purpose: `loop ${n}.${i}`, actor: `pool-${n}` })
          if (i % 5 === 4) throw new Error('rolled back on purpose')
        })
        if (i % 5 === 4) await assert.rejects(run, /on purpose/)
        else await run
      }
    }
    // Two loops per pool, four pools: eight transactions in flight at a time.
    await Promise.all(extra.flatMap((x, n) => [loop(x, 2 * n), loop(x, 2 * n + 1)]))
    const v = await regionChain(d)
    assert.equal(v.ok, true, JSON.stringify(v))
    const count = await regionAdmin(d)((s) => s.query<{ n: number; loops: number }>(
      `SELECT count(*)::int AS n, count(*) FILTER (WHERE detail->>'purpose' LIKE 'loop %')::int AS loops FROM domicile_audit`))
    assert.equal(v.records, count.rows[0]!.n, 'every record is on the chain')
    assert.ok(count.rows[0]!.loops >= 8 * 12, `each reveal recorded (${count.rows[0]!.loops})`)
    assert.ok(v.records - before >= 8 * 12, 'the loops appended their records')
  })

  test('SQL inside a tenant scope cannot write, edit or delete audit records or the chain head', async () => {
    const refused = async (sql: string): Promise<void> => {
      await assert.rejects(d.withTenant('acme', (s) => s.sql(sql)), (e: unknown) => {
        assert.ok(isDomicileError(e), `expected a DomicileError for ${sql}, got ${String(e)}`)
        assert.equal(e.code, 'ERR_PERMISSION_DENIED', `${sql}: ${e.message}`)
        return true
      })
    }
    await refused(`UPDATE domicile_audit SET outcome = 'denied'`)
    await refused(`UPDATE domicile_audit SET hash = NULL, chain_pos = NULL`)
    await refused('DELETE FROM domicile_audit')
    await refused(`INSERT INTO domicile_audit (tenant_id, type, outcome) VALUES ('acme', 'field.reveal', 'ok')`)
    await refused('TRUNCATE domicile_audit')
    await refused('SELECT * FROM domicile_audit_chain')
    await refused('UPDATE domicile_audit_chain SET position = 0')
    await refused('DELETE FROM domicile_audit_chain')
    await refused(`INSERT INTO domicile_audit_chain (position, hash) VALUES (0, '\\x00')`)
    await refused('ALTER TABLE domicile_audit DISABLE TRIGGER domicile_audit_chain_link')
    await refused('DROP TRIGGER domicile_audit_chain_link ON domicile_audit')
    await refused('SELECT domicile_audit_chain_link()')
    // The scope still reads its own tenant's records, chain columns included.
    const own = await d.withTenant('acme', (s) => s.sql<{ n: number }>('SELECT count(*)::int AS n FROM domicile_audit WHERE hash IS NOT NULL'))
    assert.ok(own[0]!.n > 0, 'the scope reads its own chained records')
    const v = await verifyAuditChains(d)
    assert.equal(v.ok, true, JSON.stringify(v))
  })

  tamperingSuite(() => d)

  test('the CLI: audit verify (all, --region, --control-plane), exit 1 with the first bad position; audit tail without plaintext', async () => {
    const opts = { cwd: dir, timeoutMs: 120_000 }
    const cfg = ['--config', join(dir, 'domicile.config.json')]
    const ok = await runCli(['audit', 'verify', '--json', ...cfg], opts)
    assert.equal(ok.code, 0, ok.stderr)
    const okJson = JSON.parse(ok.stdout) as { ok: boolean; chains: ChainVerification[] }
    assert.equal(okJson.ok, true)
    assert.deepEqual(okJson.chains.map((c) => c.store), [EU, 'control-plane'])
    const cp = JSON.parse((await runCli(['audit', 'verify', '--control-plane', '--json', ...cfg], opts)).stdout) as { chains: ChainVerification[] }
    assert.deepEqual(cp.chains.map((c) => c.store), ['control-plane'])
    const bad = await runCli(['audit', 'verify', '--region', 'nowhere', ...cfg], opts)
    assert.equal(bad.code, 2, bad.stderr)

    const tail = await runCli(['audit', 'tail', '--tenant', 'acme', '--limit', '1000', '--json', ...cfg], opts)
    assert.equal(tail.code, 0, tail.stderr)
    const t = JSON.parse(tail.stdout) as { records: Array<{ type: string; store: string }> }
    assert.ok(t.records.some((r) => r.type === 'field.reveal' && r.store === 'region'), 'a reveal record from the region')
    assert.ok(t.records.some((r) => r.type === 'tenant.add' && r.store === 'control-plane'), 'tenant.add from the control plane')
    assert.ok(!tail.stdout.includes('ada@acme.example') && !tail.stdout.includes('TX-1'), 'no plaintext')

    const admin = regionAdmin(d)
    const id = (await admin((s) => s.query<{ id: string }>('SELECT id::text AS id FROM domicile_audit WHERE chain_pos = 3'))).rows[0]!.id
    await admin((s) => s.query(`UPDATE domicile_audit SET detail = '{}'::jsonb WHERE chain_pos = 3`))
    try {
      const broken = await runCli(['audit', 'verify', '--json', ...cfg], opts)
      assert.equal(broken.code, 1, broken.stderr)
      const j = JSON.parse(broken.stdout) as { ok: boolean; chains: ChainVerification[]; error: { code: string } }
      assert.equal(j.ok, false)
      assert.equal(j.error.code, 'ERR_AUDIT_CHAIN_BROKEN')
      assert.deepEqual([j.chains[0]!.firstBad?.position, j.chains[0]!.firstBad?.problem, j.chains[0]!.firstBad?.id], [3, 'hash-mismatch', id])
      assert.equal(j.chains[1]!.ok, true)
      assert.match(broken.stderr, /first bad position 3/)
      const text = await runCli(['audit', 'verify', '--region', EU, ...cfg], opts)
      assert.equal(text.code, 1)
      assert.match(text.stdout, /BROKEN .*first bad position 3: hash-mismatch/)
    } finally {
      await admin((s) => s.query('DELETE FROM domicile_audit WHERE chain_pos = 3').then(() => undefined))
    }
    // Deleting the edited record instead is a deletion at the same position.
    const gone = JSON.parse((await runCli(['audit', 'verify', '--region', EU, '--json', ...cfg], opts)).stdout) as { chains: ChainVerification[] }
    assert.deepEqual([gone.chains[0]!.firstBad?.position, gone.chains[0]!.firstBad?.problem], [3, 'missing'])
  })
})
