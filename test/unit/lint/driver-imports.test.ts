/**
 * The static scan for direct store-driver imports: every import form, with its line; comments,
 * strings, type-only imports and look-alike packages are not imports of a driver.
 */
import { strict as assert } from 'node:assert'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { findDriverImports, scanDriverImports } from '../../../src/lint/driver-imports.js'
import { makeTempDir } from '../../support/cli.js'

const SOURCE = [
  "import x from './pg'",                               // 1 local file
  "import 'pg'",                                        // 2
  'export * from "pg-pool"',                            // 3
  "const y = await import('postgres')",                 // 4
  "/* require('pg') */ const z = 1",                    // 5 comment
  'const s = "require(\'pg\')"',                        // 6 string
  "import { sql } from 'kysely'",                       // 7 not a driver
  "import {",                                           // 8
  '  PGlite,',
  "} from '@electric-sql/pglite/worker'",               // 10
  "foo.require('pg')",                                  // 11 a method
  "export type { Client } from 'pg'",                   // 12 type-only
  'const c = require(`pg`)',                            // 13
  "// import pg from 'pg'",                             // 14 comment
  "import { type Pool, Client } from 'pg'",             // 15
  "import pgx from 'pgx-utils'",                        // 16 another package
].join('\n')

describe('store-driver imports', () => {
  test('finds each import form on its line, and nothing in comments, strings or type-only imports', () => {
    assert.deepEqual(findDriverImports(SOURCE), [
      { specifier: 'pg', line: 2 },
      { specifier: 'pg-pool', line: 3 },
      { specifier: 'postgres', line: 4 },
      { specifier: '@electric-sql/pglite/worker', line: 8 },
      { specifier: 'pg', line: 13 },
      { specifier: 'pg', line: 15 },
    ])
  })

  const dir = makeTempDir('lint-scan-')
  after(async () => (await dir).cleanup())

  test('scans source files recursively, skipping node_modules, hidden directories and other extensions', async () => {
    const root = (await dir).path
    await mkdir(join(root, 'app', 'db'), { recursive: true })
    await mkdir(join(root, 'app', 'node_modules', 'pg'), { recursive: true })
    await mkdir(join(root, 'app', '.cache'), { recursive: true })
    await writeFile(join(root, 'app', 'db', 'raw.mjs'), "\n\nimport pg from 'pg'\n")
    await writeFile(join(root, 'app', 'legacy.cjs'), "const { PGlite } = require('@electric-sql/pglite')\n")
    await writeFile(join(root, 'app', 'ok.ts'), "import { createDomicile } from 'domicile'\n")
    await writeFile(join(root, 'app', 'node_modules', 'pg', 'index.js'), "require('pg-pool')\n")
    await writeFile(join(root, 'app', '.cache', 'x.js'), "require('pg')\n")
    await writeFile(join(root, 'app', 'notes.md'), "import pg from 'pg'\n")
    const r = await scanDriverImports([join(root, 'app')], root)
    assert.equal(r.filesScanned, 3)
    assert.deepEqual(r.hits, [
      { file: join('app', 'db', 'raw.mjs'), specifier: 'pg', line: 3 },
      { file: join('app', 'legacy.cjs'), specifier: '@electric-sql/pglite', line: 1 },
    ])
  })
})
