/**
 * `domicile global upsert|delete|list` and `domicile replicate status|run`: global reference tables
 * (src/global/). A write goes to the control plane (the authoritative copy) with its outbox entry,
 * then is pushed at once to every region that answers (`--no-push`: leave it to running processes
 * and later passes); a region that does not answer catches up later, in order. `list` reads a
 * region's replica (`--region`) or the control plane's copy.
 */
import type { Domicile } from '../../domicile.js'
import { DomicileError } from '../../errors.js'
import { deleteGlobal, listGlobal, replicateOnce, replicationStatus, upsertGlobal, type GlobalWriteResult, type RegionReplication } from '../../global/index.js'
import { actorOption, intOption, jsonObjectOption, runGroup, stringOption, type Command, type ParsedCommand } from '../cli-args.js'
import { formatFields, formatTable, plain, printJson, println } from '../cli-output.js'
import { withDomicile } from '../open-domicile.js'

const WRITE_OPTIONS = { 'no-push': { type: 'boolean' }, actor: { type: 'string' } } as const

async function writeAndPush(p: ParsedCommand, write: (d: Domicile) => Promise<GlobalWriteResult>): Promise<number> {
  const push = p.values['no-push'] !== true
  const [result, regions] = await withDomicile(p, async (d) => {
    const r = await write(d)
    return [r, push && r.version !== null ? await replicateOnce(d) : []] as const
  })
  if (result.op === 'delete' && result.version === null) {
    throw new DomicileError('ERR_ROW_NOT_FOUND', `No row with that id in global table "${result.table}"; nothing was written.`)
  }
  const behind = regions.filter((r) => !r.ok)
  for (const r of behind) process.stderr.write(`domicile: warning: region ${r.region} not updated now (${r.code}); it catches up on a later pass ("domicile replicate run").\n`)
  if (p.json) printJson({ ...result, pushed: push, regions })
  else {
    println(`${result.op} ${result.table} ${result.id}: control-plane version ${result.version}`)
    if (push) println(formatRegions(regions))
    else println('not pushed (--no-push): running processes and "domicile replicate run" apply it')
  }
  return 0
}

function formatRegions(rs: readonly RegionReplication[]): string {
  return formatTable(['REGION', 'OK', 'VERSION', 'APPLIED', 'ERROR'], rs.map((r) => [r.region, r.ok ? 'yes' : 'no', r.version === null ? '-' : String(r.version), String(r.applied), r.code ?? '']))
}

/** A primary key from the command line, typed for an integer key. */
function idFor(d: Domicile, table: string, id: string): string | number {
  const t = d.schema.table(table)
  const type = t.columns.get(t.primaryKey)?.type
  return type === 'integer' && /^-?\d+$/.test(id) ? Number(id) : id
}

const upsert: Command = {
  spec: {
    synopsis: 'global upsert TABLE --data JSON [--no-push] [--actor A]',
    summary: 'insert or replace a row of a global table in the control plane, then push it to every region',
    positionals: ['TABLE'],
    options: { data: { type: 'string' }, ...WRITE_OPTIONS },
    required: ['data'],
  },
  async run(p) {
    const data = jsonObjectOption(p.values, 'data')
    const actor = actorOption(p.values)
    return writeAndPush(p, (d) => upsertGlobal(d, p.args[0]!, data, { actor }))
  },
}

const del: Command = {
  spec: {
    synopsis: 'global delete TABLE ID [--no-push] [--actor A]',
    summary: 'delete a row of a global table in the control plane, then push the deletion to every region',
    positionals: ['TABLE', 'ID'],
    options: { ...WRITE_OPTIONS },
  },
  async run(p) {
    const [table, id] = p.args as [string, string]
    const actor = actorOption(p.values)
    return writeAndPush(p, (d) => deleteGlobal(d, table, idFor(d, table, id), { actor }))
  },
}

const list: Command = {
  spec: {
    synopsis: 'global list TABLE [--region R] [--limit N]',
    summary: 'the rows of a global table: a region\'s replica, or (no --region) the control plane\'s copy',
    positionals: ['TABLE'],
    options: { region: { type: 'string' }, limit: { type: 'string' } },
  },
  async run(p) {
    const region = stringOption(p.values, 'region')
    const limit = intOption(p.values, 'limit', 1, 100_000)
    const rows = await withDomicile(p, (d) => listGlobal(d, p.args[0]!, { ...(region !== undefined ? { region } : {}), ...(limit !== undefined ? { limit } : {}) }))
    if (p.json) printJson(rows)
    else if (rows.length === 0) println('(no rows)')
    else {
      const cols = Object.keys(rows[0]!)
      println(formatTable(cols.map((c) => c.toUpperCase()), rows.map((r) => cols.map((c) => plain(r[c])))))
    }
    return 0
  },
}

export async function runGlobalCommand(argv: readonly string[]): Promise<number> {
  return runGroup('global', { upsert, delete: del, list }, argv)
}

const status: Command = {
  spec: {
    synopsis: 'replicate status',
    summary: 'per region: the global-table version applied, the control plane\'s latest, lag in versions and seconds, reachable or not',
  },
  async run(p) {
    const s = await withDomicile(p, (d) => replicationStatus(d))
    if (p.json) printJson(s)
    else {
      println(formatFields([['latest version', s.latestVersion], ['written at', s.latestAt ?? '-']]))
      println(formatTable(['REGION', 'REACHABLE', 'VERSION', 'LAG', 'LAG (S)', 'NOTE'], s.regions.map((r) => [
        r.region, r.reachable ? 'yes' : 'no', r.version === null ? '-' : String(r.version), String(r.lagVersions), String(r.lagSeconds),
        r.reachable ? '' : `${r.code ?? 'unreachable'}${r.versionSource === 'last-report' ? `; version as of ${r.lastReportAt}` : ''}`,
      ])))
    }
    return 0
  },
}

const run: Command = {
  spec: {
    synopsis: 'replicate run',
    summary: 'one catch-up pass: apply the control plane\'s outbox to every region that answers (exit 1 if one did not)',
  },
  async run(p) {
    const rs = await withDomicile(p, (d) => replicateOnce(d))
    if (p.json) printJson(rs)
    else println(formatRegions(rs))
    return rs.every((r) => r.ok) ? 0 : 1
  },
}

export async function runReplicateCommand(argv: readonly string[]): Promise<number> {
  return runGroup('replicate', { status, run }, argv)
}
