/**
 * Test support: a concurrent writer for online operations. It inserts, updates and deletes rows of
 * one tenant (customers with sealed fields, orders referencing them), retries a write refused with
 * the retryable ERR_TENANT_MOVING, and keeps a model of every write it was told succeeded: after the
 * operation the tenant's rows must equal the model exactly.
 */
import { isDomicileError, type Domicile } from '../../src/index.js'

export interface WriterStats {
  acknowledged: number
  retriedMoving: number
  /** Longest time a write waited through ERR_TENANT_MOVING retries (ms). */
  longestRetryMs: number
  errors: string[]
}

export interface MoveWriter {
  readonly model: Map<string, Record<string, unknown>>
  readonly stats: WriterStats
  stop(): Promise<void>
}

/** Seeds the tenant with `n` customers (sealed email and tax id) and one order each; returns the model. */
export async function seedTenant(d: Domicile, tenant: string, n: number, model = new Map<string, Record<string, unknown>>()): Promise<Map<string, Record<string, unknown>>> {
  for (let i = 0; i < n; i += 200) {
    await d.withTenant(tenant, async (s) => {
      for (let j = i; j < Math.min(n, i + 200); j++) {
        const c = { id: `c${j}`, name: `Customer ${j}`, email: `c${j}@${tenant}.example`, tax_id: `TAX-${j}`, plan: j % 3 === 0 ? 'pro' : 'free' }
        const o = { id: `o${j}`, customer_id: c.id, amount: j * 10, note: `note ${j}` }
        await s.table('customers').insert(c)
        await s.table('orders').insert(o)
        model.set(`customers/${c.id}`, c)
        model.set(`orders/${o.id}`, o)
      }
    })
  }
  return model
}

/**
 * Starts writing: each step is one transaction that inserts a customer with an order, updates an
 * existing customer's sealed field, or deletes an order and then its customer.
 */
export function startWriter(d: Domicile, tenant: string, model: Map<string, Record<string, unknown>>, opts: { prefix: string; pauseMs?: number }): MoveWriter {
  const stats: WriterStats = { acknowledged: 0, retriedMoving: 0, longestRetryMs: 0, errors: [] }
  let stopping = false
  let seq = 0
  const write = async (fn: () => Promise<void>) => {
    const started = Date.now()
    for (;;) {
      try {
        await fn()
        stats.longestRetryMs = Math.max(stats.longestRetryMs, Date.now() - started)
        return true
      } catch (e) {
        if (isDomicileError(e, 'ERR_TENANT_MOVING')) {
          stats.retriedMoving++
          await new Promise((r) => setTimeout(r, 5))
          continue
        }
        stats.errors.push(isDomicileError(e) ? `${e.code}: ${e.message}` : String(e))
        return false
      }
    }
  }
  const loop = (async () => {
    while (!stopping) {
      const n = seq++
      const kind = n % 4
      if (kind === 0 || kind === 1) {
        const c = { id: `${opts.prefix}c${n}`, name: `Writer ${n}`, email: `w${n}@example.com`, tax_id: `W-${n}`, plan: 'free' }
        const o = { id: `${opts.prefix}o${n}`, customer_id: c.id, amount: n, note: `w note ${n}` }
        const ok = await write(() => d.withTenant(tenant, async (s) => {
          await s.table('customers').insert(c)
          await s.table('orders').insert(o)
        }))
        if (ok) {
          model.set(`customers/${c.id}`, c)
          model.set(`orders/${o.id}`, o)
          stats.acknowledged++
        }
      } else if (kind === 2) {
        const key = [...model.keys()].find((k) => k.startsWith('customers/') && (n % 7) === Number(k.length % 7))
        if (key) {
          const id = key.slice('customers/'.length)
          const tax = `U-${n}`
          const ok = await write(() => d.withTenant(tenant, async (s) => {
            await s.table('customers').update(id, { tax_id: tax })
          }))
          if (ok) {
            model.set(key, { ...model.get(key)!, tax_id: tax })
            stats.acknowledged++
          }
        }
      } else {
        const orderKey = [...model.keys()].find((k) => k.startsWith(`orders/${opts.prefix}o`))
        if (orderKey) {
          const order = model.get(orderKey)!
          const ok = await write(() => d.withTenant(tenant, async (s) => {
            await s.table('orders').delete(String(order.id))
            await s.table('customers').delete(String(order.customer_id))
          }))
          if (ok) {
            model.delete(orderKey)
            model.delete(`customers/${String(order.customer_id)}`)
            stats.acknowledged++
          }
        }
      }
      if (opts.pauseMs) await new Promise((r) => setTimeout(r, opts.pauseMs))
    }
  })()
  return {
    model, stats,
    async stop() {
      stopping = true
      await loop
    },
  }
}
