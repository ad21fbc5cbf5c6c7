/**
 * `key destroy` and `shred verify` against real PostgreSQL 15 (issue #10 item 4): the region store
 * and the control plane are PostgreSQL databases with the two-role setup of the README (owner for
 * admin work, a data-plane login that owns nothing). The wrapped keys are deleted with the owner's
 * login and the table vacuumed outside a transaction; the data plane still cannot touch key rows;
 * the certificate's scans read PostgreSQL's bytea and count types; a bystander tenant is untouched.
 */
import { strict as assert } from 'node:assert'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import pg from 'pg'
import { createDomicile, parseConfig, type Domicile } from '../../src/index.js'
import { EXAMPLE_SCHEMA } from '../../src/cli/templates.js'
import { internalsOf } from '../../src/domicile-internals.js'
import { destroyTenantKey } from '../../src/ops/shred-destroy.js'
import { issueShredCertificate } from '../../src/ops/shred-verify.js'
import { checkShredCertificate } from '../../src/ops/shred-certificate.js'
import { loadPublicKey } from '../../src/evidence/signing-key.js'
import { evidenceSigningKeyFile } from '../../src/ops/shred-evidence-key.js'
import { rejectsWithCode } from '../support/domicile-fixture.js'
import { postgresUnavailable, startPgCluster, twoRoleDatabases, type PgCluster } from '../support/pg-cluster.js'

const REGION = 'eu-west-1'

describe('key destroy and shred verify on real PostgreSQL (two roles)', { skip: postgresUnavailable(), concurrency: false }, () => {
  let cluster: PgCluster
  let dir: string
  let d: Domicile
  let su: pg.Client

  before(async () => {
    cluster = await startPgCluster('shred')
    dir = mkdtempSync(join(tmpdir(), 'domicile-shred-pg-'))
    su = new pg.Client({ connectionString: cluster.url })
    await su.connect()
    // The README's production setup: an owner that is not a superuser, owning the databases.
    const logins = await twoRoleDatabases(cluster)
    writeFileSync(join(dir, 'domicile.schema.mjs'), EXAMPLE_SCHEMA)
    const config = parseConfig({
      regions: { [REGION]: { driver: 'postgres', url: logins.dataUrl('eu'), ownerUrl: logins.ownerUrl('eu') } },
      controlPlane: { driver: 'postgres', url: logins.dataUrl('control'), ownerUrl: logins.ownerUrl('control') },
      schema: './domicile.schema.mjs',
      keys: { dir: join(dir, 'keys') },
    }, dir)
    d = await createDomicile({ config })
    const results = await d.migrate()
    assert.ok(results.every((r) => r.ok), JSON.stringify(results))
    for (const t of ['acme', 'globex']) {
      const p = await d.keys.provision(t, { custody: 'kms' })
      await d.addTenant(t, { region: REGION, key: p.key, keyState: p.keyState })
      await d.withTenant(t, async (s) => {
        for (let i = 1; i <= 40; i++) await s.table('customers').insert({ id: `${t}-${String(i).padStart(3, '0')}`, name: `${t} customer ${i}`, email: `p${i}@${t}.example`, tax_id: `TAX-${i}` })
      })
    }
  })

  after(async () => {
    await d?.close()
    await su?.end().catch(() => undefined)
    cluster?.destroy()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  const eu = async <T>(fn: (c: pg.Client) => Promise<T>): Promise<T> => {
    const c = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${cluster.port}/eu` })
    await c.connect()
    try {
      return await fn(c)
    } finally {
      await c.end()
    }
  }

  test('destroy deletes every wrapped key in PostgreSQL and the certificate says erased', async () => {
    const before = await eu((c) => c.query("SELECT tenant_id, count(*)::int AS n FROM domicile_data_keys GROUP BY tenant_id ORDER BY tenant_id"))
    assert.deepEqual(before.rows, [{ tenant_id: 'acme', n: 2 }, { tenant_id: 'globex', n: 2 }])
    const r = await destroyTenantKey(d, 'acme', { actor: 'pg-operator' })
    assert.deepEqual(r.deleted, [{ region: REGION, rows: 2 }])
    const after = await eu((c) => c.query("SELECT tenant_id, count(*)::int AS n FROM domicile_data_keys GROUP BY tenant_id ORDER BY tenant_id"))
    assert.deepEqual(after.rows, [{ tenant_id: 'globex', n: 2 }], 'read directly from the store: only the bystander\'s keys are left')
    // The table was vacuumed by the owner (outside a transaction block).
    const vac = await eu((c) => c.query("SELECT vacuum_count::int AS n FROM pg_stat_user_tables WHERE relname = 'domicile_data_keys'"))
    assert.ok(vac.rows[0].n >= 1, 'VACUUM domicile_data_keys ran')

    const cert = await issueShredCertificate(d, 'acme', { sampleSize: 10, knownPlaintexts: ['acme customer 7'] })
    const p = cert.payload
    // The sample is in a plain column (name): found, so the verification says it cannot erase that copy.
    assert.equal(p.checks.find((c) => c.id === 'tenant-plain-columns')?.counts.hits, 1)
    assert.equal(p.verdict, 'failed')
    const clean = await issueShredCertificate(d, 'acme', { sampleSize: 10, knownPlaintexts: ['p7@acme.example', 'TAX-7'] })
    assert.equal(clean.payload.verdict, 'erased', JSON.stringify(clean.payload.checks.filter((c) => c.status === 'fail')))
    const sealed = clean.payload.checks.find((c) => c.id === 'sensitive-columns-sealed')!
    assert.deepEqual([sealed.counts.rows, sealed.counts.values, sealed.counts.unsealed], [40, 80, 0])
    assert.deepEqual([clean.payload.checks.find((c) => c.id === 'sample-open')?.counts.sampled, clean.payload.checks.find((c) => c.id === 'sample-open')?.counts.opened], [10, 0])
    assert.equal(checkShredCertificate(JSON.stringify(clean), loadPublicKey(evidenceSigningKeyFile(internalsOf(d).config!)).publicKey).payload.verdict, 'erased')

    // The bystander still reads.
    await d.withTenant('globex', async (s) => {
      assert.equal(await s.reveal((await s.table('customers').get('globex-007'))!.tax_id, { purpose: 'test' }), 'TAX-7')
    })
    await rejectsWithCode(d.keys.restore('acme'), 'ERR_KEY_DESTROYED', 'restore')
  })

  test('the data plane cannot delete wrapped key rows', async () => {
    const data = new pg.Client({ connectionString: `postgres://domicile_data:data-pw@127.0.0.1:${cluster.port}/eu` })
    await data.connect()
    try {
      await assert.rejects(data.query("DELETE FROM domicile_data_keys WHERE tenant_id = 'globex'"), /permission denied/)
    } finally {
      await data.end()
    }
  })
})
