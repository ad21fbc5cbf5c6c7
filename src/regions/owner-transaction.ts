/**
 * One transaction on a store's owner login (admin work: the directory's writes, the operations
 * journal): committed when `fn` resolves, rolled back when it throws. Never a tenant scope.
 */
import type { StoreDriver, StoreSession } from './store-driver.js'

export function ownerTransaction<T>(store: StoreDriver, fn: (s: StoreSession) => Promise<T>): Promise<T> {
  return store.withSession(async (s) => {
    await s.exec('BEGIN')
    try {
      const r = await fn(s)
      await s.exec('COMMIT')
      return r
    } catch (e) {
      await s.exec('ROLLBACK').catch(() => undefined)
      throw e
    }
  }, { role: 'owner' })
}
