/**
 * Test support: runs one key rotation in a separate Node process, so a test can SIGKILL it at a
 * chosen point (DOMICILE_TEST_KILL_AT=<point>, see src/ops/rotate-common.ts `crashPoint`) and resume
 * elsewhere. Prints one JSON object per line on stdout:
 *
 *   {"event":"progress","state":"reencrypt","done":500,"total":3000}
 *   {"event":"done","result":{...}}
 *   {"event":"error","code":"ERR_..."}            (exit status 1)
 *
 * Usage: node --import tsx test/support/rotation-worker.ts <configPath> <kek|data|index> <tenant>
 * Env: ROTATION_BATCH (batch size, default 100), ROTATION_PROPAGATION_MS (default: the library's,
 *      the directory's fail-closed bound),
 *      ROTATION_KEY_ID (kek: --key-id).
 */
import { createDomicile, isDomicileError } from '../../src/index.js'
import { rotateKek } from '../../src/ops/rotate-kek.js'
import { rotateDataKey } from '../../src/ops/rotate-data-key.js'
import { rotateIndexKey } from '../../src/ops/rotate-index-key.js'
import type { Progress } from '../../src/ops/progress.js'

const [configPath, kind, tenant] = process.argv.slice(2)
const emit = (o: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify(o)}\n`)
}
const progress: Progress = {
  update: (e) => emit({ event: 'progress', ...e }),
  note: (message) => emit({ event: 'note', message }),
}
const common = {
  progress, actor: 'rotation-worker', staleAfterMs: 0, batchSize: Number(process.env.ROTATION_BATCH ?? 100),
  ...(process.env.ROTATION_PROPAGATION_MS ? { propagationMs: Number(process.env.ROTATION_PROPAGATION_MS) } : {}),
}

const d = await createDomicile({ configPath: configPath! })
let status = 0
try {
  const result = kind === 'kek'
    ? await rotateKek(d, tenant!, { ...common, ...(process.env.ROTATION_KEY_ID ? { keyId: process.env.ROTATION_KEY_ID } : {}) })
    : kind === 'data' ? await rotateDataKey(d, tenant!, common) : await rotateIndexKey(d, tenant!, common)
  emit({ event: 'done', result })
} catch (e) {
  emit({ event: 'error', code: isDomicileError(e) ? e.code : 'ERR_UNKNOWN', message: e instanceof Error ? e.message : String(e) })
  status = 1
} finally {
  await d.close()
}
process.exit(status)
