/**
 * The store-driver conformance suite on real PostgreSQL 15: one cluster per region plus one for
 * the control plane, started with initdb/pg_ctl on free loopback ports and removed afterwards.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseConfig } from '../../src/index.js'
import { runStoreDriverSuite } from '../conformance/store-driver-suite.js'
import { postgresUnavailable, startPgCluster, type PgCluster } from '../support/pg-cluster.js'

const missing = postgresUnavailable()
if (missing) {
  const { test } = await import('node:test')
  test('store driver conformance: postgres', { skip: missing }, () => {})
} else {
  runStoreDriverSuite({
    name: 'postgres',
    async setup() {
      const dir = mkdtempSync(join(tmpdir(), 'domicile-pg-suite-'))
      const clusters: PgCluster[] = []
      try {
        clusters.push(await startPgCluster('us'), await startPgCluster('eu'), await startPgCluster('cp'))
      } catch (e) {
        for (const c of clusters) c.destroy()
        throw e
      }
      const [us, eu, cp] = clusters as [PgCluster, PgCluster, PgCluster]
      const byRegion: Record<string, PgCluster> = { 'us-east-1': us, 'eu-west-1': eu }
      return {
        exclusive: false,
        config: (o = {}) => parseConfig({
          regions: {
            'us-east-1': { driver: 'postgres', url: (o.swapRegions ? eu : us).database('region'), connectTimeoutMs: 1000 },
            'eu-west-1': { driver: 'postgres', url: (o.swapRegions ? us : eu).database('region'), connectTimeoutMs: 1000 },
          },
          controlPlane: { driver: 'postgres', url: cp.database('control') },
          schema: './unused.mjs',
          keys: { dir: join(dir, 'keys') },
        }, dir),
        stopRegion: (r) => byRegion[r]!.stop(),
        startRegion: (r) => byRegion[r]!.start(),
        async teardown() {
          for (const c of clusters) c.destroy()
          rmSync(dir, { recursive: true, force: true })
        },
      }
    },
  })
}
