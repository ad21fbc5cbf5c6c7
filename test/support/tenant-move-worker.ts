/**
 * Test support: runs one tenant-move step in its own Node process, so a crash test can SIGKILL it
 * (DOMICILE_TEST_KILL_AT=<point> makes the move kill itself at that point; see src/ops/tenant-move.ts).
 * Prints one JSON object per line: {"event":"progress",...}, {"event":"note",...}, then
 * {"event":"result",...} or {"event":"error","code":...}.
 *
 * Usage: node --import tsx test/support/tenant-move-worker.ts <configPath> <tenant> move <region> | resume | abort
 * Env: MOVE_BATCH_ROWS (default 200), MOVE_PURGE_GRACE_MS (default 200).
 */
import { createDomicile, isDomicileError, loadConfig } from '../../src/index.js'
import { abortTenantMove, moveTenant, resumeTenantMove } from '../../src/ops/tenant-move.js'
import type { Progress } from '../../src/ops/progress.js'

const [configPath, tenant, mode, to] = process.argv.slice(2)
const emit = (o: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(o)}\n`)
const progress: Progress = {
  update: (e) => emit({ event: 'progress', ...e }),
  note: (message) => emit({ event: 'note', message, uptime: Math.round(process.uptime() * 1000) }),
}
const opts = {
  actor: `move-worker-${process.pid}`, progress,
  batchRows: Number(process.env.MOVE_BATCH_ROWS ?? 200),
  purgeGraceMs: Number(process.env.MOVE_PURGE_GRACE_MS ?? 200),
}

const d = await createDomicile({ config: loadConfig(configPath!) })
try {
  const r = mode === 'move' ? await moveTenant(d, tenant!, { ...opts, to: to! })
    : mode === 'resume' ? await resumeTenantMove(d, tenant!, opts)
      : await abortTenantMove(d, tenant!, opts)
  emit({ event: 'result', ...r })
} catch (e) {
  emit({ event: 'error', code: isDomicileError(e) ? e.code : 'ERR_UNKNOWN', message: e instanceof Error ? e.message : String(e) })
  process.exitCode = 1
} finally {
  await d.close()
}
