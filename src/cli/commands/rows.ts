/**
 * `domicile rows insert|get|find|list|update|delete|reveal`: tenant rows, through the tenant's
 * repository like any application call (home region, row-level security, field encryption). Sealed
 * fields print as "[sealed]"; `rows reveal` opens one, with a stated purpose and actor (default: the
 * OS user) that are audited.
 */
import type { Domicile } from '../../domicile.js'
import { DomicileError } from '../../errors.js'
import type { Row } from '../../data/repository.js'
import { actorOption, intOption, jsonObjectOption, runGroup, stringOption, type Command, type ParsedCommand } from '../cli-args.js'
import { formatFields, formatTable, plain, printJson, println, toJson } from '../cli-output.js'
import { withDomicile } from '../open-domicile.js'

/** A row id from the command line, typed for the table's primary key. */
function rowId(d: Domicile, table: string, id: string): string | number {
  const pk = d.schema.table(table).columns.get(d.schema.table(table).primaryKey)
  return pk?.type === 'integer' && /^-?\d+$/.test(id) ? Number(id) : id
}

function notFound(tenant: string, table: string): DomicileError {
  return new DomicileError('ERR_ROW_NOT_FOUND', `No row with that id in table "${table}" of tenant "${tenant}".`)
}

function printRow(p: ParsedCommand, row: Row): void {
  if (p.json) printJson(row)
  else println(formatFields(Object.entries(row)))
}

function printRows(rows: readonly Row[]): void {
  if (rows.length === 0) {
    println('(no rows)')
    return
  }
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))]
  println(formatTable(cols.map((c) => c.toUpperCase()), rows.map((r) => cols.map((c) => plain(r[c])))))
}

const insert: Command = {
  spec: {
    synopsis: 'rows insert TENANT TABLE --data JSON',
    summary: 'insert one row (sensitive columns are sealed under the tenant\'s key)',
    positionals: ['TENANT', 'TABLE'],
    options: { data: { type: 'string' } },
    required: ['data'],
  },
  async run(p) {
    const data = jsonObjectOption(p.values, 'data')
    const [tenant, table] = p.args as [string, string]
    printRow(p, await withDomicile(p, (d) => d.tenant(tenant).table(table).insert(data)))
    return 0
  },
}

const get: Command = {
  spec: { synopsis: 'rows get TENANT TABLE ID', summary: 'print one row by primary key', positionals: ['TENANT', 'TABLE', 'ID'] },
  async run(p) {
    const [tenant, table, id] = p.args as [string, string, string]
    const row = await withDomicile(p, (d) => d.tenant(tenant).table(table).get(rowId(d, table, id)))
    if (!row) throw notFound(tenant, table)
    printRow(p, row)
    return 0
  },
}

const find: Command = {
  spec: {
    synopsis: 'rows find TENANT TABLE --where JSON [--limit N]',
    summary: 'rows whose columns equal the given values (searchable sensitive columns via blind index)',
    positionals: ['TENANT', 'TABLE'],
    options: { where: { type: 'string' }, limit: { type: 'string' } },
    required: ['where'],
  },
  async run(p) {
    const where = jsonObjectOption(p.values, 'where')
    const limit = intOption(p.values, 'limit', 1, 1000)
    const [tenant, table] = p.args as [string, string]
    const rows = await withDomicile(p, (d) => d.tenant(tenant).table(table).find(where, limit === undefined ? {} : { limit }))
    if (p.json) printJson(rows)
    else printRows(rows)
    return 0
  },
}

const list: Command = {
  spec: {
    synopsis: 'rows list TENANT TABLE [--limit N] [--cursor C]',
    summary: 'a page of rows in primary-key order; pass the printed next cursor for the next page',
    positionals: ['TENANT', 'TABLE'],
    options: { limit: { type: 'string' }, cursor: { type: 'string' } },
  },
  async run(p) {
    const limit = intOption(p.values, 'limit', 1, 1000)
    const cursor = stringOption(p.values, 'cursor')
    const [tenant, table] = p.args as [string, string]
    const page = await withDomicile(p, (d) => d.tenant(tenant).table(table).list({
      ...(limit !== undefined ? { limit } : {}),
      ...(cursor !== undefined ? { cursor } : {}),
    }))
    if (p.json) {
      printJson(page.nextCursor === undefined ? { rows: page.rows } : { rows: page.rows, nextCursor: page.nextCursor })
      return 0
    }
    printRows(page.rows)
    if (page.nextCursor !== undefined) println(`\nnext page: domicile rows list ${tenant} ${table} --cursor ${page.nextCursor}${limit !== undefined ? ` --limit ${limit}` : ''}`)
    return 0
  },
}

const update: Command = {
  spec: {
    synopsis: 'rows update TENANT TABLE ID --data JSON',
    summary: 'change columns of one row (sensitive columns are sealed again under the tenant\'s key); prints the row',
    positionals: ['TENANT', 'TABLE', 'ID'],
    options: { data: { type: 'string' } },
    required: ['data'],
  },
  async run(p) {
    const patch = jsonObjectOption(p.values, 'data')
    const [tenant, table, id] = p.args as [string, string, string]
    const row = await withDomicile(p, (d) => d.tenant(tenant).table(table).update(rowId(d, table, id), patch))
    if (!row) throw notFound(tenant, table)
    printRow(p, row)
    return 0
  },
}

const remove: Command = {
  spec: { synopsis: 'rows delete TENANT TABLE ID', summary: 'delete one row by primary key', positionals: ['TENANT', 'TABLE', 'ID'] },
  async run(p) {
    const [tenant, table, id] = p.args as [string, string, string]
    const deleted = await withDomicile(p, (d) => d.tenant(tenant).table(table).delete(rowId(d, table, id)))
    if (!deleted) throw notFound(tenant, table)
    if (p.json) printJson({ deleted: true })
    else println(`deleted ${table} ${id}`)
    return 0
  },
}

const reveal: Command = {
  spec: {
    synopsis: 'rows reveal TENANT TABLE ID COLUMN --purpose TEXT [--actor A]',
    summary: 'open one sealed field; the purpose and actor (default: your OS user name) are written to the audit log',
    positionals: ['TENANT', 'TABLE', 'ID', 'COLUMN'],
    options: { purpose: { type: 'string' }, actor: { type: 'string' } },
    required: ['purpose'],
  },
  async run(p) {
    const [tenant, table, id, column] = p.args as [string, string, string, string]
    const purpose = stringOption(p.values, 'purpose')!
    const actor = actorOption(p.values)
    const value = await withDomicile(p, (d) => {
      const t = d.schema.table(table)
      const col = t.columns.get(column)
      if (!col) throw new DomicileError('ERR_COLUMN_UNKNOWN', `Table "${table}" has no column "${column}". Columns: ${[...t.columns.keys()].join(', ')}.`, { path: `${table}.${column}` })
      /* Precondition: reveal is for sensitive columns; plain columns are printed by "rows get". */
      if (!col.sensitive) throw new DomicileError('ERR_INPUT_INVALID', `${table}.${column} is not sensitive; "domicile rows get" prints it.`, { path: `${table}.${column}` })
      return d.withTenant(tenant, async (s) => {
        const row = await s.table(table).get(rowId(d, table, id))
        if (!row) throw notFound(tenant, table)
        const sealed = row[column]
        if (sealed === null || sealed === undefined) return null
        return s.reveal(sealed, { purpose, actor })
      })
    })
    if (p.json) printJson({ value: value ?? null })
    else println(typeof value === 'string' ? value : toJson(value ?? null))
    return 0
  },
}

export function runRowsCommand(argv: readonly string[]): Promise<number> {
  return runGroup('rows', { insert, get, find, list, update, delete: remove, reveal }, argv)
}
