/**
 * `domicile migrate encrypt TABLE.COLUMN [--verify]` and `domicile migrate decrypt TABLE.COLUMN`:
 * encrypt-in-place of a plaintext column, online, and its rollback (src/ops/encrypt-column.ts).
 * Running the command again resumes a run that was killed. Progress goes to stderr (rows/s and
 * ETA); --json prints the result `{ "state", "rows", "elapsedMs", ... }` on stdout.
 */
import { decryptColumn, encryptColumn, type ColumnMigrationResult } from '../../ops/encrypt-column.js'
import { verifyColumn } from '../../ops/encrypt-column-verify.js'
import type { Progress, ProgressEvent } from '../../ops/progress.js'
import { actorOption, intOption, type Command, type ParsedCommand } from '../cli-args.js'
import { formatFields, printJson, println } from '../cli-output.js'
import { withDomicile } from '../open-domicile.js'
import { progressOutput } from '../progress-output.js'

function print(p: ParsedCommand, r: ColumnMigrationResult): number {
  if (p.json) {
    printJson(r)
    return 0
  }
  println(formatFields([
    ['column', r.target], ['direction', r.direction], ['state', r.state], ['operation', `#${r.operation}`],
    ['rows', String(r.rows)], ['elapsed', `${(r.elapsedMs / 1000).toFixed(1)} s`], ['rate', `${r.rowsPerSecond} rows/s`],
    ...r.regions.map((g) => [`region ${g.region}`, `${g.rows} rows, ${g.tenants} tenants${g.swapLockHeldMs !== undefined ? `, swap lock held ${g.swapLockHeldMs} ms` : ''}`] as const),
    ...(r.verify ? [['verify', r.verify.ok ? `ok (${r.verify.opened} values opened)` : 'FAILED'] as const] : []),
  ]))
  return 0
}

const OPTIONS = { verify: { type: 'boolean' }, actor: { type: 'string' }, 'batch-size': { type: 'string' }, concurrency: { type: 'string' }, 'max-rows-per-second': { type: 'string' } } as const

export const migrateEncryptCommand: Command = {
  spec: {
    synopsis: 'migrate encrypt TABLE.COLUMN [--verify] [--batch-size N] [--concurrency N] [--max-rows-per-second N] [--actor NAME]',
    summary: 'encrypt a plaintext column declared sensitive, online, in every region (rerun to resume); --verify proves no plaintext remains',
    positionals: ['TABLE.COLUMN'],
    options: OPTIONS,
  },
  async run(p) {
    const batchSize = intOption(p.values, 'batch-size', 1, 10_000)
    const concurrency = intOption(p.values, 'concurrency', 1, 16)
    const maxRowsPerSecond = intOption(p.values, 'max-rows-per-second', 1, 10_000_000)
    const progress = await progressOutput({ json: p.json })
    const r = await withDomicile(p, (d) => encryptColumn(d, p.args[0]!, {
      progress, actor: actorOption(p.values), verify: p.values.verify === true, ...(batchSize ? { batchSize } : {}), ...(concurrency ? { concurrency } : {}),
      ...(maxRowsPerSecond ? { maxRowsPerSecond } : {}),
    })).finally(() => progress.stop())
    return print(p, r)
  },
}

export const migrateDecryptCommand: Command = {
  spec: {
    synopsis: 'migrate decrypt TABLE.COLUMN [--verify] [--batch-size N] [--concurrency N] [--max-rows-per-second N] [--actor NAME]',
    summary: 'the rollback of migrate encrypt: turn the column back into plaintext, online (each value opened is audited as a reveal)',
    positionals: ['TABLE.COLUMN'],
    options: OPTIONS,
  },
  async run(p) {
    const batchSize = intOption(p.values, 'batch-size', 1, 10_000)
    const concurrency = intOption(p.values, 'concurrency', 1, 16)
    const maxRowsPerSecond = intOption(p.values, 'max-rows-per-second', 1, 10_000_000)
    const progress = await progressOutput({ json: p.json })
    const r = await withDomicile(p, (d) => decryptColumn(d, p.args[0]!, {
      progress, actor: actorOption(p.values), verify: p.values.verify === true, ...(batchSize ? { batchSize } : {}), ...(concurrency ? { concurrency } : {}),
      ...(maxRowsPerSecond ? { maxRowsPerSecond } : {}),
    })).finally(() => progress.stop())
    return print(p, r)
  },
}

/** `migrate verify TABLE.COLUMN`: the check alone (exit 1 when it fails). */
export const migrateVerifyCommand: Command = {
  spec: {
    synopsis: 'migrate verify TABLE.COLUMN [--decrypted]',
    summary: 'prove that no plaintext remains in an encrypted column (reads every row), or with --decrypted that it is plaintext again',
    positionals: ['TABLE.COLUMN'],
    options: { decrypted: { type: 'boolean' } },
  },
  async run(p) {
    const progress = await progressOutput({ json: p.json })
    const v = await withDomicile(p, (d) => verifyColumn(d, p.args[0]!, p.values.decrypted === true ? 'decrypt' : 'encrypt', { progress })).finally(() => progress.stop())
    if (p.json) printJson(v)
    else println(formatFields([['column', v.target], ['ok', String(v.ok)], ['rows', String(v.rows)], ['opened', String(v.opened)], ['failed', String(v.failed)], ['left in source form', String(v.leftInSourceForm)], ['unaccounted', String(v.unaccounted)]]))
    return v.ok ? 0 : 1
  },
}
