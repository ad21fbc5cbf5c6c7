/**
 * Every code block in README.md and docs/*.md runs as written, as a newcomer would run it: each
 * document gets a fresh directory inside a temp project whose node_modules/domicile is this checkout
 * (compiled by scripts/compile-sources.mjs into the installed layout: package.json, bin/, dist/), and
 * its blocks run in document order in that directory:
 * - sh/bash blocks: `bash -e`, with `npx domicile` and `domicile` resolving to this checkout
 *   (node_modules/.bin, no network: npm runs offline). `npx domicile …` runs that same bin through a
 *   small `npx` in front on PATH (npm's own start-up costs ~0.8 s a call, over a hundred calls
 *   here); one test checks that the real npx resolves `domicile` to it, and every other `npx` call
 *   goes to the real one;
 * - js blocks: a plain-Node module (`node block.mjs`), importing 'domicile' like an application;
 * - ts blocks: a TypeScript module run through tsx;
 * - json blocks: must parse;
 * - untagged/text blocks are diagrams and layouts, not code.
 * Every block must exit 0 within its deadline: a snippet that forgets `close()` and hangs fails.
 * Documents added later are picked up automatically. A block that cannot run here carries an
 * explicit marker (test/support/doc-blocks.ts): `<!-- docs-test: skip: REASON -->`, or
 * `<!-- docs-test: postgres HOST -->` to run it against a real PostgreSQL cluster started here.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { REPO_ROOT } from '../support/cli.js'
import { extractBlocks, JS_LANGS, PROSE_LANGS, SHELL_LANGS, TS_LANGS, type DocBlock } from '../support/doc-blocks.js'
import { postgresUnavailable, startPgCluster, type PgCluster } from '../support/pg-cluster.js'

/** A shell block gets this long (a fresh `migrate` of three embedded stores is the slowest step). */
const SHELL_TIMEOUT_MS = 240_000
/** A program block gets this long: one that forgets `close()` and never exits fails here. */
const PROGRAM_TIMEOUT_MS = 60_000

const DOCS = ['README.md', ...readdirSync(join(REPO_ROOT, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)]

interface RunResult { readonly code: number | null; readonly stdout: string; readonly stderr: string; readonly timedOut: boolean }

function run(cmd: string, args: readonly string[], opts: { cwd: string; env: NodeJS.ProcessEnv; input?: string; timeoutMs: number }): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ['pipe', 'pipe', 'pipe'], detached: true })
    let stdout = ''
    let stderr = ''
    let timedOut = false
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d })
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
    const timer = setTimeout(() => {
      timedOut = true
      try {
        process.kill(-child.pid!, 'SIGKILL') // the whole group: npx, node, and what they started
      } catch {
        child.kill('SIGKILL')
      }
    }, opts.timeoutMs)
    child.on('error', (e) => { clearTimeout(timer); reject(e) })
    child.on('close', (code) => {
      clearTimeout(timer)
      // Whatever the block left running in the background (a key proxy whose trap did not run) goes too.
      try {
        process.kill(-child.pid!, 'SIGKILL')
      } catch {
        // the group is already empty
      }
      resolve({ code, stdout, stderr, timedOut })
    })
    child.stdin.end(opts.input ?? '')
  })
}

function which(bin: string): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/lib/postgresql/15/bin']) {
    if (dir && existsSync(join(dir, bin))) return join(dir, bin)
  }
  return undefined
}

describe('README and docs code blocks run as written', () => {
  let project = ''
  let env: NodeJS.ProcessEnv = {}
  let cluster: PgCluster | undefined
  let realNpx: string | undefined
  const needsPostgres = DOCS.some((d) => extractBlocks(d, readFileSync(join(REPO_ROOT, d), 'utf8')).some((b) => b.marker?.kind === 'postgres'))
  const pgMissing = needsPostgres ? postgresUnavailable() : undefined

  before(async () => {
    const { compiledPackage } = (await import(pathToFileURL(join(REPO_ROOT, 'scripts', 'compile-sources.mjs')).href)) as { compiledPackage(root: string, opts: { library: boolean }): Promise<string> }
    const pkg = await compiledPackage(REPO_ROOT, { library: true })
    project = await mkdtemp(join(tmpdir(), 'domicile-docs-'))
    await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'docs-reader', private: true }))
    await mkdir(join(project, 'node_modules', '.bin'), { recursive: true })
    await symlink(pkg, join(project, 'node_modules', 'domicile'), 'dir')
    await symlink(join(pkg, 'bin', 'domicile.mjs'), join(project, 'node_modules', '.bin', 'domicile'))
    env = { ...process.env }
    for (const k of Object.keys(env)) if (k.startsWith('DOMICILE_') || k.startsWith('npm_') || k.startsWith('PG')) delete env[k]
    // `npx domicile …` straight to the bin npx would run; anything else to the real npx.
    realNpx = which('npx')
    assert.ok(realNpx, 'npx not found on PATH')
    await mkdir(join(project, 'npx-shim'))
    await writeFile(join(project, 'npx-shim', 'npx'), `#!/bin/sh
if [ "$1" = domicile ]; then shift; exec ${JSON.stringify(join(project, 'node_modules', '.bin', 'domicile'))} "$@"; fi
exec ${JSON.stringify(realNpx)} "$@"
`, { mode: 0o755 })
    Object.assign(env, {
      PATH: `${join(project, 'npx-shim')}:${join(project, 'node_modules', '.bin')}:${process.env.PATH ?? ''}`,
      npm_config_offline: 'true', // `npx domicile` must resolve locally, never from the registry
      npm_config_update_notifier: 'false',
      npm_config_fund: 'false',
      npm_config_audit: 'false',
    })
    if (needsPostgres && pgMissing === undefined) {
      cluster = await startPgCluster('docs')
      Object.assign(env, { PGHOST: '127.0.0.1', PGPORT: String(cluster.port), PGUSER: 'postgres', PGDATABASE: 'postgres' })
    }
  })
  after(async () => {
    cluster?.destroy()
    if (project) await rm(project, { recursive: true, force: true })
  })

  test('the harness finds every document and its blocks (README.md and docs/*.md)', () => {
    assert.ok(DOCS.includes('README.md'))
    const readme = extractBlocks('README.md', readFileSync(join(REPO_ROOT, 'README.md'), 'utf8'))
    assert.ok(readme.some((b) => SHELL_LANGS.has(b.lang) && b.marker === undefined), 'README has a shell block that runs')
    assert.ok(readme.some((b) => JS_LANGS.has(b.lang) && b.code.includes("from 'domicile'")), 'README has a library snippet that runs')
  })

  test('the real npx resolves `domicile` to this checkout, offline (what the npx in front of it does)', async () => {
    const r = await run(realNpx!, ['domicile', '--version'], { cwd: project, env, timeoutMs: 60_000 })
    assert.equal(r.code, 0, r.stderr)
    const version = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version
    assert.equal(r.stdout.trim(), version)
    const shim = await run('npx', ['domicile', '--version'], { cwd: project, env, timeoutMs: 60_000 })
    assert.equal(shim.code, 0, shim.stderr)
    assert.equal(shim.stdout.trim(), version)
  })

  for (const doc of DOCS) {
    test(`${doc}: every code block runs`, async (t) => {
      const blocks = extractBlocks(doc, readFileSync(join(REPO_ROOT, doc), 'utf8'))
      const cwd = join(project, doc.replace(/[^A-Za-z0-9.-]/g, '_'))
      await mkdir(cwd, { recursive: true })
      let n = 0
      for (const b of blocks) {
        n++
        const where = `${doc}:${b.line} (${b.lang || 'untagged'} block)`
        if (b.marker?.kind === 'skip') {
          t.diagnostic(`${where}: not run: ${b.marker.reason}`)
          continue
        }
        if (b.marker?.kind === 'file') {
          await mkdir(dirname(join(cwd, b.marker.path)), { recursive: true })
          await writeFile(join(cwd, b.marker.path), b.code)
          continue
        }
        if (PROSE_LANGS.has(b.lang)) continue
        if (b.lang === 'json') {
          assert.doesNotThrow(() => JSON.parse(b.code), `${where}: not valid JSON`)
          continue
        }
        let code = b.code
        if (b.marker?.kind === 'postgres') {
          if (pgMissing !== undefined) {
            t.diagnostic(`${where}: not run: ${pgMissing}`)
            continue
          }
          for (const host of b.marker.hosts) code = code.split(host).join(`127.0.0.1:${cluster!.port}`)
        }
        const r = await runBlock(b, code, cwd, n, where)
        assert.ok(!r.timedOut, `${where}: still running at its deadline (a missing close()?)\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`)
        assert.equal(r.code, 0, `${where}: exited ${r.code}\n--- block ---\n${code}--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`)
      }
    })
  }

  async function runBlock(b: DocBlock, code: string, cwd: string, n: number, where: string): Promise<RunResult> {
    if (SHELL_LANGS.has(b.lang)) return run('bash', ['-e', '-o', 'pipefail', '-s'], { cwd, env, input: code, timeoutMs: SHELL_TIMEOUT_MS })
    if (JS_LANGS.has(b.lang)) {
      const file = join(cwd, `block-${n}.mjs`)
      await writeFile(file, code)
      return run(process.execPath, [file], { cwd, env, timeoutMs: PROGRAM_TIMEOUT_MS })
    }
    if (TS_LANGS.has(b.lang)) {
      const file = join(cwd, `block-${n}.mts`)
      await writeFile(file, code)
      return run(process.execPath, ['--import', import.meta.resolve('tsx'), file], { cwd, env, timeoutMs: PROGRAM_TIMEOUT_MS })
    }
    if (b.lang === 'sql' && b.marker?.kind === 'postgres') {
      const psql = which('psql')
      assert.ok(psql, `${where}: psql not found`)
      return run(psql, ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', '-'], { cwd, env, input: code, timeoutMs: SHELL_TIMEOUT_MS })
    }
    assert.fail(`${where}: a "${b.lang}" block cannot be run by this test. Make it runnable, or put <!-- docs-test: skip: REASON --> (or "postgres HOST") on the line before it.`)
  }
})
