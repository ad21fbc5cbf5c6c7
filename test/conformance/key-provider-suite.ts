/**
 * The key-provider conformance suite: every KeyProvider implementation runs these cases.
 *
 * After hono's `runTest({ newRouter, skip })`: a provider's test file calls
 * `runKeyProviderSuite({ name, setup })` with a fixture that owns one enabled key-encryption key
 * plus the provider-specific way to revoke and restore it. Every case goes through
 * `RuntimeKeyProvider`, so what is checked is what the rest of Domicile sees.
 *
 * One fixture is set up per suite (HSM sessions and RSA job keys are not free); the cases run in
 * order and the revoke case is followed by the restore case.
 *
 * The optional administrative calls run when the provider has them and the fixture offers a key
 * they may spend (`disposableKey`): `destroyKey` (irreversible) and `deleteKeyMaterial`. Otherwise
 * the case is skipped with the reason named (a provider that holds no key material cannot destroy it).
 */

import { after, before, describe, test } from 'node:test'
import { strict as assert } from 'node:assert'
import { randomBytes, randomUUID } from 'node:crypto'
import { MemoryAuditSink } from '../../src/audit/audit-sink.js'
import { DecryptionFailedError, DomicileError, isDomicileError } from '../../src/errors.js'
import type { DomicileErrorCode } from '../../src/errors.js'
import type { KeyProvider, OpOptions, WrapContext } from '../../src/keys/key-provider.js'
import { RuntimeKeyProvider } from '../../src/keys/runtime-key-provider.js'

export interface KeyProviderFixture {
  /** The raw provider under test (the suite wraps it in RuntimeKeyProvider itself). */
  provider: KeyProvider
  /** An enabled key-encryption key at that provider. */
  keyId: string
  /** Revoke `keyId` the way its holder would (disable, delete material, ...). */
  revoke(): Promise<void>
  /** Undo `revoke()` so that keys wrapped before it unwrap again. */
  restore(): Promise<void>
  /** Release everything setup() made. */
  teardown(): Promise<void>
  /** A well-formed key id that does not exist at the provider. Default: a random 'domicile-missing-…' id. */
  unknownKeyId?: string
  /** A fresh enabled key the destroy and delete-material cases may spend (never `keyId`). */
  disposableKey?(): Promise<string>
}

export interface KeyProviderSuiteOptions {
  name: string
  setup: () => Promise<KeyProviderFixture>
  /** A reason to skip the whole suite, or false. */
  skip?: string | false
  /** Deadline handed to RuntimeKeyProvider; default: its own (250 ms xks, 2 s otherwise). */
  timeoutMs?: number
  /** Why the provider cannot destroy keys, when it has no destroyKey (e.g. it holds no key material). */
  cannotDestroy?: string
  /** Why the provider cannot delete imported key material, when it has no deleteKeyMaterial. */
  cannotDeleteMaterial?: string
}

/** Why a provider without destroyKey / deleteKeyMaterial has none, by kind (a suite option overrides it). */
const NO_DESTROY: Readonly<Record<string, string>> = {
  xks: 'xks (HYOK) holds no key material: the key lives at the customer\'s key service and XKS API v1 has no call to delete it',
}
const NO_DELETE_MATERIAL: Readonly<Record<string, string>> = {
  xks: 'xks (HYOK): key material is imported and deleted at the customer\'s key service, not through us',
  pkcs11: 'pkcs11: keys are generated on the token, never imported, so there is no imported material to delete',
  'aws-kms': 'aws-kms: DeleteImportedKeyMaterial is run by the key\'s owner in AWS; Domicile imports no material into KMS',
}

const OPAQUE_MESSAGE = new DecryptionFailedError().message

interface CallCounts { wrap: number; unwrap: number; status: number; destroy: number; deleteMaterial: number }

/** A transparent pass-through that counts how often the provider itself was reached. */
function counting(inner: KeyProvider): { provider: KeyProvider; calls: CallCounts } {
  const calls: CallCounts = { wrap: 0, unwrap: 0, status: 0, destroy: 0, deleteMaterial: 0 }
  const provider: KeyProvider = {
    kind: inner.kind,
    name: inner.name,
    wrapKey: (req, opts) => { calls.wrap += 1; return inner.wrapKey(req, opts) },
    unwrapKey: (req, opts) => { calls.unwrap += 1; return inner.unwrapKey(req, opts) },
    keyStatus: (keyId, opts) => { calls.status += 1; return inner.keyStatus(keyId, opts) },
    ...(inner.destroyKey ? { destroyKey: (keyId: string, opts?: OpOptions) => { calls.destroy += 1; return inner.destroyKey!(keyId, opts) } } : {}),
    ...(inner.deleteKeyMaterial ? { deleteKeyMaterial: (keyId: string, opts?: OpOptions) => { calls.deleteMaterial += 1; return inner.deleteKeyMaterial!(keyId, opts) } } : {}),
  }
  return { provider, calls }
}

function encodings(bytes: Uint8Array): string[] {
  const b = Buffer.from(bytes)
  const out = [b.toString('hex'), b.toString('hex').toUpperCase(), b.toString('base64'), b.toString('base64url')]
  return out.filter((s) => s.length >= 16)
}

/** Runs the conformance cases against one provider. */
export function runKeyProviderSuite(opts: KeyProviderSuiteOptions): void {
  const skip = opts.skip === undefined || opts.skip === false ? false : opts.skip
  describe(`key provider conformance: ${opts.name}`, { skip }, () => {
    let fixture: KeyProviderFixture
    let runtime: RuntimeKeyProvider
    let calls: CallCounts
    let audit: MemoryAuditSink
    const secrets: Uint8Array[] = []
    const errors: unknown[] = []
    const run = randomUUID().slice(0, 8)

    const ctx = (over: Partial<WrapContext> = {}): WrapContext => ({
      tenantId: `conf-tenant-${run}`,
      region: 'eu-west-1',
      dataKeyId: `dk-${run}`,
      purpose: 'data',
      ...over,
    })
    const freshKey = (): Uint8Array => {
      const k = new Uint8Array(randomBytes(32))
      secrets.push(k.slice())
      return k
    }
    const wrap = async (key: Uint8Array, context = ctx()) => {
      const w = await runtime.wrapKey({ keyId: fixture.keyId, plaintextKey: key, context })
      secrets.push(w.ciphertext.slice())
      return w
    }

    /** Await a rejection, check its code and that nothing secret leaked into it. */
    async function rejects(p: Promise<unknown>, code: DomicileErrorCode): Promise<DomicileError> {
      let caught: unknown
      try {
        await p
      } catch (e) {
        caught = e
      }
      assert.ok(caught !== undefined, `expected ${code}, but the call succeeded`)
      errors.push(caught)
      assert.ok(isDomicileError(caught), `expected a DomicileError ${code}, got ${String(caught)}`)
      assert.equal(caught.code, code, `expected ${code}, got ${caught.code}: ${caught.message}`)
      assertNoLeak(caught)
      if (code === 'ERR_DECRYPTION_FAILED') {
        assert.equal(caught.message, OPAQUE_MESSAGE, 'decryption failures carry the one fixed message')
        assert.equal(caught.cause, undefined, 'decryption failures carry no cause')
      }
      return caught
    }

    function assertNoLeak(e: unknown): void {
      const texts: string[] = []
      let cur: unknown = e
      for (let depth = 0; cur !== undefined && cur !== null && depth < 8; depth++) {
        if (cur instanceof Error) {
          texts.push(cur.message, cur.stack ?? '')
          cur = cur.cause
        } else {
          texts.push(String(cur))
          break
        }
      }
      if (isDomicileError(e)) texts.push(JSON.stringify(e.toJSON()))
      const all = texts.join('\n')
      for (const s of secrets) {
        for (const enc of encodings(s)) assert.ok(!all.includes(enc), 'an error message contains key or ciphertext bytes')
      }
    }

    before(async () => {
      fixture = await opts.setup()
      const c = counting(fixture.provider)
      calls = c.calls
      audit = new MemoryAuditSink()
      runtime = new RuntimeKeyProvider(c.provider, {
        audit,
        ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
      })
    })

    after(async () => {
      await fixture?.teardown()
    })

    test('keyStatus of the fixture key is enabled', async () => {
      const status = await runtime.keyStatus(fixture.keyId)
      assert.equal(status.state, 'enabled')
      assert.equal(status.keyId, fixture.keyId)
    })

    test('wrap then unwrap returns the same 32-byte key (data and index purposes)', async () => {
      for (const purpose of ['data', 'index'] as const) {
        const key = freshKey()
        const expected = key.slice()
        const w = await wrap(key, ctx({ purpose }))
        assert.ok(w.ciphertext instanceof Uint8Array && w.ciphertext.length > 0)
        assert.equal(w.keyId.length > 0, true)
        assert.ok(!Buffer.from(w.ciphertext).includes(Buffer.from(expected)), 'the ciphertext contains the plaintext key')
        const back = await runtime.unwrapKey({ keyId: fixture.keyId, ciphertext: w.ciphertext, context: ctx({ purpose }) })
        assert.equal(back.length, 32)
        assert.deepEqual(Buffer.from(back), Buffer.from(expected))
      }
    })

    test('two wraps of the same key differ', async () => {
      const key = freshKey()
      const a = await wrap(key.slice())
      const b = await wrap(key.slice())
      assert.notDeepEqual(Buffer.from(a.ciphertext), Buffer.from(b.ciphertext))
    })

    for (const [field, other] of [
      ['tenantId', { tenantId: `conf-other-${run}` }],
      ['region', { region: 'us-east-1' }],
      ['dataKeyId', { dataKeyId: `dk-other-${run}` }],
      ['purpose', { purpose: 'index' }],
    ] as const) {
      test(`unwrap under a different ${field} fails with ERR_DECRYPTION_FAILED`, async () => {
        const w = await wrap(freshKey())
        await rejects(runtime.unwrapKey({ keyId: fixture.keyId, ciphertext: w.ciphertext, context: ctx(other) }), 'ERR_DECRYPTION_FAILED')
      })
    }

    test('tampered or truncated ciphertext fails with the opaque ERR_DECRYPTION_FAILED', async () => {
      const w = await wrap(freshKey())
      const ct = w.ciphertext
      const variants: Array<[string, Uint8Array]> = []
      for (const at of [0, Math.floor(ct.length / 2), ct.length - 1]) {
        const t = ct.slice()
        t[at] = (t[at] ?? 0) ^ 0x01
        variants.push([`bit flip at byte ${at}`, t])
      }
      variants.push(['last byte dropped', ct.slice(0, ct.length - 1)])
      variants.push(['cut in half', ct.slice(0, Math.floor(ct.length / 2))])
      variants.push(['one byte', ct.slice(0, 1)])
      variants.push(['byte appended', Buffer.concat([ct, Buffer.from([0])])])
      for (const [, ciphertext] of variants) {
        await rejects(runtime.unwrapKey({ keyId: fixture.keyId, ciphertext, context: ctx() }), 'ERR_DECRYPTION_FAILED')
      }
    })

    test('unknown key id fails with ERR_KEY_NOT_FOUND', async () => {
      const missing = fixture.unknownKeyId ?? `domicile-missing-${randomUUID()}`
      const w = await wrap(freshKey())
      await rejects(runtime.wrapKey({ keyId: missing, plaintextKey: freshKey(), context: ctx() }), 'ERR_KEY_NOT_FOUND')
      await rejects(runtime.unwrapKey({ keyId: missing, ciphertext: w.ciphertext, context: ctx() }), 'ERR_KEY_NOT_FOUND')
      await rejects(runtime.keyStatus(missing), 'ERR_KEY_NOT_FOUND')
    })

    test('Precondition: the plaintext data key is exactly 32 bytes.', async () => {
      const before = calls.wrap
      for (const len of [0, 16, 31, 33]) {
        await rejects(runtime.wrapKey({ keyId: fixture.keyId, plaintextKey: new Uint8Array(randomBytes(len)), context: ctx() }), 'ERR_KEY_INVALID')
      }
      assert.equal(calls.wrap, before, 'the provider must not see a wrong-length key')
    })

    test('Precondition: the caller has not already given up.', async () => {
      const ac = new AbortController()
      ac.abort()
      const before = { ...calls }
      const w = await wrap(freshKey())
      const afterWrap = { ...calls }
      await rejects(runtime.wrapKey({ keyId: fixture.keyId, plaintextKey: freshKey(), context: ctx() }, { signal: ac.signal }), 'ERR_KEY_PROVIDER_UNAVAILABLE')
      await rejects(runtime.unwrapKey({ keyId: fixture.keyId, ciphertext: w.ciphertext, context: ctx() }, { signal: ac.signal }), 'ERR_KEY_PROVIDER_UNAVAILABLE')
      await rejects(runtime.keyStatus(fixture.keyId, { signal: ac.signal }), 'ERR_KEY_PROVIDER_UNAVAILABLE')
      assert.deepEqual(calls, afterWrap)
      assert.equal(afterWrap.wrap, before.wrap + 1)
    })

    test('audit events for wrap and unwrap carry outcome and identifiers, never key bytes', async () => {
      const start = audit.events.length
      const key = freshKey()
      const w = await wrap(key.slice())
      const back = await runtime.unwrapKey({ keyId: fixture.keyId, ciphertext: w.ciphertext, context: ctx() })
      secrets.push(back.slice())
      await rejects(runtime.unwrapKey({ keyId: fixture.keyId, ciphertext: w.ciphertext, context: ctx({ region: 'ap-south-1' }) }), 'ERR_DECRYPTION_FAILED')
      const events = audit.events.slice(start)
      const wrapEv = events.find((e) => e.type === 'key.wrap')
      const okUnwrap = events.find((e) => e.type === 'key.unwrap' && e.outcome === 'ok')
      const badUnwrap = events.find((e) => e.type === 'key.unwrap' && e.outcome !== 'ok')
      assert.ok(wrapEv && okUnwrap && badUnwrap, 'expected key.wrap, a successful key.unwrap and a failed key.unwrap')
      assert.equal(wrapEv.outcome, 'ok')
      assert.equal(wrapEv.tenantId, ctx().tenantId)
      assert.equal(wrapEv.region, 'eu-west-1')
      assert.equal(wrapEv.detail?.provider, fixture.provider.name)
      assert.equal(wrapEv.detail?.keyId, fixture.keyId)
      assert.equal(wrapEv.detail?.dataKeyId, ctx().dataKeyId)
      assert.equal(wrapEv.detail?.purpose, 'data')
      assert.equal(typeof wrapEv.detail?.ms, 'number')
      assert.equal(badUnwrap.code, 'ERR_DECRYPTION_FAILED')
      assert.equal(badUnwrap.region, 'ap-south-1')
      const dump = JSON.stringify(audit.events)
      for (const s of secrets) {
        for (const enc of encodings(s)) assert.ok(!dump.includes(enc), 'an audit event contains key or ciphertext bytes')
      }
    })

    let wrappedBeforeRevoke: { ciphertext: Uint8Array; key: Uint8Array } | undefined

    test('revoke(): wrap and unwrap fail with ERR_KEY_REVOKED and keyStatus is disabled or deleted', async () => {
      const key = freshKey()
      const expected = key.slice()
      const w = await wrap(key)
      wrappedBeforeRevoke = { ciphertext: w.ciphertext, key: expected }
      await fixture.revoke()
      await rejects(runtime.unwrapKey({ keyId: fixture.keyId, ciphertext: w.ciphertext, context: ctx() }), 'ERR_KEY_REVOKED')
      await rejects(runtime.wrapKey({ keyId: fixture.keyId, plaintextKey: freshKey(), context: ctx() }), 'ERR_KEY_REVOKED')
      const status = await runtime.keyStatus(fixture.keyId)
      assert.ok(status.state === 'disabled' || status.state === 'deleted', `keyStatus after revoke is ${status.state}`)
      const denied = audit.events.filter((e) => e.code === 'ERR_KEY_REVOKED')
      assert.ok(denied.length >= 2 && denied.every((e) => e.outcome === 'denied'), 'revoked calls are audited as denied')
    })

    test('restore(): keys wrapped before the revoke unwrap again', async () => {
      await fixture.restore()
      assert.ok(wrappedBeforeRevoke, 'the revoke case must run first')
      const back = await runtime.unwrapKey({ keyId: fixture.keyId, ciphertext: wrappedBeforeRevoke.ciphertext, context: ctx() })
      assert.deepEqual(Buffer.from(back), Buffer.from(wrappedBeforeRevoke.key))
      assert.equal((await runtime.keyStatus(fixture.keyId)).state, 'enabled')
      const again = await wrap(freshKey())
      assert.ok(again.ciphertext.length > 0)
    })

    describe('destroyKey', () => {
      test('destroyKey: the key is gone for good and keys wrapped under it never unwrap again', async (t) => {
        const why = skipReason(fixture, 'destroyKey', opts.cannotDestroy ?? NO_DESTROY[fixture.provider.kind])
        if (why) return t.skip(why)
        const keyId = await fixture.disposableKey!()
        assert.notEqual(keyId, fixture.keyId)
        const key = freshKey()
        const w = await runtime.wrapKey({ keyId, plaintextKey: key, context: ctx() })
        secrets.push(w.ciphertext.slice())
        const start = audit.events.length
        const r = await runtime.destroyKey!(keyId)
        assert.equal(r.keyId, keyId)
        if (r.state === 'destroyed') {
          await rejects(runtime.unwrapKey({ keyId, ciphertext: w.ciphertext, context: ctx() }), 'ERR_KEY_NOT_FOUND')
          await rejects(runtime.wrapKey({ keyId, plaintextKey: freshKey(), context: ctx() }), 'ERR_KEY_NOT_FOUND')
          await rejects(runtime.keyStatus(keyId), 'ERR_KEY_NOT_FOUND')
          // Destroying it again finds nothing: there is no way back to the key.
          await rejects(runtime.destroyKey!(keyId), 'ERR_KEY_NOT_FOUND')
        } else {
          assert.equal(r.state, 'pending-deletion')
          assert.ok(r.deletionDate instanceof Date && r.deletionDate.getTime() > Date.now(), 'a scheduled deletion has a date in the future')
          await rejects(runtime.unwrapKey({ keyId, ciphertext: w.ciphertext, context: ctx() }), 'ERR_KEY_REVOKED')
          assert.equal((await runtime.keyStatus(keyId)).state, 'deleted')
        }
        const ev = audit.events.slice(start).find((e) => e.type === 'key.destroy')
        assert.ok(ev, 'a key.destroy audit event')
        assert.equal(ev.outcome, 'ok')
        assert.equal(ev.detail?.keyId, keyId)
        assert.equal(ev.detail?.state, r.state)
        // Only that key: the fixture's key still works.
        const other = freshKey()
        const expected = other.slice()
        const ow = await wrap(other)
        assert.deepEqual(Buffer.from(await runtime.unwrapKey({ keyId: fixture.keyId, ciphertext: ow.ciphertext, context: ctx() })), Buffer.from(expected))
      })

      test('Precondition: the key id is a non-empty string. (destroyKey)', async (t) => {
        const why = skipReason(fixture, 'destroyKey', opts.cannotDestroy ?? NO_DESTROY[fixture.provider.kind], false)
        if (why) return t.skip(why)
        const before = calls.destroy
        await rejects(runtime.destroyKey!(''), 'ERR_INPUT_INVALID')
        assert.equal(calls.destroy, before, 'the provider must not see an empty key id')
      })
    })

    describe('deleteKeyMaterial', () => {
      test('deleteKeyMaterial: the key stays, its material is gone, every wrapped key is refused', async (t) => {
        const why = skipReason(fixture, 'deleteKeyMaterial', opts.cannotDeleteMaterial ?? NO_DELETE_MATERIAL[fixture.provider.kind])
        if (why) return t.skip(why)
        const keyId = await fixture.disposableKey!()
        const w = await runtime.wrapKey({ keyId, plaintextKey: freshKey(), context: ctx() })
        secrets.push(w.ciphertext.slice())
        const start = audit.events.length
        await runtime.deleteKeyMaterial!(keyId)
        await rejects(runtime.unwrapKey({ keyId, ciphertext: w.ciphertext, context: ctx() }), 'ERR_KEY_REVOKED')
        assert.equal((await runtime.keyStatus(keyId)).state, 'deleted')
        assert.ok(audit.events.slice(start).some((e) => e.type === 'key.delete-material' && e.outcome === 'ok' && e.detail?.keyId === keyId))
      })
    })

    test('no error message seen by this suite contains key or ciphertext bytes', () => {
      assert.ok(errors.length >= 15, `expected the suite to have collected errors, got ${errors.length}`)
      for (const e of errors) assertNoLeak(e)
    })
  })
}

/**
 * Why an optional-call case cannot run: the provider lacks the call (the reason given, else the
 * plain fact), or the fixture offers no key to spend. Undefined when it can run.
 */
function skipReason(fixture: KeyProviderFixture, call: 'destroyKey' | 'deleteKeyMaterial', reason: string | undefined, needsKey = true): string | undefined {
  if (typeof fixture.provider[call] !== 'function') return reason ?? `the ${fixture.provider.kind} provider "${fixture.provider.name}" does not implement ${call}`
  if (needsKey && fixture.disposableKey === undefined) return `the ${fixture.provider.kind} fixture offers no disposable key for ${call}`
  return undefined
}
