/**
 * The runtime wrapper's rules for the destruction calls (destroyKey, deleteKeyMaterial): present
 * exactly when the provider has them, deadline, refusal after close, audit, and a malformed answer
 * refused. The inner provider is a stub that answers what the case needs (a real provider cannot
 * be made to answer malformed results).
 */
import { test } from 'node:test'
import { strict as assert } from 'node:assert'
import { MemoryAuditSink } from '../../src/audit/audit-sink.js'
import { isDomicileError } from '../../src/errors.js'
import type { DestroyKeyResult, KeyProvider } from '../../src/keys/key-provider.js'
import { RuntimeKeyProvider } from '../../src/keys/runtime-key-provider.js'

function stub(destroy?: () => Promise<unknown>, del?: () => Promise<void>): KeyProvider {
  return {
    kind: 'local',
    name: 'stub',
    wrapKey: async () => { throw new Error('not used') },
    unwrapKey: async () => { throw new Error('not used') },
    keyStatus: async (keyId) => ({ keyId, state: 'enabled' }),
    ...(destroy ? { destroyKey: destroy as () => Promise<DestroyKeyResult> } : {}),
    ...(del ? { deleteKeyMaterial: del } : {}),
  }
}

test('the wrapper has destroyKey / deleteKeyMaterial exactly when the provider has them', () => {
  const none = new RuntimeKeyProvider(stub())
  assert.equal(none.destroyKey, undefined)
  assert.equal(none.deleteKeyMaterial, undefined)
  const both = new RuntimeKeyProvider(stub(async () => ({ keyId: 'k', state: 'destroyed' }), async () => undefined))
  assert.equal(typeof both.destroyKey, 'function')
  assert.equal(typeof both.deleteKeyMaterial, 'function')
})

test("Precondition: the provider answered with 'destroyed', or 'pending-deletion' and a valid deletion date.", async () => {
  for (const answer of [undefined, { state: 'gone' }, { state: 'pending-deletion' }, { state: 'pending-deletion', deletionDate: new Date(Number.NaN) }]) {
    const audit = new MemoryAuditSink()
    const rt = new RuntimeKeyProvider(stub(async () => answer), { audit })
    await assert.rejects(rt.destroyKey!('k1'), (e: unknown) => isDomicileError(e, 'ERR_KEY_PROVIDER_UNAVAILABLE'), JSON.stringify(answer))
    assert.deepEqual(audit.events.map((e) => [e.type, e.outcome]), [['key.destroy', 'error']])
  }
  const rt = new RuntimeKeyProvider(stub(async () => ({ keyId: 'other', state: 'pending-deletion', deletionDate: new Date(Date.now() + 1000) })))
  const r = await rt.destroyKey!('k1')
  assert.equal(r.keyId, 'k1', 'the result names the key asked for')
})

test('destroyKey and deleteKeyMaterial run under the deadline and refuse after close', async () => {
  const hang = () => new Promise<never>(() => {})
  const rt = new RuntimeKeyProvider(stub(hang, hang), { timeoutMs: 50 })
  await assert.rejects(rt.destroyKey!('k1'), (e: unknown) => isDomicileError(e, 'ERR_KEY_PROVIDER_UNAVAILABLE') && /within 50 ms/.test(e.message))
  await assert.rejects(rt.deleteKeyMaterial!('k1'), (e: unknown) => isDomicileError(e, 'ERR_KEY_PROVIDER_UNAVAILABLE'))
  await rt.close()
  await assert.rejects(rt.destroyKey!('k1'), (e: unknown) => isDomicileError(e, 'ERR_CLOSED'))
  await assert.rejects(rt.deleteKeyMaterial!('k1'), (e: unknown) => isDomicileError(e, 'ERR_CLOSED'))
})
