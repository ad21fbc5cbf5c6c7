/**
 * Compiles the TypeScript sources for running, with esbuild (a devDependency):
 *
 * - The CLI bundle (`bundleCli`): src/cli/main.ts and everything it imports, including kysely and
 *   pg, in a few ESM chunks under dist/cli-bundle/ (commands stay lazily loaded chunks), with the
 *   bundled packages' licenses in THIRD_PARTY_LICENSES.txt. PGlite, pkcs11js and the AWS SDK stay
 *   external. Loading ~300 small modules (kysely alone is 263 files, pg ~20) was the largest part of
 *   a command's start-up; `npm run build` writes this bundle next to tsc's dist/ and
 *   bin/domicile.mjs prefers it.
 * - A checkout's cache (`compiledPackage`): the installed layout (package.json, bin/domicile.mjs,
 *   dist/cli-bundle/, and with `library: true` dist/ with one file per source file for
 *   `import 'domicile'`), so the
 *   `domicile` command in a checkout starts like the installed package instead of going through
 *   tsx's loader (~0.5 s per process). It lives in node_modules/.cache/domicile/<key>/; the key
 *   hashes every file under src/ (path, size, mtime), package.json, tsconfig.json,
 *   bin/domicile.mjs, this script and the esbuild version, so editing a source file makes the next
 *   run rebuild (~0.5 s). Concurrent processes build into private temp directories and rename;
 *   the first rename wins. Nothing outside the checkout is read or written.
 *
 * Usage: `node scripts/compile-sources.mjs [--library]` prints the cached package directory
 * (building it if needed); `node scripts/compile-sources.mjs --bundle-cli DIR` writes the CLI
 * bundle to DIR.
 */
import { createHash } from 'node:crypto'
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

const DEFAULT_ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)))
/** Cache directories not used for this long are removed when another one is built. */
const STALE_MS = 60 * 60 * 1000

function sourceFiles(dir) {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath ?? e.path, e.name))
    .sort()
}

/** The cache key of a checkout: what the compiled output depends on. */
export function cacheKey(root = DEFAULT_ROOT, esbuildVersion = '') {
  const h = createHash('sha256')
  h.update(`esbuild ${esbuildVersion}\n`)
  for (const f of sourceFiles(join(root, 'src'))) {
    const st = statSync(f)
    h.update(`${relative(root, f).split(sep).join('/')}\0${st.size}\0${st.mtimeMs}\n`)
  }
  for (const f of ['package.json', 'tsconfig.json', join('bin', 'domicile.mjs'), join('scripts', 'compile-sources.mjs')]) h.update(readFileSync(join(root, f)))
  return h.digest('hex').slice(0, 16)
}

function esbuildVersion(root) {
  try {
    return JSON.parse(readFileSync(join(root, 'node_modules', 'esbuild', 'package.json'), 'utf8')).version
  } catch {
    return ''
  }
}

/**
 * Left out of the CLI bundle: backends users install only when they use them (PGlite's WASM files
 * sit beside its module; pkcs11js is native; the AWS SDK is large), and pg's own optional extras.
 * pg is bundled: loading its ~20 CommonJS modules cost a PostgreSQL command ~80 ms.
 */
const EXTERNAL = ['@electric-sql/pglite', 'pkcs11js', '@aws-sdk/*', 'pg-native', 'pg-cloudflare']

/**
 * Bundles the CLI (src/cli/main.ts) into `outdir` (two levels below the package root: main.js
 * reads ../../package.json), with THIRD_PARTY_LICENSES.txt: the license of every package bundled.
 */
export async function bundleCli(root = DEFAULT_ROOT, outdir = join(root, 'dist', 'cli-bundle')) {
  const { build } = await import('esbuild')
  const result = await build({
    entryPoints: { main: join(root, 'src', 'cli', 'main.ts') },
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    external: EXTERNAL,
    // Bundled CommonJS (pg) requires Node's built-in modules.
    banner: { js: "import { createRequire as __domicileCreateRequire } from 'node:module'; const require = __domicileCreateRequire(import.meta.url);" },
    metafile: true,
    sourcemap: 'linked',
    sourcesContent: false,
    tsconfig: join(root, 'tsconfig.json'),
    logLevel: 'silent',
  })
  writeFileSync(join(outdir, 'THIRD_PARTY_LICENSES.txt'), thirdPartyLicenses(root, Object.keys(result.metafile.inputs)))
}

/** The name, version and license text of each node_modules package among `inputs`. */
function thirdPartyLicenses(root, inputs) {
  const dirs = new Set()
  for (const input of inputs) {
    const m = /^(.*?node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input.split(sep).join('/'))
    if (m) dirs.add(m[1])
  }
  const parts = ['Third-party software bundled in this directory (the domicile CLI bundle).\n']
  for (const dir of [...dirs].sort()) {
    const abs = resolve(root, dir)
    const pkg = JSON.parse(readFileSync(join(abs, 'package.json'), 'utf8'))
    const file = readdirSync(abs).find((f) => /^(licen[cs]e|copying)(\.(md|txt))?$/i.test(f))
    parts.push(`${'='.repeat(72)}\n${pkg.name}@${pkg.version} (${pkg.license ?? 'see below'})\n${'='.repeat(72)}\n${file ? readFileSync(join(abs, file), 'utf8').trim() : `License: ${pkg.license ?? 'unknown'} (no license file in the package)`}\n`)
  }
  return parts.join('\n')
}

/**
 * Returns the directory of the compiled package for the checkout at `root`, building it first when
 * the sources changed. `library: false` (the CLI's need) builds only the CLI bundle, so a file the
 * CLI does not import cannot break it; `library: true` also compiles every source file to dist/ for
 * `import 'domicile'` (the docs test). Throws when esbuild is missing (run `npm install` in the
 * checkout) or the sources do not compile.
 */
export async function compiledPackage(root = DEFAULT_ROOT, { library = false } = {}) {
  const cache = join(root, 'node_modules', '.cache', 'domicile')
  const key = `${cacheKey(root, esbuildVersion(root))}${library ? '-lib' : ''}`
  const dir = join(cache, key)
  if (existsSync(join(dir, 'package.json'))) {
    touch(dir)
    return dir
  }
  // Sources that failed to compile fail fast until they change (the caller falls back to tsx).
  const failed = join(cache, `.failed-${key}`)
  if (existsSync(failed)) throw new Error(`the sources did not compile: ${readFileSync(failed, 'utf8').split('\n')[0]}`)
  const { build } = await import('esbuild')
  mkdirSync(cache, { recursive: true })
  const tmp = join(cache, `.tmp-${key}-${process.pid}-${Date.now()}`)
  try {
    if (library) {
      const entryPoints = sourceFiles(join(root, 'src')).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
      await build({
        entryPoints,
        outbase: join(root, 'src'),
        outdir: join(tmp, 'dist'),
        bundle: false,
        format: 'esm',
        platform: 'node',
        target: 'node20',
        sourcemap: 'linked',
        sourcesContent: false,
        tsconfig: join(root, 'tsconfig.json'),
        logLevel: 'silent',
      })
    }
    await bundleCli(root, join(tmp, 'dist', 'cli-bundle'))
    mkdirSync(join(tmp, 'bin'))
    cpSync(join(root, 'bin', 'domicile.mjs'), join(tmp, 'bin', 'domicile.mjs'))
    writeFileSync(join(tmp, 'package.json'), readFileSync(join(root, 'package.json')))
    try {
      renameSync(tmp, dir)
    } catch (e) {
      // Another process finished the same build first: use its copy.
      if (!existsSync(join(dir, 'package.json'))) throw e
    }
  } catch (e) {
    if (Array.isArray(e?.errors)) writeFileSync(failed, `${e.errors.map((x) => `${x.location?.file ?? ''}:${x.location?.line ?? ''}: ${x.text}`).join('\n')}\n`)
    throw e
  } finally {
    rmSync(tmp, { recursive: true, force: true })
  }
  prune(cache, key)
  return dir
}

/** Marks a cache directory as used (its mtime), so pruning keeps it. */
function touch(dir) {
  try {
    const now = new Date()
    utimesSync(dir, now, now)
  } catch {
    // Read-only checkout: the cache still works, it is only pruned sooner.
  }
}

/** Removes cache directories unused for an hour (a running process may still load from a recent one). */
function prune(cache, keep) {
  for (const name of readdirSync(cache)) {
    if (name === keep) continue
    const p = join(cache, name)
    try {
      if (Date.now() - statSync(p).mtimeMs > STALE_MS) rmSync(p, { recursive: true, force: true })
    } catch {
      // Removed concurrently.
    }
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--bundle-cli')
  if (i > 0) await bundleCli(DEFAULT_ROOT, resolve(process.argv[i + 1] ?? join(DEFAULT_ROOT, 'dist', 'cli-bundle')))
  else process.stdout.write(`${await compiledPackage(DEFAULT_ROOT, { library: process.argv.includes('--library') })}\n`)
}
