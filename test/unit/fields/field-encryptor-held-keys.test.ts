import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { FieldEncryptor } from '../../../src/fields/field-encryptor.js'
import { prepareColumn } from '../../../src/fields/field-codec.js'
import { defineSchema } from '../../../src/schema/define-schema.js'
import { isDomicileError } from '../../../src/errors.js'
import type { TenantRecord } from '../../../src/control-plane/tenant-directory.js'
import type { TenantKeys } from '../../../src/keys/keyring.js'
import type { TenantTransaction } from '../../../src/regions/router.js'

const schema = defineSchema({
  customers: {
    scope: 'tenant',
    primaryKey: 'id',
    columns: { id: { type: 'text' }, email: { type: 'text', sensitive: { searchable: true, normalize: ['lower'] } } },
  },
})
const table = schema.table('customers')
const email = table.columns.get('email')!

/** The keyring as the encryptor sees it: one cached data key (number 1), counted fetches. */
function keysWith(cached: Uint8Array) {
  const calls = { peek: 0, fetch: 0 }
  let fetch = async (n: number): Promise<Uint8Array> => {
    if (n !== 1) throw new Error('no such key')
    return cached
  }
  const keys = {
    withDataKey: <T>(n: number, use: (key: Uint8Array) => T): T | Promise<T> => {
      calls.peek++
      if (n === 1 && cached.some((b) => b !== 0)) return use(cached)
      calls.fetch++
      return fetch(n).then(use)
    },
  }
  return { keys: keys as unknown as TenantKeys, calls, setFetch: (f: typeof fetch) => { fetch = f } }
}

describe('FieldEncryptor: keys held for a filter that runs after the transaction', () => {
  const tenant = { id: 'acme', region: 'eu-west-1', status: 'active', key: { provider: 'local', keyId: 'k', custody: 'kms' }, keyState: 'enabled' } as unknown as TenantRecord
  const rollbacks: Array<() => void> = []
  const tx = { tenantId: 'acme', region: 'eu-west-1', onRollback: (cb: () => void) => rollbacks.push(cb) } as unknown as TenantTransaction

  test('a held key is a private copy: matchesHeld still answers after the cache zeroed its key, until release', () => {
    const key = randomBytes(32)
    const stored = prepareColumn({ tenantId: 'acme', table: 'customers', column: 'email' }).seal(key, 1, 'c1', 'Ada@Example.eu')
    const { keys, calls } = keysWith(key)
    const fe = new FieldEncryptor(tenant, tx, keys)
    assert.equal(fe.holdKeyFor(stored), undefined, 'a cached key is held synchronously')
    key.fill(0) // the cache lets its key go (eviction, expiry, revocation)
    assert.equal(fe.matchesHeld(table, email, 'c1', stored, 'ada@example.eu'), true)
    assert.equal(fe.matchesHeld(table, email, 'c1', stored, 'bob@example.eu'), false)
    assert.throws(() => fe.matchesHeld(table, email, 'c2', stored, 'ada@example.eu'), (e) => isDomicileError(e, 'ERR_DECRYPTION_FAILED'), 'bound to its row: under another row key it does not open')
    fe.releaseHeldKeys()
    assert.throws(() => fe.matchesHeld(table, email, 'c1', stored, 'ada@example.eu'), (e) => isDomicileError(e, 'ERR_KEY_NOT_FOUND'), 'released: nothing held, and no fetch')
    assert.equal(calls.fetch, 0)
  })

  test('held keys are released when the transaction rolls back (its filter never ran)', () => {
    const key = randomBytes(32)
    const stored = prepareColumn({ tenantId: 'acme', table: 'customers', column: 'email' }).seal(key, 1, 'c1', 'ada@example.eu')
    const fe = new FieldEncryptor(tenant, tx, keysWith(key).keys)
    rollbacks.length = 0
    fe.holdKeyFor(stored)
    fe.holdKeyFor(stored)
    assert.equal(rollbacks.length, 1, 'one rollback hook per transaction')
    assert.equal(fe.matchesHeld(table, email, 'c1', stored, 'ada@example.eu'), true)
    rollbacks[0]!()
    assert.throws(() => fe.matchesHeld(table, email, 'c1', stored, 'ada@example.eu'), (e) => isDomicileError(e, 'ERR_KEY_NOT_FOUND'))
  })

  test('a key that is not cached is fetched (inside the transaction) and then held', async () => {
    const key = randomBytes(32)
    const stored = prepareColumn({ tenantId: 'acme', table: 'customers', column: 'email' }).seal(key, 1, 'c1', 'ada@example.eu')
    const copy = Uint8Array.from(key)
    const { keys, calls, setFetch } = keysWith(key)
    key.fill(0) // not in the cache now
    setFetch(async () => copy)
    const fe = new FieldEncryptor(tenant, tx, keys)
    const h = fe.holdKeyFor(stored)
    assert.ok(h instanceof Promise)
    await h
    assert.equal(calls.fetch, 1)
    assert.equal(fe.holdKeyFor(stored), undefined, 'held once per key number')
    assert.equal(calls.fetch, 1)
    assert.equal(fe.matchesHeld(table, email, 'c1', stored, 'ADA@example.eu'), true)
    fe.releaseHeldKeys()
  })
})
