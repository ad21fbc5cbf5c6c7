/**
 * Writes a schema proposal (./propose-schema.ts) as a schema module, in the form of the files
 * `domicile init` writes (src/cli/templates.ts): `export default { ... }`, a plain object of table
 * definitions that the CLI and `createDomicile` validate with defineSchema. It needs no import, so
 * it loads wherever the config is, with or without `domicile` installed next to it.
 *
 * Everything that is not a decision stays a comment: why each table got its classification, the
 * existing constraints Domicile leaves alone, sensitive-column suggestions with their evidence,
 * columns kept out of the model and why, global tables that look personal (FLAGGED), warnings.
 * Names only, never a sampled value. The file is written atomically (temporary file + rename, or
 * + link when it must not overwrite).
 *
 * @example
 * ```ts
 * await writeFileAtomic('domicile.schema.mjs', renderSchemaModule(proposal, 'domicile adopt inspect --region eu-west-1 --tenant-column company_id'), { force: false })
 * ```
 */
import { randomBytes } from 'node:crypto'
import { link, mkdir, open, rename, rm } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { DomicileError } from '../errors.js'
import type { ColumnProposal, SchemaProposal, TableProposal } from './propose-schema.js'

/** One line of comment text: control characters (a newline would end the comment) become spaces. */
function text(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f\u2028\u2029]/g, ' ')
}

/** A JavaScript string literal. */
function str(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/[\u0000-\u001f\u007f\u2028\u2029]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`)}'`
}

function rowsText(t: TableProposal): string {
  return `${t.rowsExact ? '' : '~'}${t.rows} row${t.rows === 1 ? '' : 's'}${t.rowsExact ? '' : ' (estimate)'}`
}

function existing(t: TableProposal): string {
  const parts = [`${t.foreignKeys} foreign key${t.foreignKeys === 1 ? '' : 's'}`, `${t.checks} CHECK`, `${t.indexes} index${t.indexes === 1 ? '' : 'es'}`]
  return `existing: ${parts.join(', ')} (left as they are)`
}

function columnLine(c: ColumnProposal): string {
  const opts = [`type: ${str(c.type!)}`]
  if (c.nullable) opts.push('nullable: true')
  if (c.hasDefault) opts.push('default: true')
  if (c.sensitive) opts.push('sensitive: true')
  return `${c.name}: { ${opts.join(', ')} },`
}

function renderTable(t: TableProposal, lines: string[]): void {
  const kind = t.classification === 'tenants-table' ? 'tenant (the tenants table)' : t.classification
  lines.push(`  // ${text(`${kind}: ${t.reason}. ${rowsText(t)}; ${existing(t)}.`)}`)
  for (const f of t.flagged) lines.push(`  // FLAGGED: ${text(f)}`)
  if (t.flagged.length > 0) lines.push('  //   A global table is copied to every region: if its rows belong to tenants, add the tenant column and inspect again.')
  for (const w of t.warnings) lines.push(`  // WARNING: ${text(w)}`)
  lines.push(`  ${t.name}: {`)
  lines.push(`    scope: ${str(t.classification === 'global' ? 'global' : 'tenant')},`)
  lines.push('    adopted: true,')
  if (t.tenantColumn) lines.push(`    tenantColumn: { name: ${str(t.tenantColumn.name)}, type: ${str(t.tenantColumn.type)} },`)
  const pk = t.primaryKey!
  lines.push(`    primaryKey: ${pk.length === 1 ? str(pk[0]!) : `[${pk.map(str).join(', ')}]`},`)
  lines.push('    columns: {')
  for (const c of t.columns) {
    if (c.role === 'tenant-column') continue
    if (c.sensitive) lines.push(`      // sensitive (accepted${c.suggestion ? `; ${text(c.suggestion.join('; '))}` : ''})`)
    else if (c.suggestion) lines.push(`      // SUGGESTION sensitive: ${text(c.suggestion.join('; '))}`)
    if (c.note) lines.push(`      // note: ${text(c.note)}`)
    if (c.leftOut !== null) lines.push(`      // ${text(`${c.name} (${c.sqlType}): ${c.leftOut}`)}`)
    else lines.push(`      ${columnLine(c)}`)
  }
  lines.push('    },')
  lines.push('  },')
}

/** The schema module's source text. `command` is the command line that produced it (a comment). */
export function renderSchemaModule(p: SchemaProposal, command: string): string {
  const lines: string[] = [
    `// Domicile schema proposed by: ${text(command)}`,
    `// From region ${text(p.region)}, database schema ${text(JSON.stringify(p.dbSchema))}, tenant column ${text(p.tenantColumn)}.`,
    '//',
    '// Each table describes an existing table as it is (adopted: true): "domicile migrate" attaches to it',
    '// and never creates, drops or rewrites it. tenantColumn is the column that holds the tenant id (not',
    '// listed again in columns); default: true means the database fills the column (bigserial, now()).',
    '// Sensitive columns: the SUGGESTION comments are not applied. Accept one by rerunning with',
    '// --sensitive TABLE.COLUMN,... or by hand (add sensitive: true). Review every table before migrate.',
    'export default {',
  ]
  const inModel = p.tables.filter((t) => t.inModel)
  inModel.forEach((t, i) => {
    if (i > 0) lines.push('')
    renderTable(t, lines)
  })
  const out = p.tables.filter((t) => !t.inModel)
  if (out.length > 0) {
    if (inModel.length > 0) lines.push('')
    lines.push('  // Not in the model (Domicile leaves these tables alone):')
    for (const t of out) lines.push(`  // ${text(`${JSON.stringify(t.name)} (${t.classification === 'tenants-table' ? 'tenants table' : t.classification}, ${rowsText(t)}): ${t.leftOut}`)}`)
  }
  lines.push('}')
  return lines.join('\n') + '\n'
}

/**
 * Writes `content` to `file` atomically: a temporary file in the same directory, then rename (with
 * `force`) or link (without: fails if `file` exists, even when it appeared meanwhile). Throws
 * ERR_INPUT_INVALID when the file exists and `force` is not set.
 */
export async function writeFileAtomic(file: string, content: string, opts: { force: boolean }): Promise<void> {
  const dir = dirname(file)
  await mkdir(dir, { recursive: true })
  const tmp = join(dir, `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`)
  const fh = await open(tmp, 'wx', 0o644)
  try {
    try {
      await fh.writeFile(content)
      await fh.sync()
    } finally {
      await fh.close()
    }
    if (opts.force) await rename(tmp, file)
    else {
      try {
        await link(tmp, file)
      } catch (e) {
        /* Precondition: the proposed schema never overwrites a file unless asked to. */
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new DomicileError('ERR_INPUT_INVALID', `${file} already exists. Pass --force to overwrite it, or --out another file.`, { path: '--out' })
        throw e
      }
    }
  } finally {
    await rm(tmp, { force: true })
  }
}
