/**
 * `domicile adopt ...`: bring an existing single-database application under Domicile
 * (docs/ADOPTING.md). `adopt inspect` reads the region's existing database and proposes a schema
 * describing its tables as they are; it prints a summary (tables, rows, classification,
 * sensitive-column suggestions) or, with --json, one document `{ region, store, dbSchema,
 * tenantColumn, sampleRows, tables, suggestions, flagged, written, module }`. It needs the config
 * but not its schema file (that is what it writes).
 *
 * `adopt tenants` (after `migrate` attached) registers every tenant the database holds, homed in
 * its region and bound to a key (src/adopt/adopt-tenants.ts); progress on stderr, a summary on
 * stdout, or with --json `{ region, cell, store, tables, custody, found, added, existing,
 * elsewhere, invalid }`.
 */
import { relative } from 'node:path'
import type { AdoptTenantsResult } from '../../adopt/adopt-tenants.js'
import { DomicileError } from '../../errors.js'
import { actorOption, intOption, runGroup, stringOption, type Command, type OptionValues } from '../cli-args.js'
import { formatTable, printJson, println } from '../cli-output.js'
import { withDomicile } from '../open-domicile.js'
import { progressOutput } from '../progress-output.js'

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
      println('Next: "domicile migrate" attaches to these tables, then "domicile adopt tenants" (docs/ADOPTING.md).')
    } else println('Nothing written: pass --out FILE (usually the config\'s "schema" path) to write the proposed schema.')
    return 0
  },
}

/** At most `n` ids, then how many more. */
function someIds(ids: readonly string[], n = 10): string {
  if (ids.length === 0) return '-'
  return ids.slice(0, n).join(', ') + (ids.length > n ? `, ... (${ids.length - n} more)` : '')
}

function printTenants(r: AdoptTenantsResult): void {
  println(`Region ${r.region}${r.store === r.region ? '' : ` cell ${r.cell}`}: ${r.found} tenant${r.found === 1 ? '' : 's'} found in ${r.tables.join(', ')}; custody of new tenants: ${r.custody}.`)
  println('')
  println(formatTable(['RESULT', 'TENANTS', 'IDS'], [
    ['added', String(r.added.length), someIds(r.added)],
    ['existing', String(r.existing.length), someIds(r.existing)],
    ['elsewhere', String(r.elsewhere.length), someIds(r.elsewhere.map((e) => `${e.id} (${e.region}/${e.cell})`))],
    ['invalid', String(r.invalid.count), r.invalid.count === 0 ? '-' : `${someIds(r.invalid.examples)}${r.invalid.count > r.invalid.examples.length ? `, ... (${r.invalid.count - r.invalid.examples.length} more)` : ''} in ${r.invalid.tables.join(', ')}`],
  ]))
  if (r.elsewhere.length > 0) {
    println('')
    println(`Tenants homed elsewhere were left as they are (their rows here are not theirs to serve). Check them with "domicile tenant show ID".`)
  }
  if (r.invalid.count > 0) {
    println('')
    println('Invalid: tenant-column values that cannot be tenant ids (lower-case letters, digits and dashes, 1-63 characters, e.g. no negative numbers); not registered.')
  }
  if (r.custody === 'none' && r.added.length > 0) {
    println('')
    println('The new tenants have no key, so they cannot hold sensitive fields: bind one per tenant with "domicile tenant bind-key ID --custody kms|byok|hyok".')
  }
}

export const adoptTenantsCommand: Command = {
  spec: {
    synopsis: 'adopt tenants --region R [--cell C] [--from-table TABLE] [--custody kms|none] [--concurrency N] [--actor NAME]',
    summary: 'register every tenant found in the region\'s adopted tables (the distinct tenant-column values; --from-table: that table\'s only) in the directory, homed in R and bound to a key (default kms); rerun adds only new tenants, never moves one homed elsewhere',
    options: {
      region: { type: 'string' },
      cell: { type: 'string' },
      'from-table': { type: 'string' },
      custody: { type: 'string' },
      concurrency: { type: 'string' },
      actor: { type: 'string' },
    },
    required: ['region'],
  },
  async run(p) {
    const { adoptTenants, adoptCustody } = await import('../../adopt/adopt-tenants.js')
    const custody = adoptCustody(stringOption(p.values, 'custody') ?? 'kms')
    const concurrency = intOption(p.values, 'concurrency', 1, 16)
    const cell = stringOption(p.values, 'cell')
    const fromTable = stringOption(p.values, 'from-table')
    if (cell === '') throw new DomicileError('ERR_INPUT_INVALID', '--cell needs a cell name.', { path: '--cell' })
    if (fromTable === '') throw new DomicileError('ERR_INPUT_INVALID', '--from-table needs a table name.', { path: '--from-table' })
    const actor = actorOption(p.values)
    const progress = await progressOutput({ json: p.json })
    const r = await withDomicile(p, (d) => adoptTenants(d, {
      region: stringOption(p.values, 'region')!, custody, actor, progress,
      ...(cell !== undefined ? { cell } : {}), ...(fromTable !== undefined ? { fromTable } : {}), ...(concurrency !== undefined ? { concurrency } : {}),
    })).finally(() => progress.stop())
    if (p.json) printJson(r)
    else printTenants(r)
    return 0
  },
}

export const adoptGlobalsCommand: Command = {
  spec: {
    synopsis: 'adopt globals --region R [--cell C] [--actor NAME]',
    summary: 'copy the rows of the region\'s adopted global tables (reference data such as plans) into the control plane and replicate them to every region, so tenants can move where their foreign keys point; rerun writes only changed rows',
    options: { region: { type: 'string' }, cell: { type: 'string' }, actor: { type: 'string' } },
    required: ['region'],
  },
  async run(p) {
    const { adoptGlobals } = await import('../../adopt/adopt-globals.js')
    const cell = stringOption(p.values, 'cell')
    if (cell === '') throw new DomicileError('ERR_INPUT_INVALID', '--cell needs a cell name.', { path: '--cell' })
    const actor = actorOption(p.values)
    const progress = await progressOutput({ json: p.json })
    const r = await withDomicile(p, (d) => adoptGlobals(d, { region: stringOption(p.values, 'region')!, actor, progress, ...(cell !== undefined ? { cell } : {}) }))
      .finally(() => progress.stop())
    const failed = r.replicated.filter((x) => !x.ok)
    if (p.json) {
      printJson(r)
    } else {
      println(formatTable(['TABLE', 'ROWS', 'WRITTEN'], r.tables.map((t) => [t.table, String(t.rows), String(t.written)])))
      println('')
      println(formatTable(['REPLICA', 'RESULT', 'VERSION'], r.replicated.map((x) => [x.region, x.ok ? 'ok' : `FAILED ${x.code ?? ''}`.trim(), String(x.version ?? '-')])))
      for (const x of r.replicated) if (!x.ok && x.message) println(`${x.region}: ${x.message}`)
      for (const x of r.refused) println(`\nNOT COPIED ${x.table}: ${x.reason}. Global tables are copied to every region, so they must hold no personal data: make it a tenant table (with the tenant column) or leave it out of the schema.`)
      if (failed.length > 0) println(`\n${failed.length} replica(s) not reached: they catch up when they return ("domicile replicate status").`)
    }
    return failed.length > 0 || r.refused.length > 0 ? 1 : 0
  },
}

/** `domicile adopt SUB ...` */
export function runAdoptCommand(argv: readonly string[]): Promise<number> {
  return runGroup('adopt', { inspect: adoptInspectCommand, tenants: adoptTenantsCommand, globals: adoptGlobalsCommand }, argv)
}
