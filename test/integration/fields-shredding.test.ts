/**
 * Crypto-shredding through the data layer, for each custody level:
 * - kms:  the local provider holds the key; our kill switch (operator revoke) and restore.
 * - byok: the local provider holds imported customer material; the customer's kill switch
 *         (delete the key material in the keystore, from "another process") and re-import of the
 *         same material; and the operator revoke.
 * - hyok: the key lives behind the customer's XKS proxy (the reference key proxy as a real child
 *         process); the customer's kill switch (`keyproxy disable-key`, run as a child process)
 *         and `enable-key`; and the operator revoke.
 * After each revocation every reveal and every blind-index search of that tenant fails with
 * ERR_KEY_REVOKED, its plain columns stay readable, and a bystander tenant in the same region is
 * untouched; after the restore everything reads again.
 *
 * Customer-side revocations here run with the tenant's cacheTtlMs set to 0, so they bite at once.
 * With the default TTL a data key unwrapped before the customer's revoke stays usable in this
 * process until its cache entry expires: the bound on a customer-side revoke is the custody
 * level's cache TTL (keys.cacheTtlMs). That timing is asserted by the two-process tests
 * elsewhere, not here. Operator revokes need no TTL: the directory change drops cached keys.
 */
import { after, before, describe, test } from 'node:test'
import { strict as assert } from 'node:assert'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Row } from '../../src/index.js'
import {
  createDomicileFixture,
  importByokMaterial,
  newKeyMaterial,
  rejectsWithCode,
  type DomicileFixture,
  type FixtureTenantOptions,
} from '../support/domicile-fixture.js'
import {
  createKeyViaCli,
  initKeyProxyDir,
  runKeyproxyCliOk,
  startKeyProxyProcess,
  type KeyProxyDir,
  type KeyProxyProcess,
} from '../support/keyproxy-process.js'

const REGION = 'eu-west-1'
const XKS = 'customer-proxy'

interface Person {
  readonly id: string
  readonly name: string
  readonly email: string
  readonly tax_id: string
  readonly plan: string
}

function peopleOf(tenant: string): Person[] {
  return [
    { id: 'c1', name: `Ada of ${tenant}`, email: `ada@${tenant}.example`, tax_id: `TAX-${tenant}-1`, plan: 'pro' },
    { id: 'c2', name: `Bob of ${tenant}`, email: `bob@${tenant}.example`, tax_id: `TAX-${tenant}-2`, plan: 'free' },
  ]
}

describe('crypto-shredding per custody level', { concurrency: false }, () => {
  let fx: DomicileFixture
  let proxyDir: KeyProxyDir
  let proxy: KeyProxyProcess
  let credsDir: string

  before(async () => {
    proxyDir = await initKeyProxyDir()
    proxy = await startKeyProxyProcess({ dir: proxyDir.dir, uriPrefix: '/xks' })
    credsDir = await mkdtemp(join(tmpdir(), 'domicile-xks-creds-'))
    const credentialsFile = join(credsDir, 'xks-credentials.json')
    await writeFile(credentialsFile, JSON.stringify(proxy.credentials), { mode: 0o600 })
    fx = await createDomicileFixture({
      regions: [REGION],
      // timeoutMs: a generous deadline on a loaded 2-core machine; outages are tested elsewhere.
      providers: { [XKS]: { kind: 'xks', endpoint: proxy.url, uriPrefix: proxy.uriPrefix, credentialsFile, timeoutMs: 2000, ...(proxy.caFile ? { caFile: proxy.caFile } : {}) } },
    })
  })

  after(async () => {
    await fx?.close()
    const code = await proxy?.stop()
    await proxyDir?.cleanup()
    if (credsDir) await rm(credsDir, { recursive: true, force: true })
    if (proxy) assert.equal(code, 0, `keyproxy serve exits 0 on SIGTERM; its log: ${proxy.stderrTail()}`)
  })

  async function seed(tenant: string, opts: FixtureTenantOptions): Promise<Person[]> {
    await fx.addTenant(tenant, { region: REGION, ...opts })
    const people = peopleOf(tenant)
    await fx.domicile.withTenant(tenant, async (s) => {
      for (const p of people) await s.table('customers').insert({ ...p })
    })
    return people
  }

  /** Every sealed field reveals to what was written, and every email is found by blind index. */
  async function assertReadable(tenant: string, people: readonly Person[], when: string): Promise<void> {
    await fx.domicile.withTenant(tenant, async (s) => {
      const c = s.table('customers')
      const page = await c.list({ limit: 100 })
      assert.deepEqual(await s.revealRows(page.rows, { purpose: `test: ${when}` }), people, `${tenant} ${when}: revealRows`)
      for (const p of people) {
        const row = await c.get(p.id)
        assert.equal(await s.reveal(row!.tax_id, { purpose: `test: ${when}` }), p.tax_id)
        assert.deepEqual((await c.find({ email: p.email.toUpperCase() })).map((r) => r.id), [p.id], `${tenant} ${when}: find by email`)
      }
    })
    // Sealing new values works too (then removed again, so the tenant's rows stay as seeded).
    await fx.domicile.withTenant(tenant, async (s) => {
      await s.table('customers').insert({ id: 'probe', name: 'probe', email: 'probe@x.example', tax_id: 'probe' })
      assert.equal(await s.table('customers').delete('probe'), true)
    })
  }

  /** Every sealed field and every blind-index search fails with ERR_KEY_REVOKED; plain columns read. */
  async function assertShredded(tenant: string, people: readonly Person[], when: string): Promise<void> {
    await fx.domicile.withTenant(tenant, async (s) => {
      const c = s.table('customers')
      const page = await c.list({ limit: 100 })
      assert.deepEqual(page.rows.map((r) => [r.id, r.name, r.plan]), people.map((p) => [p.id, p.name, p.plan]), `${tenant} ${when}: list still reads plain columns`)
      for (const p of people) {
        const row = await c.get(p.id)
        assert.ok(row, `${tenant} ${when}: get ${p.id}`)
        assert.equal(row.name, p.name)
        assert.equal(row.plan, p.plan)
        for (const col of ['email', 'tax_id'] as const) {
          await rejectsWithCode(s.reveal(row[col], { purpose: `test: ${when}` }), 'ERR_KEY_REVOKED', `${tenant} ${when}: reveal ${p.id}.${col}`)
        }
        await rejectsWithCode(c.find({ email: p.email }), 'ERR_KEY_REVOKED', `${tenant} ${when}: find by email ${p.id}`)
        assert.deepEqual((await c.find({ plan: p.plan })).map((r: Row) => r.id), [p.id], `${tenant} ${when}: find on a plain column`)
      }
      await rejectsWithCode(s.revealRows(page.rows, { purpose: `test: ${when}` }), 'ERR_KEY_REVOKED', `${tenant} ${when}: revealRows`)
    })
    await rejectsWithCode(fx.domicile.withTenant(tenant, (s) => s.table('customers').insert({ id: 'c9', name: 'New', tax_id: 'NEW' })),
      'ERR_KEY_REVOKED', `${tenant} ${when}: sealing a new value`)
    // A plain-only write still works.
    await fx.domicile.withTenant(tenant, async (s) => {
      await s.table('customers').insert({ id: 'plain', name: 'plain only' })
      assert.equal(await s.table('customers').delete('plain'), true)
    })
  }

  async function shredAndRestore(o: {
    tenant: string
    bystander: string
    opts: (tenant: string) => Promise<FixtureTenantOptions> | FixtureTenantOptions
    revoke: (tenant: string) => Promise<void>
    restore: (tenant: string) => Promise<void>
    statusWhileRevoked?: { state: string; providerState: string }
  }): Promise<void> {
    const people = await seed(o.tenant, await o.opts(o.tenant))
    const bystanderPeople = await seed(o.bystander, await o.opts(o.bystander))
    // Warm this process's key cache for the tenant first: the revoke must reach cached keys too.
    await assertReadable(o.tenant, people, 'before revoke')

    await o.revoke(o.tenant)
    await assertShredded(o.tenant, people, 'after revoke')
    await assertReadable(o.bystander, bystanderPeople, 'while the other tenant is revoked')
    if (o.statusWhileRevoked) {
      const st = await fx.domicile.keys.status(o.tenant)
      assert.deepEqual({ state: st.state, providerState: st.providerState }, o.statusWhileRevoked)
    }

    await o.restore(o.tenant)
    await assertReadable(o.tenant, people, 'after restore')
    assert.equal((await fx.domicile.keys.status(o.tenant)).state, 'enabled')
  }

  const operatorRevoke = async (t: string) => { await fx.domicile.keys.revoke(t, 'test-operator') }
  const operatorRestore = async (t: string) => { await fx.domicile.keys.restore(t, 'test-operator') }

  test('kms: operator revoke shreds, restore brings the data back', async () => {
    await shredAndRestore({
      tenant: 'kms-a', bystander: 'kms-b',
      opts: () => ({ custody: 'kms' }),
      revoke: operatorRevoke, restore: operatorRestore,
      statusWhileRevoked: { state: 'revoked', providerState: 'enabled' },
    })
  })

  test('byok: the customer deletes the key material (cache TTL 0); re-importing the same material restores', async () => {
    const materials = new Map<string, Uint8Array>()
    const material = (t: string) => {
      let m = materials.get(t)
      if (!m) materials.set(t, (m = newKeyMaterial()))
      return m
    }
    await shredAndRestore({
      tenant: 'byok-cust-a', bystander: 'byok-cust-b',
      opts: (t) => ({ custody: 'byok', cacheTtlMs: 0, byokMaterial: material(t) }),
      revoke: async (t) => {
        const rec = await fx.domicile.getTenant(t)
        // The customer's side, as another process sees the keystore: no directory change at all.
        await fx.localKeystore().deleteKeyMaterial(rec.key!.keyId)
        assert.equal((await fx.domicile.getTenant(t)).keyState, 'enabled', 'our side of the switch is untouched')
      },
      restore: async (t) => {
        // A different material is refused; only the same one comes back.
        await rejectsWithCode(importByokMaterial(fx.domicile, t, newKeyMaterial()), 'ERR_KEY_IMPORT_INVALID', 'import of other material')
        await importByokMaterial(fx.domicile, t, material(t))
      },
      statusWhileRevoked: { state: 'revoked', providerState: 'deleted' },
    })
  })

  test('byok: operator revoke shreds, restore brings the data back', async () => {
    await shredAndRestore({
      tenant: 'byok-op-a', bystander: 'byok-op-b',
      opts: () => ({ custody: 'byok', byokMaterial: newKeyMaterial() }),
      revoke: operatorRevoke, restore: operatorRestore,
      statusWhileRevoked: { state: 'revoked', providerState: 'enabled' },
    })
  })

  test('hyok: the customer disables the key at their proxy (cache TTL 0); enable-key restores', async () => {
    await shredAndRestore({
      tenant: 'hyok-cust-a', bystander: 'hyok-cust-b',
      opts: async () => ({ custody: 'hyok', provider: XKS, keyId: await createKeyViaCli(proxyDir.dir), cacheTtlMs: 0 }),
      revoke: async (t) => {
        const keyId = (await fx.domicile.getTenant(t)).key!.keyId
        await runKeyproxyCliOk(['disable-key', keyId, '--dir', proxyDir.dir])
      },
      restore: async (t) => {
        const keyId = (await fx.domicile.getTenant(t)).key!.keyId
        await runKeyproxyCliOk(['enable-key', keyId, '--dir', proxyDir.dir])
      },
      statusWhileRevoked: { state: 'revoked', providerState: 'disabled' },
    })
  })

  test('hyok: operator revoke shreds, restore brings the data back', async () => {
    await shredAndRestore({
      tenant: 'hyok-op-a', bystander: 'hyok-op-b',
      opts: async () => ({ custody: 'hyok', provider: XKS, keyId: await createKeyViaCli(proxyDir.dir) }),
      revoke: operatorRevoke, restore: operatorRestore,
      statusWhileRevoked: { state: 'revoked', providerState: 'enabled' },
    })
  })
})
