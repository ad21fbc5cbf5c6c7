/**
 * Test support: runs one lifecycle operation in its own process so that a test can SIGKILL it at a
 * random point (test/chaos/lifecycle-faults.test.ts). Prints one JSON object per line:
 * {"event":"ready"}, then {"event":"progress",...} / {"event":"note",...} as the operation advances,
 * then {"event":"result",...} or {"event":"error","code":...}.
 *
 * Usage: node --import tsx test/support/chaos-lifecycle-child.ts <configPath> move <tenant> <region>
 *        node --import tsx test/support/chaos-lifecycle-child.ts <configPath> resume-move <tenant>
 *        node --import tsx test/support/chaos-lifecycle-child.ts <configPath> encrypt <table.column>
 * Env: CHAOS_BATCH (rows per batch, default 100), CHAOS_PURGE_GRACE_MS (default 300). The column
 * migration waits the shortest layout grace the library allows (LAYOUT_TTL_MS).
 */
import { createDomicile, isDomicileError, loadConfig } from '../../src/index.js'
import { LAYOUT_TTL_MS } from '../../src/data/repository.js'
import { encryptColumn } from '../../src/ops/encrypt-column.js'
import type { Progress } from '../../src/ops/progress.js'
import { moveTenant, resumeTenantMove } from '../../src/ops/tenant-move.js'

const [configPath, mode, target, to] = process.argv.slice(2)
const emit = (o: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify(o)}\n`)
}
const progress: Progress = {
  update: (e) => emit({ event: 'progress', ...e }),
  note: (message) => emit({ event: 'note', message }),
}
const batch = Number(process.env.CHAOS_BATCH ?? 100)
const moveOpts = { actor: `chaos-child-${process.pid}`, progress, batchRows: batch, purgeGraceMs: Number(process.env.CHAOS_PURGE_GRACE_MS ?? 300) }

const d = await createDomicile({ config: loadConfig(configPath!) })
emit({ event: 'ready' })
try {
  const r = mode === 'move' ? await moveTenant(d, target!, { ...moveOpts, to: to! })
    : mode === 'resume-move' ? await resumeTenantMove(d, target!, moveOpts)
      : await encryptColumn(d, target!, { progress, batchSize: batch, graceMs: LAYOUT_TTL_MS, actor: `chaos-child-${process.pid}` })
  emit({ event: 'result', state: r.state })
} catch (e) {
  emit({ event: 'error', code: isDomicileError(e) ? e.code : 'ERR_UNTYPED', message: e instanceof Error ? e.message : String(e) })
  process.exitCode = 1
} finally {
  await d.close()
}
