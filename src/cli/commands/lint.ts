/**
 * `domicile lint [--src DIR ...] [--sample N]`: the residency linter (src/lint/, docs/LINT.md).
 * Prints the findings and the classification of every table and column (with --json one document
 * `{ ok, findings, tables, checked }`); exits 1 when any finding is an error, 0 otherwise.
 */
import { intOption, UsageError, type Command, type ParsedCommand } from '../cli-args.js'
import { formatTable, printJson, println } from '../cli-output.js'
import { withDomicile } from '../open-domicile.js'

function srcDirs(p: ParsedCommand): string[] | undefined {
  const v = (p.values as Record<string, unknown>).src
  if (v === undefined) return undefined
  const list = Array.isArray(v) ? v : [v]
  /* Precondition: every --src names a directory. */
  if (list.some((d) => typeof d !== 'string' || d === '')) throw new UsageError('--src needs a directory path', undefined)
  return list as string[]
}

export const lintCommand: Command = {
  spec: {
    synopsis: 'lint [--src DIR ...] [--sample N]',
    summary: 'residency linter: personal-looking columns or values in global tables, direct store-driver imports in --src (default: config "lint.sources"); prints every table\'s classification; exit 1 on any finding',
    options: { src: { type: 'string', multiple: true }, sample: { type: 'string' } },
  },
  async run(p) {
    const sources = srcDirs(p)
    const sampleRows = intOption(p.values, 'sample', 1, 100_000)
    const { lintResidency, lintFailure } = await import('../../lint/lint-residency.js')
    const result = await withDomicile(p, (d) => lintResidency(d, { ...(sources ? { sources } : {}), ...(sampleRows !== undefined ? { sampleRows } : {}) }))
    if (p.json) printJson(result)
    else {
      const errors = result.findings.filter((f) => f.severity === 'error').length
      const warnings = result.findings.length - errors
      println(`domicile lint: ${result.ok ? 'passed' : 'FAILED'} (${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'})`)
      if (result.findings.length > 0) {
        println('\nFindings')
        for (const f of result.findings) {
          const where = f.file !== undefined ? `${f.file}:${f.line}` : [f.table && f.column ? `${f.table}.${f.column}` : f.table, f.store].filter(Boolean).join(' @ ')
          println(`  ${f.severity.padEnd(7)} ${f.rule}${where ? `  ${where}` : ''}\n          ${f.message}`)
        }
      }
      println('\nClassification')
      for (const t of result.tables) {
        println(`  ${t.name} (${t.scope}${t.scope === 'global' ? ': copied to every region' : ': home region only'})`)
        println(formatTable(['COLUMN', 'TYPE', 'PROTECTION', 'NAME LOOKS', 'WAIVER'], t.columns.map((c) => [
          c.name, c.type, c.protection, c.looksPersonal ?? '-', c.waiver === null ? '-' : `not personal: ${c.waiver}`,
        ]), '    '))
      }
      const c = result.checked
      println(`\nChecked: stores ${c.stores.join(', ') || '(no global tables)'} (at most ${c.sampleRows} rows per table each); sources ${c.sources.join(', ') || '(none)'} (${c.filesScanned} files)`)
    }
    if (!result.ok) {
      const e = lintFailure(result)
      process.stderr.write(`domicile: ${e.code}: ${e.message}\n`)
      return 1
    }
    return 0
  },
}
