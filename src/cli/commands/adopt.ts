/**
 * `domicile adopt ...`: bring an existing single-database application under Domicile
 * (docs/ADOPTING.md). `adopt inspect` reads the region's existing database and proposes a schema
 * describing its tables as they are; it prints a summary (tables, rows, classification,
 * sensitive-column suggestions) or, with --json, one document `{ region, store, dbSchema,
 * tenantColumn, sampleRows, tables, suggestions, flagged, written, module }`. It needs the config
 * but not its schema file (that is what it writes).
 */
import { relative } from 'node:path'
import { DomicileError } from '../../errors.js'
import { intOption, runGroup, stringOption, type Command, type OptionValues } from '../cli-args.js'
import { formatTable, printJson, println } from '../cli-output.js'

/** --sensitive a.b,c.d (repeatable): the entries, trimmed; empty entries are refused. */
function sensitiveOption(values: OptionValues): string[] {
  const v = values.sensitive
  if (v === undefined) return []
  const list = (Array.isArray(v) ? v : [v]).flatMap((s) => String(s).split(','))
  /* Precondition: every --sensitive entry names a column. */
  if (list.some((s) => s.trim() === '')) throw new DomicileError('ERR_INPUT_INVALID', '--sensitive: expected TABLE.COLUMN entries separated by commas, e.g. --sensitive contacts.email,contacts.phone.', { path: '--sensitive' })
  return list.map((s) => s.trim())
}

export const adoptInspectCommand: Command = {
  spec: {
    synopsis: 'adopt inspect --region R --tenant-column NAME [--out FILE [--force]] [--sensitive T.C,...] [--db-schema S] [--cell C] [--sample N]',
    summary: 'read the region\'s existing database (read only) and propose a schema describing its tables as they are: tenant/global classification, sensitive-column suggestions with evidence; --out writes it (never overwrites without --force)',
    options: {
      region: { type: 'string' },
      'tenant-column': { type: 'string' },
      out: { type: 'string' },
      force: { type: 'boolean' },
      sensitive: { type: 'string', multiple: true },
      'db-schema': { type: 'string' },
      cell: { type: 'string' },
      sample: { type: 'string' },
    },
    required: ['region', 'tenant-column'],
  },
  async run(p) {
    const sensitive = sensitiveOption(p.values)
    const sampleRows = intOption(p.values, 'sample', 0, 100_000)
    const out = stringOption(p.values, 'out')
    if (out === '') throw new DomicileError('ERR_INPUT_INVALID', '--out needs a file path.', { path: '--out' })
    const cell = stringOption(p.values, 'cell')
    const dbSchema = stringOption(p.values, 'db-schema')
    const { loadConfig } = await import('../../config/load-config.js')
    const { inspectDatabase } = await import('../../adopt/inspect-database.js')
    const config = loadConfig(p.configPath)
    const region = stringOption(p.values, 'region')!
    const tenantColumn = stringOption(p.values, 'tenant-column')!
    const r = await inspectDatabase({
      config, region, tenantColumn, sensitive, force: p.values.force === true,
      command: ['domicile adopt inspect', `--region ${region}`, `--tenant-column ${tenantColumn}`, ...(sensitive.length > 0 ? [`--sensitive ${sensitive.join(',')}`] : [])].join(' '),
      ...(cell !== undefined ? { cell } : {}), ...(dbSchema !== undefined ? { dbSchema } : {}), ...(sampleRows !== undefined ? { sampleRows } : {}), ...(out !== undefined ? { out } : {}),
    })
    const { proposal } = r
    const suggestions = proposal.tables.flatMap((t) => t.columns.filter((c) => c.suggestion !== null || c.sensitive).map((c) => ({
      table: t.name, column: c.name, evidence: c.suggestion ?? [], accepted: c.sensitive,
    })))
    const flagged = proposal.tables.filter((t) => t.flagged.length > 0).map((t) => ({ table: t.name, evidence: t.flagged }))
    if (p.json) {
      printJson({ region: proposal.region, store: r.store, dbSchema: proposal.dbSchema, tenantColumn: proposal.tenantColumn, sampleRows: proposal.sampleRows, tables: proposal.tables, suggestions, flagged, written: r.written, module: r.module })
      return 0
    }
    println(`Region ${proposal.region} (${r.store}), schema ${JSON.stringify(proposal.dbSchema)}, tenant column ${proposal.tenantColumn}; up to ${proposal.sampleRows} rows sampled per table.`)
    println('')
    println(formatTable(['TABLE', 'ROWS', 'CLASSIFICATION', 'PRIMARY KEY', 'SENSITIVE (SUGGESTED)'], proposal.tables.map((t) => [
      t.name,
      `${t.rowsExact ? '' : '~'}${t.rows}`,
      `${t.classification === 'tenants-table' ? 'tenants table' : t.classification}${t.flagged.length > 0 ? ' FLAGGED' : ''}${t.inModel ? '' : ' (not in model)'}`,
      t.primaryKey?.join(', ') ?? '-',
      t.columns.filter((c) => c.suggestion !== null || c.sensitive).map((c) => `${c.name}${c.sensitive ? ' (accepted)' : ''}`).join(', ') || '-',
    ])))
    if (suggestions.length > 0) {
      println('\nSensitive-column suggestions (comments in the file until accepted with --sensitive TABLE.COLUMN,... or by hand)')
      for (const s of suggestions) println(`  ${s.table}.${s.column}${s.accepted ? ' (accepted)' : ''}: ${s.evidence.join('; ') || 'marked by --sensitive'}`)
    }
    if (flagged.length > 0) {
      println('\nFlagged global tables (copied to every region, yet they look personal or reference tenant tables)')
      for (const f of flagged) for (const e of f.evidence) println(`  ${f.table}: ${e}`)
    }
    const warnings = proposal.tables.flatMap((t) => t.warnings.map((w) => `${t.name}: ${w}`))
    const leftOut = proposal.tables.flatMap((t) => t.inModel
      ? t.columns.filter((c) => c.leftOut !== null).map((c) => `${t.name}.${c.name}: ${c.leftOut}`)
      : [`${t.name}: ${t.leftOut}`])
    if (leftOut.length > 0) {
      println('\nKept out of the model')
      for (const l of leftOut) println(`  ${l}`)
    }
    if (warnings.length > 0) {
      println('\nWarnings')
      for (const w of warnings) println(`  ${w}`)
    }
    println('')
    if (r.written !== null) {
      println(`Wrote ${relative(process.cwd(), r.written) || r.written} (${proposal.tables.filter((t) => t.inModel).length} tables). Review it; accept suggestions by rerunning with --sensitive TABLE.COLUMN,... --force, or by hand.`)
      println('Attaching to these tables (migrate), registering the tenants and encrypting columns are later steps: docs/ADOPTING.md.')
    } else println('Nothing written: pass --out FILE (usually the config\'s "schema" path) to write the proposed schema.')
    return 0
  },
}

/** `domicile adopt SUB ...` */
export function runAdoptCommand(argv: readonly string[]): Promise<number> {
  return runGroup('adopt', { inspect: adoptInspectCommand }, argv)
}
