/**
 * Test support: a writer process for the crash scenarios (test/chaos/process-crash.test.ts), meant
 * to be killed with SIGKILL. Prints one JSON object per line on stdout (a synchronous pipe on Linux,
 * so a line is out before the next statement is sent):
 *
 *   hold <tenant> <n>        one transaction: n inserts, an update of seed-0 if the tenant has it,
 *                            a reveal (an audit record); prints {"event":"in-tx"} and waits forever
 *   batch <tenant> <n>       one transaction of n inserts, {"event":"row","i":i} after each;
 *                            {"event":"committed"} after COMMIT
 *   writers <seed> <clients> <tenant:region,...>
 *                            the suite's workload (chaos-workload.ts) until killed, reporting each
 *                            write before it is sent ({"event":"try",...}) and once acknowledged
 *                            ({"event":"ack",...}), with the written values: the parent rebuilds
 *                            the model from them.
 *
 * Usage: node --import tsx test/support/chaos-crash-child.ts <configPath> <mode> ...
 */
import { createDomicile, loadConfig } from '../../src/index.js'
import { seededRng } from './chaos-rng.js'
import { ChaosModel, PII_MARKER, startWorkload, type OpRecord, type TenantPlacement } from './chaos-workload.js'

const [configPath, mode, ...args] = process.argv.slice(2)
const emit = (o: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify(o)}\n`)
}

const d = await createDomicile({ config: loadConfig(configPath!) })
emit({ event: 'ready', pid: process.pid })
const row = (tenant: string, id: string) => ({ id, name: `Crash ${id}`, email: `${PII_MARKER}${tenant}.${id}@example.test`, tax_id: `${PII_MARKER}tax-${id}`, plan: 'free', rev: 0 })

if (mode === 'hold') {
  const [tenant, n] = args as [string, string]
  await d.withTenant(tenant, async (s) => {
    for (let i = 0; i < Number(n); i++) await s.table('customers').insert(row(tenant, `hold-${i}`))
    const seed = await s.table('customers').get('seed-0')
    if (seed) await s.table('customers').update('seed-0', { tax_id: `${PII_MARKER}changed-in-killed-tx`, rev: 999 })
    const mine = await s.table('customers').get('hold-0')
    await s.reveal(mine!.tax_id, { purpose: 'chaos: reveal in a transaction that dies', actor: 'crash-child' })
    emit({ event: 'in-tx' })
    await new Promise(() => undefined) // until killed
  })
} else if (mode === 'batch') {
  const [tenant, n] = args as [string, string]
  await d.withTenant(tenant, async (s) => {
    for (let i = 0; i < Number(n); i++) {
      await s.table('customers').insert(row(tenant, `batch-${i}`))
      if (i % 10 === 0) await s.reveal((await s.table('customers').get(`batch-${i}`))!.email, { purpose: 'chaos: reveal in a batch', actor: 'crash-child' })
      emit({ event: 'row', i })
    }
  })
  emit({ event: 'committed' })
} else if (mode === 'writers') {
  const [seed, clients, list] = args as [string, string, string]
  const tenants: TenantPlacement[] = list.split(',').map((x) => {
    const [id, region] = x.split(':')
    return { id: id!, region: region! }
  })
  const model = new ChaosModel()
  model.listener = {
    attempt: (w) => emit({ event: 'try', ...w }),
    ack: (w) => emit({ event: 'ack', ...w }),
  }
  const w = startWorkload(d, model, { clients: Number(clients), rng: seededRng(Number(seed), 'crash-writers'), tenants, tag: `p${process.pid}-`, pauseMs: 1 })
  // Errors are reported too (the parent expects none), then the loop goes on until killed.
  setInterval(() => {
    for (const o of (w.ops as OpRecord[]).splice(0)) if (!o.ok) emit({ event: 'error', code: o.code, kind: o.kind })
  }, 50)
  await new Promise(() => undefined)
}
await d.close()
