/** The store-driver conformance suite on embedded PGlite stores (on disk, so they can be reopened). */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseConfig } from '../../src/index.js'
import { runStoreDriverSuite } from '../conformance/store-driver-suite.js'

runStoreDriverSuite({
  name: 'pglite',
  async setup() {
    const dir = mkdtempSync(join(tmpdir(), 'domicile-pglite-suite-'))
    const us = join(dir, 'us'), eu = join(dir, 'eu')
    return {
      exclusive: true,
      config: (o = {}) => parseConfig({
        regions: {
          'us-east-1': { driver: 'pglite', dataDir: o.swapRegions ? eu : us },
          'eu-west-1': { driver: 'pglite', dataDir: o.swapRegions ? us : eu },
        },
        controlPlane: { driver: 'pglite', dataDir: join(dir, 'cp') },
        schema: './unused.mjs',
        keys: { dir: join(dir, 'keys') },
      }, dir),
      async teardown() {
        rmSync(dir, { recursive: true, force: true })
      },
    }
  },
})
