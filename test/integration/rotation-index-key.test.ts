/**
 * Blind-index key rotation with a dual-read period (issue #10, item 1): while the rotation runs in
 * another process (announced, switched, rebuilding, SIGKILLed mid-rebuild, resumed), a `find` loop
 * never misses a row, a writer's rows are found too, and at the end searches use the new key only
 * and the old index key is gone. Real PostgreSQL, two roles.
 */
import { strict as assert } from 'node:assert'
import { after, before, describe, test } from 'node:test'
import type { Domicile } from '../../src/index.js'
import { internalsOf } from '../../src/domicile-internals.js'
import { indexKeysOf } from '../../src/keys/keyring.js'
import { rotateIndexKey } from '../../src/ops/rotate-index-key.js'
import { postgresUnavailable } from '../support/pg-cluster.js'
import { loop, REGION, startRotationCluster, type RotationCluster } from '../support/rotation-cluster.js'

const missing = postgresUnavailable()

describe('index-key rotation (real PostgreSQL, two roles)', { skip: missing }, () => {
  let rc: RotationCluster
  let d: Domicile
  const ROWS = 1500

  before(async () => {
    rc = await startRotationCluster('indexkey')
    d = await rc.open()
    const p = await d.keys.provision('ix', { custody: 'kms' })
    await d.addTenant('ix', { region: REGION, key: p.key, keyState: p.keyState })
  })

  after(async () => {
    await d?.close()
    await rc?.close()
  })

  const indexRows = (tenant: string) => rc.su.query<{ key_number: number; status: string }>(
    "SELECT key_number, status FROM domicile_data_keys WHERE tenant_id = $1 AND purpose = 'index' ORDER BY key_number", [tenant]).then((r) => r.rows)

  test('a concurrent find loop never misses a row while the index is rebuilt (killed mid-rebuild and resumed); then only the new key is searched', async () => {
    const tenant = 'ix'
    const emails = new Map<string, string>()
    await d.withTenant(tenant, async (s) => {
      for (let i = 0; i < ROWS; i++) {
        const id = `r-${String(i).padStart(5, '0')}`
        // Mixed case and spaces: the rebuild must normalise exactly as writes do.
        const email = i % 3 === 0 ? `  User${i}@IX.example ` : `user${i}@ix.example`
        await s.table('customers').insert({ id, name: 'n', email, tax_id: `T${i}` })
        emails.set(id, email)
      }
    })
    assert.deepEqual(await indexRows(tenant), [{ key_number: 1, status: 'active' }])
    const ids = [...emails.keys()]
    const misses: string[] = []
    const finder = loop(async (i) => {
      const id = ids[(i * 101) % ids.length]!
      const probe = i % 2 === 0 ? emails.get(id)! : emails.get(id)!.trim().toUpperCase()
      const rows = await d.tenant(tenant).table('customers').find({ email: probe })
      if (rows.length !== 1 || rows[0]!.id !== id) misses.push(`${id} -> ${rows.map((r) => String(r.id)).join(',')}`)
    })
    const writer = loop(async (i) => {
      const id = `w-${String(i).padStart(6, '0')}`
      const email = `Writer${i}@IX.example`
      await d.tenant(tenant).table('customers').insert({ id, name: 'w', email, tax_id: null })
      emails.set(id, email)
      ids.push(id)
    })
    const seen = new Set<string>()
    const poll = setInterval(() => void indexRows(tenant).then((r) => seen.add(r.map((k) => `${k.key_number}:${k.status}`).join(' '))), 20)

    // The worker waits the library's default bound after each step (the directory's fail-closed bound,
    // 5.2 s here): the dual-read guarantee rests on every process seeing a change within it.
    const killed = await rc.runWorker('index', tenant, { DOMICILE_TEST_KILL_AT: 'index-key-rotate:rebuild:2', ROTATION_BATCH: '200' })
    assert.equal(killed.signal, 'SIGKILL', killed.stderr.slice(-800))
    assert.equal((await internalsOf(d).journal!.running(tenant))?.state, 'rebuild')
    assert.deepEqual(await indexRows(tenant), [{ key_number: 1, status: 'retired' }, { key_number: 2, status: 'active' }], 'dual read: both keys held')
    const findsWhileKilled = finder.ok
    await new Promise((r) => setTimeout(r, 500))
    assert.ok(finder.ok > findsWhileKilled, 'searches go on while the job is dead')

    const r = await rotateIndexKey(d, tenant, { staleAfterMs: 0, batchSize: 200, actor: 'ix-test' })
    clearInterval(poll)
    await finder.stop()
    await writer.stop()
    assert.deepEqual(writer.errors, [])
    assert.deepEqual(finder.errors, [])
    assert.deepEqual(misses, [], 'no search missed its row')
    assert.ok(finder.ok > 50, `finds: ${finder.ok}`)
    assert.equal(r.state, 'done')
    assert.equal(r.resumed, true)
    assert.equal(r.newKeyNumber, 2)
    assert.ok(r.passes >= 2, 'a verification pass over the data')
    assert.ok(seen.has('1:active 2:retired'), `the announce step was observed (${[...seen].join(' | ')})`)
    assert.deepEqual(await indexRows(tenant), [{ key_number: 2, status: 'active' }], 'the old index key is retired (deleted)')

    // After the rotation: every row is found (searches cover key 2 only), old and new rows alike.
    const after = await d.withTenant(tenant, async (s) => {
      let found = 0
      for (const [id, email] of emails) {
        const rows = await s.table('customers').find({ email })
        if (rows.length === 1 && rows[0]!.id === id) found++
      }
      return found
    })
    assert.equal(after, emails.size)
    // And a fresh process (no cached state) finds rows too.
    const fresh = await rc.open()
    try {
      const [row] = await fresh.tenant(tenant).table('customers').find({ email: emails.get('r-00003')! })
      assert.equal(row?.id, 'r-00003')
    } finally {
      await fresh.close()
    }
  })

  test('a tenant whose keys are never cached (TTL 0): every search in every step of the rotation finds its row', async () => {
    // With TTL 0 the cache hands out a key it does not keep and zeroes it right after: a search
    // that loads the second index key after the first must not hash its probe under zeroed bytes.
    const tenant = 'ix-ttl0'
    const p = await d.keys.provision(tenant, { custody: 'kms' })
    await d.addTenant(tenant, { region: REGION, key: p.key, keyState: p.keyState, cacheTtlMs: 0 })
    const emails: string[] = []
    await d.withTenant(tenant, async (s) => {
      for (let i = 0; i < 40; i++) {
        emails.push(`Zero${i}@IX.example`)
        await s.table('customers').insert({ id: `z-${i}`, name: 'z', email: emails[i]!, tax_id: null })
      }
    })
    let step = 'before'
    const finds = new Map<string, number>()
    const misses: string[] = []
    const finder = loop(async (i) => {
      const at = step
      const rows = await d.tenant(tenant).table('customers').find({ email: emails[i % emails.length]!.toLowerCase() })
      if (rows.length !== 1 || rows[0]!.id !== `z-${i % emails.length}`) misses.push(`${at}: z-${i % emails.length} -> [${rows.map((r) => String(r.id)).join(',')}]`)
      finds.set(at, (finds.get(at) ?? 0) + 1)
    })
    const progress = {
      update() {},
      note(m: string) {
        if (m.startsWith('searches cover')) step = 'announced'
        else if (m.startsWith('new indexes are written')) step = 'switched'
      },
    }
    const r = await rotateIndexKey(d, tenant, { propagationMs: 400, batchSize: 10, actor: 'ix-test', progress })
    step = 'done'
    await new Promise((res) => setTimeout(res, 100))
    await finder.stop()
    assert.equal(r.state, 'done')
    assert.deepEqual(finder.errors, [])
    assert.deepEqual(misses, [], 'no search missed its row')
    for (const at of ['announced', 'switched', 'done']) assert.ok((finds.get(at) ?? 0) > 0, `searches ran while ${at} (${JSON.stringify([...finds])})`)
  })

  test('which index keys a transaction writes under and searches under', () => {
    assert.deepEqual(indexKeysOf([]), { write: 1, search: [1] })
    assert.deepEqual(indexKeysOf([{ keyNumber: 1, status: 'active' }]), { write: 1, search: [1] })
    assert.deepEqual(indexKeysOf([{ keyNumber: 2, status: 'retired' }, { keyNumber: 1, status: 'active' }]), { write: 1, search: [1, 2] }, 'announced')
    assert.deepEqual(indexKeysOf([{ keyNumber: 2, status: 'active' }, { keyNumber: 1, status: 'retired' }]), { write: 2, search: [2, 1] }, 'switched')
  })
})
