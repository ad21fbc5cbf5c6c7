/**
 * The residency linter's static scan for application code that talks to a store directly instead
 * of going through Domicile's data layer (which pins every statement to the tenant's region, sets
 * the verified tenant context and seals sensitive fields).
 *
 * Flagged: a static `import ... from 'X'`, a side-effect `import 'X'`, `export ... from 'X'`,
 * `require('X')` and a dynamic `import('X')` of a store driver X (or a subpath `X/...`), in .js,
 * .mjs, .cjs, .jsx, .ts, .mts, .cts and .tsx files. Not flagged: `import type` / `export type`
 * (erased at compile time, it opens no connection), and `kysely` itself (Domicile's scope hands out a
 * Kysely on the scope's session; a Kysely `PostgresDialect` of one's own needs a `pg` pool, whose
 * import is flagged). Comments are skipped; `node_modules` and hidden directories are not scanned,
 * symbolic links are not followed, files over 4 MiB are skipped (generated bundles).
 */
import { lstat, readdir, readFile } from 'node:fs/promises'
import { extname, join, relative } from 'node:path'

/** Packages that open a PostgreSQL-speaking store by themselves. */
export const STORE_DRIVER_PACKAGES: readonly string[] = [
  'pg', 'pg-pool', 'pg-native', 'pg-copy-streams', 'pg-cursor', 'pg-query-stream', 'pg-promise',
  'postgres', '@electric-sql/pglite', '@neondatabase/serverless', '@vercel/postgres', 'slonik',
]

const SOURCE_EXTENSIONS = new Set(['.js', '.mjs', '.cjs', '.jsx', '.ts', '.mts', '.cts', '.tsx'])
const MAX_FILE_BYTES = 4 * 1024 * 1024

export interface DriverImport {
  /** The imported package (as written, e.g. `pg` or `@electric-sql/pglite/worker`). */
  readonly specifier: string
  /** 1-based line of the import statement / call. */
  readonly line: number
}

export interface DriverImportHit extends DriverImport {
  /** The file, relative to the working directory when under it, else absolute. */
  readonly file: string
}

function isDriver(specifier: string): boolean {
  return STORE_DRIVER_PACKAGES.some((p) => specifier === p || specifier.startsWith(`${p}/`))
}

/**
 * The text with comments replaced by spaces (newlines kept, so offsets and lines stay true), and
 * where its string literals are (an import written inside a string is not an import).
 */
export function blankComments(text: string): { code: string; strings: Array<readonly [number, number]> } {
  const out = text.split('')
  const strings: Array<readonly [number, number]> = []
  let i = 0
  while (i < text.length) {
    const ch = text[i]!
    const next = text[i + 1]
    if (ch === '/' && next === '/') {
      while (i < text.length && text[i] !== '\n') out[i++] = ' '
    } else if (ch === '/' && next === '*') {
      const end = text.indexOf('*/', i + 2)
      const stop = end === -1 ? text.length : end + 2
      for (; i < stop; i++) if (text[i] !== '\n') out[i] = ' '
    } else if (ch === '"' || ch === "'" || ch === '`') {
      const start = i
      i++
      while (i < text.length && text[i] !== ch) {
        if (text[i] === '\\') i++
        else if (ch !== '`' && text[i] === '\n') break
        i++
      }
      i++
      strings.push([start, i])
    } else i++
  }
  return { code: out.join(''), strings }
}

function insideString(strings: ReadonlyArray<readonly [number, number]>, index: number): boolean {
  let lo = 0
  let hi = strings.length - 1
  while (lo <= hi) {
    const mid = (lo + hi) >> 1
    const [a, b] = strings[mid]!
    if (index < a) hi = mid - 1
    else if (index >= b) lo = mid + 1
    else return true
  }
  return false
}

const Q = `(?:'([^'\\n]+)'|"([^"\\n]+)"|\`([^\`\\n$]+)\`)`
const PATTERNS: readonly RegExp[] = [
  // import x from 'm' / import {a, b} from 'm' / import * as m from 'm' / export {a} from 'm' / export * from 'm'
  new RegExp(`(?<![\\w$.])(import|export)\\s*(type\\s+)?(?:[\\w$*{][^;'"\`]*?\\s*from\\s*)${Q}`, 'g'),
  // import 'm'
  new RegExp(`(?<![\\w$.])import\\s*()()${Q}`, 'g'),
  // require('m') / import('m')
  new RegExp(`(?<![\\w$.])(require|import)\\s*\\(\\s*()${Q}\\s*[,)]`, 'g'),
]

/** The store-driver imports of one source text. */
export function findDriverImports(text: string): DriverImport[] {
  const { code, strings } = blankComments(text)
  const hits = new Map<number, DriverImport>()
  for (const re of PATTERNS) {
    re.lastIndex = 0
    for (let m = re.exec(code); m !== null; m = re.exec(code)) {
      if (m[2]) continue // import type / export type: erased, opens nothing
      if (insideString(strings, m.index)) continue
      const specifier = m[3] ?? m[4] ?? m[5] ?? ''
      if (!isDriver(specifier)) continue
      hits.set(m.index, { specifier, line: lineAt(code, m.index) })
    }
  }
  return [...hits.entries()].sort((a, b) => a[0] - b[0]).map(([, h]) => h)
}

function lineAt(text: string, index: number): number {
  let line = 1
  for (let i = text.indexOf('\n'); i !== -1 && i < index; i = text.indexOf('\n', i + 1)) line++
  return line
}

export interface DriverScanResult {
  readonly hits: readonly DriverImportHit[]
  readonly filesScanned: number
}

/** Scans directories (recursively) for store-driver imports. `dirs` must exist (checked by the caller). */
export async function scanDriverImports(dirs: readonly string[], cwd = process.cwd()): Promise<DriverScanResult> {
  const hits: DriverImportHit[] = []
  let filesScanned = 0
  const seen = new Set<string>()
  const visit = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true })
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    for (const e of entries) {
      const path = join(dir, e.name)
      if (e.isDirectory()) {
        if (e.name === 'node_modules' || e.name.startsWith('.')) continue
        await visit(path)
      } else if (e.isFile() && SOURCE_EXTENSIONS.has(extname(e.name)) && !e.name.endsWith('.d.ts')) {
        if (seen.has(path)) continue
        seen.add(path)
        if ((await lstat(path)).size > MAX_FILE_BYTES) continue
        filesScanned++
        const rel = relative(cwd, path)
        const file = rel.startsWith('..') || rel === '' ? path : rel
        for (const h of findDriverImports(await readFile(path, 'utf8'))) hits.push({ file, ...h })
      }
    }
  }
  for (const d of dirs) await visit(d)
  return { hits, filesScanned }
}
