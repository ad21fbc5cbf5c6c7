/**
 * The HTTP service on real PostgreSQL 15 (the README's two-role setup: owner login + data-plane
 * login): API keys are checked as the data plane and issued as the owner; /healthz turns 503 and
 * names the region when that region's cluster is stopped, within its deadline, and recovers when it
 * is back; the other region keeps serving its tenants meanwhile.
 */
import { after, before, describe, test } from 'node:test'
import { strict as assert } from 'node:assert'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { createDomicile, parseConfig, type Domicile } from '../../src/index.js'
import { EXAMPLE_SCHEMA } from '../../src/cli/templates.js'
import { serve } from '../../src/service/http-service.js'
import { postgresUnavailable, startPgCluster, twoRoleDatabases, type PgCluster } from '../support/pg-cluster.js'

const why = postgresUnavailable()
const ADMIN = randomBytes(24).toString('hex')

describe('HTTP service on PostgreSQL', { skip: why, concurrency: false }, () => {
  let eu: PgCluster
  let us: PgCluster
  let d: Domicile
  let dir: string
  let url: string
  let stop: () => Promise<void>

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'domicile-service-pg-'))
    eu = await startPgCluster('svc-eu')
    us = await startPgCluster('svc-us')
    const euLogins = await twoRoleDatabases(eu, ['region', 'control'])
    const usLogins = await twoRoleDatabases(us, ['region'])
    writeFileSync(join(dir, 'schema.mjs'), EXAMPLE_SCHEMA)
    const config = parseConfig({
      regions: {
        'eu-west-1': { driver: 'postgres', url: euLogins.dataUrl('region'), ownerUrl: euLogins.ownerUrl('region'), jurisdiction: 'EU', connectTimeoutMs: 500 },
        'us-east-1': { driver: 'postgres', url: usLogins.dataUrl('region'), ownerUrl: usLogins.ownerUrl('region'), jurisdiction: 'US', connectTimeoutMs: 500 },
      },
      controlPlane: { driver: 'postgres', url: euLogins.dataUrl('control'), ownerUrl: euLogins.ownerUrl('control') },
      schema: './schema.mjs',
      keys: { dir: join(dir, 'keys') },
    }, dir)
    d = await createDomicile({ config })
    await d.migrate()
    for (const [id, region] of [['acme', 'eu-west-1'], ['globex', 'us-east-1']] as const) {
      const p = await d.keys.provision(id, { custody: 'kms' })
      await d.addTenant(id, { region, key: p.key, keyState: p.keyState })
    }
    const s = await serve(d, { port: 0, adminToken: ADMIN, processMetrics: false, healthTimeoutMs: 1500 })
    url = s.url
    stop = s.close
  })

  after(async () => {
    await stop?.()
    await d?.close()
    eu?.destroy()
    us?.destroy()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  const post = (path: string, token: string, body: unknown) =>
    fetch(url + path, { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body: JSON.stringify(body) })

  test('API keys issued as the owner and checked as the data plane; tenants stay apart', async () => {
    const a = (await (await post('/admin/api/tenants/acme/api-keys', ADMIN, { reveal: true })).json()) as { apiKey: string }
    const g = (await (await post('/admin/api/tenants/globex/api-keys', ADMIN, {})).json()) as { apiKey: string }
    assert.equal((await post('/api/tables/customers/rows', a.apiKey, { id: 'p1', name: 'Ada', email: 'ada@example.eu', tax_id: 'DE-1' })).status, 201)
    const mine = await fetch(`${url}/api/tables/customers/rows/p1?reveal=tax_id`, { headers: { Authorization: `Bearer ${a.apiKey}`, 'X-Domicile-Purpose': 'pg test' } })
    assert.equal(((await mine.json()) as { row: { tax_id: string } }).row.tax_id, 'DE-1')
    const theirs = await fetch(`${url}/api/tables/customers/rows/p1`, { headers: { Authorization: `Bearer ${g.apiKey}` } })
    assert.equal(theirs.status, 404)
    const find = await fetch(`${url}/api/tables/customers/rows?where.email=ada%40example.eu`, { headers: { Authorization: `Bearer ${g.apiKey}` } })
    assert.deepEqual(((await find.json()) as { rows: unknown[] }).rows, [])
  })

  test('/healthz is 503 and names the region whose PostgreSQL cluster is stopped; 200 again once it is back', async () => {
    const before = await fetch(url + '/healthz')
    assert.equal(before.status, 200)
    us.stop()
    try {
      const t0 = Date.now()
      const down = await fetch(url + '/healthz')
      const elapsed = Date.now() - t0
      const body = (await down.json()) as { status: string; regions: Array<{ name: string; status: string; code?: string }> }
      assert.equal(down.status, 503)
      assert.equal(body.status, 'degraded')
      const byName = Object.fromEntries(body.regions.map((r) => [r.name, r]))
      assert.equal(byName['us-east-1']!.status, 'down')
      assert.equal(byName['eu-west-1']!.status, 'up')
      assert.ok(['ERR_REGION_UNAVAILABLE', 'ERR_TIMEOUT'].includes(byName['us-east-1']!.code ?? ''), JSON.stringify(byName['us-east-1']))
      assert.ok(elapsed < 5000, `health answered in ${elapsed} ms`)
      // the EU region keeps serving while the US one is down
      const a = (await (await post('/admin/api/tenants/acme/api-keys', ADMIN, {})).json()) as { apiKey: string }
      assert.equal((await fetch(`${url}/api/tables/customers/rows/p1`, { headers: { Authorization: `Bearer ${a.apiKey}` } })).status, 200)
      const g = (await (await post('/admin/api/tenants/globex/api-keys', ADMIN, {})).json()) as { apiKey: string }
      const refused = await fetch(`${url}/api/tables/customers/rows?limit=1`, { headers: { Authorization: `Bearer ${g.apiKey}` } })
      assert.equal(refused.status, 503)
      assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'ERR_REGION_UNAVAILABLE')
    } finally {
      us.start()
    }
    let status = 0
    for (let i = 0; i < 20 && status !== 200; i++) {
      status = (await fetch(url + '/healthz')).status
      if (status !== 200) await new Promise((r) => setTimeout(r, 250))
    }
    assert.equal(status, 200)
  })
})
