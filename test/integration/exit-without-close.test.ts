/**
 * An application that forgets `domicile.close()` still exits when its work is done: idle pooled
 * connections and the LISTEN subscription do not keep the process alive, nor do timers. A real
 * child process on real PostgreSQL (two roles) and on embedded PGlite.
 */
import { strict as assert } from 'node:assert'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { pathToFileURL } from 'node:url'
import { REPO_ROOT } from '../support/cli.js'
import { postgresUnavailable, startPgCluster, type PgCluster } from '../support/pg-cluster.js'

const SCRIPT = (config: unknown) => `
import { createDomicile, parseConfig } from ${JSON.stringify(pathToFileURL(join(REPO_ROOT, 'src', 'index.ts')).href)}
const d = await createDomicile({ config: parseConfig(${JSON.stringify(config)}, process.cwd()) })
await d.migrate()
await d.addTenant('acme', { region: 'eu-west-1' })
const rows = await d.withTenant('acme', (s) => s.sql('SELECT 1 AS one'))
console.log(JSON.stringify(rows))
// no d.close()
`

/** Runs the script; resolves with its exit code, or 'hung' if it is still alive after the limit. */
function runScript(dir: string, config: unknown, limitMs: number): Promise<{ code: number | null | 'hung'; stdout: string; stderr: string }> {
  writeFileSync(join(dir, 'app.mts'), SCRIPT(config))
  writeFileSync(join(dir, 'schema.mjs'), "export default { items: { scope: 'tenant', primaryKey: 'id', columns: { id: { type: 'text' } } } }\n")
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', pathToFileURL(join(REPO_ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href, 'app.mts'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_NO_WARNINGS: '1' } })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (b) => (stdout += b))
    child.stderr.on('data', (b) => (stderr += b))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      resolve({ code: 'hung', stdout, stderr })
    }, limitMs)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

describe('a process that forgets close() exits when its work is done', () => {
  let dir: string
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'domicile-noclose-'))
  })
  after(() => rmSync(dir, { recursive: true, force: true }))

  // PGlite's own WASM timers (not ours to unref) delay the exit by some seconds: bounded, not forever.
  test('embedded PGlite', async () => {
    const r = await runScript(dir, {
      regions: { 'eu-west-1': { driver: 'pglite', dataDir: 'memory://' } }, controlPlane: { driver: 'pglite', dataDir: 'memory://' },
      schema: './schema.mjs', keys: { dir: './keys' },
    }, 150_000)
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout.trim(), '[{"one":1}]')
  })

  describe('real PostgreSQL', { skip: postgresUnavailable() }, () => {
    let cluster: PgCluster
    before(async () => {
      cluster = await startPgCluster('noclose')
    })
    after(() => cluster?.destroy())

    test('pooled connections and the LISTEN subscription', async () => {
      const r = await runScript(dir, {
        regions: { 'eu-west-1': { driver: 'postgres', url: cluster.database('eu') } },
        controlPlane: { driver: 'postgres', url: cluster.database('control') },
        schema: './schema.mjs', keys: { dir: './keys-pg' },
      }, 60_000)
      assert.equal(r.code, 0, r.stderr)
      assert.equal(r.stdout.trim(), '[{"one":1}]')
    })
  })
})
