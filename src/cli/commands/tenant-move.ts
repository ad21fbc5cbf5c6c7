/**
 * `domicile tenant move TENANT --to REGION [--cell C] | --resume | --abort`: relocates a tenant to
 * another region, or another cell of its region, online (src/ops/tenant-move.ts). Progress goes to stderr (src/cli/progress-output.ts: a
 * bar with rate and ETA on a terminal, plain lines otherwise); the measured write freeze is
 * printed. With --json, stdout gets one object: { state, rows, elapsedMs, freezeMs, ... }.
 */
import { DomicileError } from '../../errors.js'
import { abortTenantMove, moveTenant, resumeTenantMove, type MoveResult } from '../../ops/tenant-move.js'
import { actorOption, intOption, stringOption, UsageError, commandUsage, type Command, type ParsedCommand } from '../cli-args.js'
import { formatFields, printJson, println } from '../cli-output.js'
import { withDomicile } from '../open-domicile.js'
import { progressOutput } from '../progress-output.js'

const json = (r: MoveResult) => ({
  state: r.state, rows: r.rows, elapsedMs: r.elapsedMs, freezeMs: r.freezeMs,
  tenant: r.tenant, from: r.from, to: r.to, operation: r.operationId, keys: r.keys,
  copyRowsPerSecond: r.copyRowsPerSecond, tables: r.tables, deleted: r.deleted,
})

export const tenantMoveCommand: Command = {
  spec: {
    synopsis: 'tenant move TENANT (--to REGION [--cell C] | --resume | --abort) [--actor A] [--batch N]',
    summary: 'move a tenant to another region, or to cell C of a region with several cells (default: its cell with the fewest tenants), online (copy, catch-up, short write freeze, cutover, verify, purge); --resume finishes a stopped move, --abort rolls it back before the cutover',
    positionals: ['TENANT'],
    options: { to: { type: 'string' }, cell: { type: 'string' }, resume: { type: 'boolean' }, abort: { type: 'boolean' }, actor: { type: 'string' }, batch: { type: 'string' } },
  },
  async run(p: ParsedCommand): Promise<number> {
    const tenant = p.args[0]!
    const to = stringOption(p.values, 'to')
    const modes = [to !== undefined, p.values.resume === true, p.values.abort === true].filter(Boolean).length
    /* Precondition: exactly one of --to, --resume, --abort. */
    if (modes !== 1) throw new UsageError("give exactly one of --to REGION, --resume, --abort", commandUsage(tenantMoveCommand.spec))
    const actor = actorOption(p.values)
    const batchRows = intOption(p.values, 'batch', 100, 1_000_000)
    if (to === '') throw new DomicileError('ERR_INPUT_INVALID', '--to: give the region to move the tenant to.', { path: '--to' })
    const cell = stringOption(p.values, 'cell')
    if (cell !== undefined && to === undefined) throw new UsageError('--cell goes with --to REGION', commandUsage(tenantMoveCommand.spec))
    const progress = await progressOutput({ json: p.json })
    const opts = { actor, progress, ...(batchRows ? { batchRows } : {}) }
    let r: MoveResult
    try {
      r = await withDomicile(p, (d) => to !== undefined ? moveTenant(d, tenant, { ...opts, to, ...(cell !== undefined ? { toCell: cell } : {}) })
        : p.values.resume === true ? resumeTenantMove(d, tenant, opts) : abortTenantMove(d, tenant, opts))
    } finally {
      progress.stop()
    }
    if (p.json) {
      printJson(json(r))
      return 0
    }
    println(formatFields([
      ['tenant', r.tenant], ['state', r.state], ['from', r.from], ['to', r.to], ['rows', r.rows], ['keys', r.keys],
      ['elapsed', `${r.elapsedMs} ms`], ['write freeze', r.freezeMs === null ? '-' : `${r.freezeMs} ms`],
      ['copy rate', r.copyRowsPerSecond === null ? '-' : `${r.copyRowsPerSecond} rows/s`],
      [r.state === 'aborted' ? 'deleted from target' : 'purged from source', `${r.deleted.rows} rows, ${r.deleted.keys} keys`],
    ]))
    return 0
  },
}
