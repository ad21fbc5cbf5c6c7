/**
 * A short-lived instance (`createDomicile({ changeFeed: false })`, what every one-shot CLI command
 * uses) follows no change feed: no LISTEN connection, no change-log read. It must still honour the
 * revocation bound: a key revoked by another instance stops its reveals within 1 s, because an
 * unwatched directory trusts an entry it read for at most UNWATCHED_TRUST_MS.
 * Real PostgreSQL 15 (control plane + one region database on one cluster).
 */
import { after, before, test } from 'node:test'
import { strict as assert } from 'node:assert'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createDomicile, isDomicileError, type Domicile } from '../../src/index.js'
import { EXAMPLE_SCHEMA } from '../../src/cli/templates.js'
import { UNWATCHED_TRUST_MS } from '../../src/control-plane/tenant-directory.js'
import type { DomicileConfig } from '../../src/config/config-types.js'
import { loadConfig } from '../../src/config/load-config.js'
import { internalsOf } from '../../src/domicile-internals.js'
import { postgresUnavailable, startPgCluster, type PgCluster } from '../support/pg-cluster.js'

const skip = postgresUnavailable()
let cluster: PgCluster
let dir: string
let config: DomicileConfig

before(async () => {
  if (skip) return
  cluster = await startPgCluster('unwatched')
  dir = mkdtempSync(join(tmpdir(), 'domicile-unwatched-'))
  const path = join(dir, 'domicile.config.json')
  writeFileSync(join(dir, 'domicile.schema.mjs'), EXAMPLE_SCHEMA)
  writeFileSync(path, JSON.stringify({
    regions: { 'eu-west-1': { driver: 'postgres', url: cluster.database('uw_eu'), jurisdiction: 'EU' } },
    controlPlane: { driver: 'postgres', url: cluster.database('uw_control') },
    schema: './domicile.schema.mjs',
    keys: { dir: join(dir, 'keys') },
  }))
  config = loadConfig(path)
})

after(async () => {
  if (skip) return
  await cluster.destroy()
  rmSync(dir, { recursive: true, force: true })
})

async function listeners(): Promise<number> {
  const admin = await createDomicile({ config })
  try {
    const r = await internalsOf(admin).controlPlane.withSession((s) =>
      s.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE 'LISTEN %' AND pid <> pg_backend_pid()`))
    return r.rows[0]!.n
  } finally {
    await admin.close()
  }
}

test('an unwatched instance opens no LISTEN connection and sees a revocation by another instance within 1 s', { skip }, async () => {
  const watching: Domicile = await createDomicile({ config })
  const oneShot: Domicile = await createDomicile({ config, changeFeed: false })
  try {
    await watching.migrate()
    const { key, keyState } = await watching.keys.provision('acme', { custody: 'kms' })
    await watching.addTenant('acme', { region: 'eu-west-1', key, keyState })
    await watching.withTenant('acme', (s) => s.table('customers').insert({ id: 'c1', name: 'Ada', email: 'ada@example.eu', tax_id: 'DE123' }))

    const reveal = () => oneShot.withTenant('acme', async (s) => {
      const row = await s.table('customers').get('c1')
      return s.reveal(row!.tax_id, { purpose: 'unwatched directory test', actor: 'test' })
    })
    assert.equal(await reveal(), 'DE123')
    // Only the watching instance follows the feed (its LISTEN connection started with its first lookup).
    const feeds = await listeners()
    assert.equal(feeds, 1, 'exactly one LISTEN connection: the watching instance; the one-shot instance has none')

    const revokedAt = Date.now()
    await watching.keys.revoke('acme', 'test')
    let darkAfter: number | undefined
    while (Date.now() - revokedAt < 5000) {
      try {
        await reveal()
      } catch (e) {
        assert.ok(isDomicileError(e, 'ERR_KEY_REVOKED'), `revoked key refused with ERR_KEY_REVOKED, got ${String((e as { code?: string }).code)}`)
        darkAfter = Date.now() - revokedAt
        break
      }
      await new Promise((r) => setTimeout(r, 20))
    }
    assert.ok(darkAfter !== undefined, 'the one-shot instance never saw the revocation')
    // The bound: one trust period plus one reveal round on a loaded 2-core machine.
    assert.ok(darkAfter <= UNWATCHED_TRUST_MS + 250, `dark after ${darkAfter} ms (bound ${UNWATCHED_TRUST_MS} ms)`)
  } finally {
    await oneShot.close()
    await watching.close()
  }
})
