/**
 * The residency linter (`domicile lint`, docs/LINT.md). It fails when
 * 1. a global table (copied to every region) has a column whose name looks personal, unless the
 *    schema waives it with a reason (`residency: { notPersonal: '...' }`);
 * 2. a global table holds values that look personal (e-mail addresses, IBANs, phone numbers) in a
 *    bounded sample of the live data of every store holding a copy (control plane and each region);
 * 3. application source files import a store driver (`pg`, PGlite, ...) instead of going through
 *    Domicile's data layer (a static scan of the configured source directories);
 * and a store it could not sample is a failure too (it cannot vouch for data it did not read).
 * The result also classifies every table and column. No sampled value ever appears in it.
 *
 * @example
 * ```ts
 * import { createDomicile, lintResidency } from 'domicile'
 * const domicile = await createDomicile()
 * const result = await lintResidency(domicile, { sources: ['src'] })
 * if (!result.ok) for (const f of result.findings) console.error(f.rule, f.message)
 * await domicile.close()
 * ```
 */
import { stat } from 'node:fs/promises'
import { resolve } from 'node:path'
import type { Domicile } from '../domicile.js'
import { internalsOf } from '../domicile-internals.js'
import { DomicileError, type DomicileErrorCode } from '../errors.js'
import { scanDriverImports } from './driver-imports.js'
import { sampleGlobalTable, storeFailure, type LintStore } from './global-data-sample.js'
import { personalNameCategory, type PersonalNameCategory } from './personal-names.js'
import { PERSONAL_VALUE_KINDS, type PersonalValueKind } from './personal-values.js'
import { classifySchema, type TableClassification } from './schema-classification.js'

/**
 * The code of a failed lint. TODO(lead): 'ERR_LINT_FAILED' once src/errors.ts has it; until then
 * the closest existing code. Its exit status is 1 either way (the system's state, not the input).
 */
export const LINT_FAILED_CODE: DomicileErrorCode = 'ERR_LINT_FAILED'

export const DEFAULT_SAMPLE_ROWS = 1000

export type LintRule =
  | 'personal-column-name'
  | 'personal-values'
  | 'direct-driver-import'
  /** A store holding global tables could not be sampled (down, not migrated). */
  | 'store-unchecked'
  /** A global table is missing in a store (not migrated there). */
  | 'table-missing'
  /** No source directory configured: the driver-import rule did not run. */
  | 'sources-unchecked'

export interface LintFinding {
  readonly rule: LintRule
  /** Errors fail the lint; warnings do not. */
  readonly severity: 'error' | 'warning'
  readonly table?: string
  readonly column?: string
  /** `control-plane` or `region:<name>`. */
  readonly store?: string
  readonly file?: string
  readonly line?: number
  /** personal-column-name: the category the name looks like; personal-values: the kind of value. */
  readonly category?: PersonalNameCategory | PersonalValueKind
  /** personal-values: how many sampled values matched, of how many sampled. */
  readonly matched?: number
  readonly sampled?: number
  readonly message: string
}

export interface LintOptions {
  /**
   * Source directories to scan for store-driver imports (relative to `cwd`). Default: the config's
   * `lint.sources`; with neither, that rule does not run (a warning says so).
   */
  readonly sources?: readonly string[]
  /** Rows sampled per global table per store. Default: the config's `lint.sampleRows`, else 1000. */
  readonly sampleRows?: number
  /** Resolves `sources` and shortens file names in findings. Default process.cwd(). */
  readonly cwd?: string
}

export interface LintResult {
  /** true when there is no error finding. */
  readonly ok: boolean
  readonly findings: readonly LintFinding[]
  readonly tables: readonly TableClassification[]
  readonly checked: {
    readonly stores: readonly string[]
    readonly sampleRows: number
    readonly sources: readonly string[]
    readonly filesScanned: number
  }
}

const VALUE_WORDS: Readonly<Record<PersonalValueKind, string>> = { email: 'an e-mail address', iban: 'an IBAN', phone: 'a phone number' }

/** Runs the residency linter against a live Domicile instance. Never throws for findings. */
export async function lintResidency(d: Domicile, opts: LintOptions = {}): Promise<LintResult> {
  const parts = internalsOf(d)
  const cwd = opts.cwd ?? process.cwd()
  const sampleRows = opts.sampleRows ?? parts.config?.lint?.sampleRows ?? DEFAULT_SAMPLE_ROWS
  /* Precondition: the sample size is a positive integer no larger than 100000. */
  if (!Number.isInteger(sampleRows) || sampleRows < 1 || sampleRows > 100_000) {
    throw new DomicileError('ERR_INPUT_INVALID', 'sampleRows: expected an integer from 1 to 100000.', { path: 'sampleRows' })
  }
  const sources = opts.sources !== undefined ? opts.sources.map((s) => resolve(cwd, s)) : [...(parts.config?.lint?.sources ?? [])]
  for (const dir of sources) {
    /* Precondition: every source directory to scan exists. */
    const st = await stat(dir).catch(() => undefined)
    if (!st?.isDirectory()) throw new DomicileError('ERR_INPUT_INVALID', `lint source directory ${dir} does not exist or is not a directory. Fix --src or "lint.sources" in the config.`, { path: 'sources' })
  }

  const findings: LintFinding[] = []
  const tables = classifySchema(parts.schema)
  const globals = [...parts.schema.tables.values()].filter((t) => t.scope === 'global')

  // 1. Column names of global tables.
  for (const t of tables) {
    if (t.scope !== 'global') continue
    for (const c of t.columns) {
      if (c.looksPersonal === null || c.waiver !== null) continue
      findings.push({
        rule: 'personal-column-name', severity: 'error', table: t.name, column: c.name, category: c.looksPersonal,
        message: `Global table "${t.name}", column "${c.name}": the name looks personal (${c.looksPersonal}). Global tables are copied to every region, so personal data there leaves its home region. Move the column to a tenant table, or, if it holds no personal data, waive the check in the schema with residency: { notPersonal: 'why' }.`,
      })
    }
  }

  // 2. Live values of global tables, in every store holding a copy.
  const stores: LintStore[] = [
    { name: 'control-plane', withSession: (fn) => parts.controlPlane.withSession(fn, { role: 'owner' }) },
    // Every cell of every region holds a copy.
    ...parts.router.stores.map((w): LintStore => ({ name: `region:${parts.router.label(w)}`, withSession: (fn) => parts.router.withRegionAdmin(w, fn) })),
  ]
  if (globals.length > 0) {
    for (const store of stores) {
      for (const table of globals) {
        let sample
        try {
          sample = await sampleGlobalTable(store, table, sampleRows)
        } catch (e) {
          findings.push({
            rule: 'store-unchecked', severity: 'error', store: store.name,
            message: `Could not sample the global tables in store ${store.name} (${storeFailure(e)}). The lint cannot vouch for data it did not read: make the store reachable and run it again.`,
          })
          break
        }
        if (!sample.present) {
          findings.push({ rule: 'table-missing', severity: 'warning', table: table.name, store: store.name, message: `Global table "${table.name}" does not exist in store ${store.name}: run "domicile migrate".` })
          continue
        }
        for (const c of sample.columns) {
          if (personalNameCategory(c.column) !== undefined && !table.columns.has(c.column)) {
            findings.push({
              rule: 'personal-column-name', severity: 'error', table: table.name, column: c.column, store: store.name, category: personalNameCategory(c.column)!,
              message: `Global table "${table.name}" in store ${store.name} has a column "${c.column}" that the schema does not declare and whose name looks personal. Drop it, or declare it in the schema.`,
            })
          }
          for (const kind of PERSONAL_VALUE_KINDS) {
            const matched = c.matches[kind]
            if (matched === 0) continue
            findings.push({
              rule: 'personal-values', severity: 'error', table: table.name, column: c.column, store: store.name, category: kind, matched, sampled: c.sampled,
              message: `Global table "${table.name}", column "${c.column}", store ${store.name}: ${matched} of ${c.sampled} sampled values contain ${VALUE_WORDS[kind]} (values not shown). Global tables are copied to every region: move these values to a tenant table and delete them here.`,
            })
          }
        }
      }
    }
  }

  // 3. Application code that imports a store driver.
  let filesScanned = 0
  if (sources.length === 0) {
    findings.push({ rule: 'sources-unchecked', severity: 'warning', message: 'No source directory to scan for direct store-driver imports: pass --src DIR or set "lint": { "sources": ["src"] } in the config.' })
  } else {
    const scan = await scanDriverImports(sources, cwd)
    filesScanned = scan.filesScanned
    for (const h of scan.hits) {
      findings.push({
        rule: 'direct-driver-import', severity: 'error', file: h.file, line: h.line,
        message: `${h.file}:${h.line} imports the store driver "${h.specifier}" directly. Application code reaches the stores through Domicile (withTenant, tenant(id).table(...)), which pins each statement to the tenant's region under its verified tenant context and seals sensitive fields. Remove the import.`,
      })
    }
  }

  return {
    ok: !findings.some((f) => f.severity === 'error'),
    findings,
    tables,
    checked: { stores: globals.length > 0 ? stores.map((s) => s.name) : [], sampleRows, sources, filesScanned },
  }
}

/** The error for a lint that did not pass (the CLI prints it after the findings). */
export function lintFailure(result: LintResult): DomicileError {
  const errors = result.findings.filter((f) => f.severity === 'error').length
  return new DomicileError(LINT_FAILED_CODE, `residency lint failed with ${errors} finding${errors === 1 ? '' : 's'}; fix each one (docs/LINT.md) and run "domicile lint" again.`)
}
