/** RuntimeKeyProvider against scripted providers: deadlines, error normalisation, breaker, audit, close. */

import { describe, test } from 'node:test'
import { strict as assert } from 'node:assert'
import { randomBytes } from 'node:crypto'
import { MemoryAuditSink } from '../../../src/audit/audit-sink.js'
import { DecryptionFailedError, DomicileError, isDomicileError } from '../../../src/errors.js'
import type { DomicileErrorCode } from '../../../src/errors.js'
import { CircuitBreaker } from '../../../src/keys/circuit-breaker.js'
import type { KeyProvider, OpOptions, ProviderKind, WrapContext } from '../../../src/keys/key-provider.js'
import { RuntimeKeyProvider } from '../../../src/keys/runtime-key-provider.js'

const ctx: WrapContext = { tenantId: 'acme', region: 'eu-west-1', dataKeyId: 'dk1', purpose: 'data' }
const key32 = (): Uint8Array => new Uint8Array(randomBytes(32))

type Behaviour = (op: 'wrap' | 'unwrap' | 'status', opts?: OpOptions) => Promise<unknown>

/** A scripted provider: `behave` decides each answer. */
function scripted(behave: Behaviour, kind: ProviderKind = 'local'): KeyProvider & { calls: number } {
  const p = {
    kind,
    name: 'scripted',
    calls: 0,
    async wrapKey(_req: unknown, opts?: OpOptions) { p.calls++; return (await behave('wrap', opts)) as { keyId: string; ciphertext: Uint8Array } },
    async unwrapKey(_req: unknown, opts?: OpOptions) { p.calls++; return (await behave('unwrap', opts)) as Uint8Array },
    async keyStatus(_keyId: string, opts?: OpOptions) { p.calls++; return (await behave('status', opts)) as { keyId: string; state: 'enabled' } },
  }
  return p
}

const hang: Behaviour = () => new Promise(() => {})

async function code(p: Promise<unknown>, expected: DomicileErrorCode): Promise<DomicileError> {
  try {
    await p
  } catch (e) {
    assert.ok(isDomicileError(e), `expected DomicileError, got ${String(e)}`)
    assert.equal(e.code, expected, e.message)
    return e
  }
  assert.fail(`expected ${expected}`)
}

describe('RuntimeKeyProvider', () => {
  test('default deadline is 250 ms for xks and 2000 ms otherwise', () => {
    assert.equal(new RuntimeKeyProvider(scripted(hang, 'xks')).timeoutMs, 250)
    assert.equal(new RuntimeKeyProvider(scripted(hang, 'pkcs11')).timeoutMs, 2000)
    assert.equal(new RuntimeKeyProvider(scripted(hang), { timeoutMs: 40 }).timeoutMs, 40)
  })

  test('a provider that never answers times out with ERR_KEY_PROVIDER_UNAVAILABLE naming the deadline', async () => {
    const rt = new RuntimeKeyProvider(scripted(hang), { timeoutMs: 30 })
    const t0 = performance.now()
    const e = await code(rt.keyStatus('k'), 'ERR_KEY_PROVIDER_UNAVAILABLE')
    assert.match(e.message, /did not answer within 30 ms; check it is reachable/)
    assert.ok(performance.now() - t0 < 1000)
  })

  test('the provider receives a signal that fires at the deadline', async () => {
    let seen: AbortSignal | undefined
    const rt = new RuntimeKeyProvider(scripted((_op, o) => { seen = o?.signal; return new Promise(() => {}) }), { timeoutMs: 20 })
    await code(rt.keyStatus('k'), 'ERR_KEY_PROVIDER_UNAVAILABLE')
    assert.ok(seen?.aborted)
  })

  test('a caller abort in flight maps to ERR_KEY_PROVIDER_UNAVAILABLE and does not count against the breaker', async () => {
    const breaker = new CircuitBreaker({ failureThreshold: 1 })
    const rt = new RuntimeKeyProvider(scripted(hang), { breaker })
    const ac = new AbortController()
    const p = rt.keyStatus('k', { signal: ac.signal })
    setTimeout(() => ac.abort(), 5)
    const e = await code(p, 'ERR_KEY_PROVIDER_UNAVAILABLE')
    assert.match(e.message, /cancelled by the caller/)
    assert.equal(breaker.state, 'closed')
  })

  test('a late unwrap result after the deadline is zeroed', async () => {
    const late = key32()
    let deliver!: () => void
    const rt = new RuntimeKeyProvider(scripted(() => new Promise((r) => { deliver = () => r(late) })), { timeoutMs: 10 })
    await code(rt.unwrapKey({ keyId: 'k', ciphertext: new Uint8Array(8), context: ctx }), 'ERR_KEY_PROVIDER_UNAVAILABLE')
    deliver()
    await new Promise((r) => setImmediate(r))
    assert.ok(late.every((b) => b === 0))
  })

  test('Precondition: the unwrapped data key is exactly 32 bytes (otherwise zero it and fail opaquely).', async () => {
    const short = new Uint8Array(randomBytes(31))
    const rt = new RuntimeKeyProvider(scripted(async () => short))
    const e = await code(rt.unwrapKey({ keyId: 'k', ciphertext: new Uint8Array(8), context: ctx }), 'ERR_DECRYPTION_FAILED')
    assert.equal(e.cause, undefined)
    assert.ok(short.every((b) => b === 0))
  })

  test('Precondition: tenantId, region and dataKeyId are non-empty strings.', async () => {
    const p = scripted(async () => ({ keyId: 'k', ciphertext: new Uint8Array(4) }))
    const rt = new RuntimeKeyProvider(p)
    for (const bad of [{ ...ctx, tenantId: '' }, { ...ctx, region: '' }, { ...ctx, dataKeyId: 7 }]) {
      await code(rt.wrapKey({ keyId: 'k', plaintextKey: key32(), context: bad as unknown as WrapContext }), 'ERR_INPUT_INVALID')
    }
    await code(rt.wrapKey({ keyId: 'k', plaintextKey: key32(), context: { ...ctx, purpose: 'other' as 'data' } }), 'ERR_INPUT_INVALID')
    await code(rt.wrapKey({ keyId: '', plaintextKey: key32(), context: ctx }), 'ERR_INPUT_INVALID')
    assert.equal(p.calls, 0)
  })

  test('a foreign error becomes ERR_KEY_PROVIDER_UNAVAILABLE without echoing its message', async () => {
    const secret = 'password=hunter2 key=' + Buffer.from(key32()).toString('hex')
    const rt = new RuntimeKeyProvider(scripted(async () => { throw new Error(secret) }))
    const w = await code(rt.wrapKey({ keyId: 'k', plaintextKey: key32(), context: ctx }), 'ERR_KEY_PROVIDER_UNAVAILABLE')
    assert.ok(!w.message.includes('hunter2'))
    assert.ok(w.cause instanceof Error, 'non-decrypt failures keep the cause for operators')
    const u = await code(rt.unwrapKey({ keyId: 'k', ciphertext: new Uint8Array(8), context: ctx }), 'ERR_KEY_PROVIDER_UNAVAILABLE')
    assert.ok(!u.message.includes('hunter2'))
    assert.equal(u.cause, undefined, 'unwrap failures keep no cause')
  })

  test('DomicileErrors pass through unchanged; decryption failures are re-thrown fresh without cause', async () => {
    const revoked = new DomicileError('ERR_KEY_REVOKED', 'key is disabled')
    const rt1 = new RuntimeKeyProvider(scripted(async () => { throw revoked }))
    assert.equal(await code(rt1.keyStatus('k'), 'ERR_KEY_REVOKED'), revoked)
    const inner = new DecryptionFailedError()
    const withCause = new DomicileError('ERR_DECRYPTION_FAILED', 'bad tag on key abc', { cause: new Error('x') })
    for (const thrown of [inner, withCause]) {
      const rt = new RuntimeKeyProvider(scripted(async () => { throw thrown }))
      const e = await code(rt.unwrapKey({ keyId: 'k', ciphertext: new Uint8Array(8), context: ctx }), 'ERR_DECRYPTION_FAILED')
      assert.notEqual(e, thrown)
      assert.ok(e instanceof DecryptionFailedError)
      assert.equal(e.cause, undefined)
      assert.equal(e.message, new DecryptionFailedError().message)
    }
  })

  test('consecutive outages open the circuit; then calls fail fast without reaching the provider', async () => {
    let now = 0
    const breaker = new CircuitBreaker({ failureThreshold: 3, cooldownMs: 1000, now: () => now })
    let healthy = false
    const p = scripted(async () => {
      if (!healthy) throw new Error('ECONNREFUSED')
      return { keyId: 'k', state: 'enabled' }
    })
    const rt = new RuntimeKeyProvider(p, { breaker })
    for (let i = 0; i < 3; i++) await code(rt.keyStatus('k'), 'ERR_KEY_PROVIDER_UNAVAILABLE')
    assert.equal(p.calls, 3)
    const e = await code(rt.keyStatus('k'), 'ERR_KEY_PROVIDER_UNAVAILABLE')
    assert.match(e.message, /circuit open/)
    assert.equal(p.calls, 3)
    now += 1000
    healthy = true
    assert.equal((await rt.keyStatus('k')).state, 'enabled')
    assert.equal(breaker.state, 'closed')
  })

  test('revoked, not-found and decryption failures do not open the circuit', async () => {
    const breaker = new CircuitBreaker({ failureThreshold: 2 })
    const errs = [new DomicileError('ERR_KEY_REVOKED', 'r'), new DomicileError('ERR_KEY_NOT_FOUND', 'n'), new DecryptionFailedError()]
    let i = 0
    const rt = new RuntimeKeyProvider(scripted(async () => { throw errs[i++ % 3] }), { breaker })
    for (let n = 0; n < 9; n++) await assert.rejects(rt.unwrapKey({ keyId: 'k', ciphertext: new Uint8Array(8), context: ctx }))
    assert.equal(breaker.state, 'closed')
  })

  test('audit: identifiers, outcome and code; denied for revoked, error for outages', async () => {
    const audit = new MemoryAuditSink()
    let answer: () => Promise<unknown> = async () => key32()
    const rt = new RuntimeKeyProvider(scripted(() => answer()), { audit })
    await rt.unwrapKey({ keyId: 'kek-1', ciphertext: new Uint8Array(8), context: ctx })
    answer = async () => { throw new DomicileError('ERR_KEY_REVOKED', 'r') }
    await assert.rejects(rt.unwrapKey({ keyId: 'kek-1', ciphertext: new Uint8Array(8), context: ctx }))
    answer = async () => { throw new Error('down') }
    await assert.rejects(rt.keyStatus('kek-1'))
    const [ok, denied, down] = audit.events
    assert.equal(ok?.type, 'key.unwrap')
    assert.equal(ok?.outcome, 'ok')
    assert.deepEqual({ ...ok?.detail, ms: 0 }, { provider: 'scripted', keyId: 'kek-1', dataKeyId: 'dk1', purpose: 'data', ms: 0 })
    assert.equal(ok?.tenantId, 'acme')
    assert.equal(denied?.outcome, 'denied')
    assert.equal(denied?.code, 'ERR_KEY_REVOKED')
    assert.equal(down?.type, 'key.status')
    assert.equal(down?.outcome, 'error')
    assert.equal(down?.code, 'ERR_KEY_PROVIDER_UNAVAILABLE')
  })

  test('a throwing audit sink fails the unwrap closed and zeroes the key', async () => {
    const k = key32()
    const rt = new RuntimeKeyProvider(scripted(async () => k), { audit: { record() { throw new Error('audit log full') } } })
    await assert.rejects(rt.unwrapKey({ keyId: 'k', ciphertext: new Uint8Array(8), context: ctx }))
    assert.ok(k.every((b) => b === 0))
  })

  test('createKey is present only when the inner provider has it', async () => {
    assert.equal(new RuntimeKeyProvider(scripted(hang)).createKey, undefined)
    const withCreate = { ...scripted(hang), createKey: async () => ({ keyId: 'new-key' }) }
    const rt = new RuntimeKeyProvider(withCreate)
    assert.deepEqual(await rt.createKey!({ label: 'acme', origin: 'generate' }), { keyId: 'new-key' })
  })

  test('after close() every call fails with ERR_CLOSED and the inner provider is closed once', async () => {
    let closed = 0
    const p = { ...scripted(async () => key32()), close: async () => { closed++ } }
    const rt = new RuntimeKeyProvider(p)
    await rt.close()
    await rt.close()
    assert.equal(closed, 1)
    await code(rt.wrapKey({ keyId: 'k', plaintextKey: key32(), context: ctx }), 'ERR_CLOSED')
    await code(rt.unwrapKey({ keyId: 'k', ciphertext: new Uint8Array(8), context: ctx }), 'ERR_CLOSED')
    await code(rt.keyStatus('k'), 'ERR_CLOSED')
  })
})
