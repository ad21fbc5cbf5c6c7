/**
 * Chaos, issue #14 item 3: key-service faults under a real Domicile (embedded PGlite region; the key
 * service is the point here, not the store).
 *
 * HYOK: the reference key proxy runs as a REAL child process (`domicile keyproxy serve`, plain HTTP
 * so faults can be injected at the HTTP level) behind a fault proxy (key-faults-proxy.ts) that
 * counts every request reaching the key service and can delay, hang, close, or answer errors,
 * garbage and oversized bodies. Three xks providers point at three fault proxies, so each scenario
 * has its own circuit breaker. PKCS#11: a real SoftHSM2 token whose directory is taken away and
 * put back.
 *
 * Checked, per scenario: cached keys keep serving until keys.cacheTtlMs (no request reaches the
 * dead service meanwhile); then every call fails with a typed error (ERR_KEY_PROVIDER_UNAVAILABLE)
 * within the provider deadline (each call's wall time is measured); the circuit breaker stops the
 * requests after its threshold; service comes back by itself once the key service returns; a write
 * that failed left nothing behind; and at the end every acknowledged write is in the store exactly
 * once, sealed, and opens to what was written. Everything the process emitted is checked for the
 * plaintexts written and the XKS secret (test/support/chaos-leaks.ts).
 *
 * Budget: about 30 s wall (two breaker cooldowns of 5 s, one cache TTL of 2.5 s, the TTL of the
 * HSM tenant). Seeded: the seed is printed; replay with DOMICILE_CHAOS_SEED.
 */
import { after, before, describe, test } from 'node:test'
import { strict as assert } from 'node:assert'
import { readdirSync, renameSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { isDomicileError, type DomicileError } from '../../src/errors.js'
import { internalsOf } from '../../src/domicile-internals.js'
import type { Domicile } from '../../src/index.js'
import { createDomicileFixture, type DomicileFixture } from '../support/domicile-fixture.js'
import { createKeyViaCli, initKeyProxyDir, startKeyProxyProcess, type KeyProxyDir, type KeyProxyProcess } from '../support/keyproxy-process.js'
import { createSoftHsmToken, softHsmSkip, type SoftHsmToken } from '../support/softhsm.js'
import { chaosRng } from '../support/chaos-rng.js'
import { recordFigures } from '../support/chaos-figures.js'
import { startLeakCapture } from '../support/chaos-leaks.js'
import { startFaultProxy, type FaultProxy } from './key-faults-proxy.js'

const rng = chaosRng('key-faults')
const EU = 'eu-west-1'
/** Per-call deadline of the xks providers (keys.providers.*.timeoutMs; also the runtime wrapper's). */
const TIMEOUT_MS = 500
/** What a call may take beyond its deadline: a PGlite transaction and scheduling on two loaded cores. */
const SLACK_MS = 1000
/** keys.cacheTtlMs.hyok */
const TTL_MS = 2500
/** The runtime wrapper's breaker defaults (src/keys/circuit-breaker.ts). */
const BREAKER_THRESHOLD = 5
const BREAKER_COOLDOWN_MS = 5000
const HSM_TTL_MS = 1500
const hsmSkip = softHsmSkip()

const leaks = startLeakCapture('key-faults')
const figures = { faults: 0, acknowledged: 0, verified: 0, unavailable: 0, maxCallMs: 0, requestsToDeadService: 0, recoveryMs: 0, hsmRecoveryMs: -1 }

/** Every acknowledged write: tenant, row id, and the sealed fields' plaintexts. */
interface Written { tenant: string; id: string; email: string; taxId: string }
const written: Written[] = []
let seq = 0

function plaintexts(tenant: string): { id: string; email: string; taxId: string } {
  const n = ++seq
  const tag = Math.floor(rng.next() * 2 ** 32).toString(16).padStart(8, '0')
  const p = { id: `r${n}-${tag}`, email: `kf-${tag}-${n}@mail.example`, taxId: `TAX-${tag}-${n}-${tenant}` }
  leaks.plaintext(p.email)
  leaks.plaintext(p.taxId)
  return p
}

/** A region store read directly as its owner (no Domicile repository, no RLS). */
async function storeRows(d: Domicile, sql: string, params: unknown[] = []): Promise<Array<Record<string, unknown>>> {
  const router = internalsOf(d).router as unknown as { withRegionAdmin: <T>(where: unknown, fn: (s: { query: (q: string, p?: unknown[]) => Promise<{ rows: Array<Record<string, unknown>> }> }) => Promise<T>) => Promise<T> }
  return router.withRegionAdmin({ region: EU, cell: 'main' }, async (s) => (await s.query(sql, params)).rows)
}

async function insert(d: Domicile, tenant: string): Promise<Written> {
  const p = plaintexts(tenant)
  await d.withTenant(tenant, (s) => s.table('customers').insert({ id: p.id, name: 'n', email: p.email, tax_id: p.taxId }))
  const w = { tenant, ...p }
  written.push(w)
  figures.acknowledged++
  return w
}

async function reveal(d: Domicile, w: Written): Promise<string> {
  return d.withTenant(w.tenant, async (s) => {
    const row = await s.table('customers').get(w.id)
    assert.ok(row, `row ${w.id} is there`)
    return s.reveal<string>(row.tax_id, { purpose: 'chaos key-faults' })
  })
}

/** Runs `f`, returns its error (the test fails if it succeeds) and its wall time. */
async function failing(what: string, f: () => Promise<unknown>): Promise<{ e: DomicileError; ms: number }> {
  const t0 = performance.now()
  try {
    await f()
  } catch (e) {
    const ms = performance.now() - t0
    leaks.error(what, e)
    assert.ok(isDomicileError(e), `${what}: a DomicileError, got ${String(e)}`)
    figures.maxCallMs = Math.max(figures.maxCallMs, ms)
    return { e, ms }
  }
  assert.fail(`${what}: expected a failure`)
}

/** Polls `f` until it succeeds; returns how long that took. Fails after `deadlineMs`. */
async function until(what: string, deadlineMs: number, f: () => Promise<unknown>): Promise<number> {
  const t0 = Date.now()
  for (;;) {
    try {
        await f()
        return Date.now() - t0
      } catch (e) {
        leaks.error(what, e)
        assert.ok(Date.now() - t0 < deadlineMs, `${what}: not back within ${deadlineMs} ms (last: ${String((e as Error).message)})`)
        await new Promise((r) => setTimeout(r, 100))
      }
    }
  }

  const sleepUntil = async (t: number): Promise<void> => {
    const ms = t - Date.now()
    if (ms > 0) await new Promise((r) => setTimeout(r, ms))
  }

  describe('chaos: key-service faults', () => {
    let kp: KeyProxyDir
    let proxy: KeyProxyProcess
    let keyId: string
    let fx: DomicileFixture
    let d: Domicile
    const fp: Record<'kill' | 'slow' | 'err', FaultProxy> = {} as never
    let token: SoftHsmToken | undefined
    /** When adding kf-kill returned: the keys it created are cached until at most this + TTL_MS. */
    let killTenantAddedAt = 0

    before(async () => {
      if (hsmSkip === false) {
        // Before the PKCS#11 library is loaded in this process (SoftHSM reads SOFTHSM2_CONF then).
        token = await createSoftHsmToken({ label: `chaos-${randomBytes(3).toString('hex')}`, pin: `pin-${randomBytes(4).toString('hex')}`, soPin: `so-${randomBytes(4).toString('hex')}` })
        process.env.DOMICILE_CHAOS_HSM_PIN = token.pin
        leaks.keyBytes('HSM user pin', token.pin)
      }
      kp = await initKeyProxyDir()
      leaks.keyBytes('xks secret access key', kp.credentials.secretAccessKey)
      proxy = await startKeyProxyProcess({ dir: kp.dir, uriPrefix: '/xks', insecureHttp: true })
      keyId = await createKeyViaCli(kp.dir)
      for (const k of ['kill', 'slow', 'err'] as const) fp[k] = await startFaultProxy({ upstream: proxy.url, rng: rng.fork(`proxy-${k}`) })
      const xks = (k: keyof typeof fp) => ({ kind: 'xks', endpoint: fp[k].url, uriPrefix: '/xks', credentialsFile: proxy.credentialsFile, allowInsecureHttp: true, timeoutMs: TIMEOUT_MS })
      fx = await createDomicileFixture({
        regions: [EU],
        providers: {
          'xks-kill': xks('kill'), 'xks-slow': xks('slow'), 'xks-err': xks('err'),
          ...(token ? { hsm: { kind: 'pkcs11', library: token.library, tokenLabel: token.label, pinEnv: 'DOMICILE_CHAOS_HSM_PIN' } } : {}),
        },
        keys: { cacheTtlMs: { hyok: TTL_MS } },
      })
      d = fx.domicile
      await fx.addTenant('kf-kill', { custody: 'hyok', provider: 'xks-kill', keyId })
      killTenantAddedAt = Date.now()
      await fx.addTenant('kf-slow', { custody: 'hyok', provider: 'xks-slow', keyId, cacheTtlMs: 0 })
      await fx.addTenant('kf-err', { custody: 'hyok', provider: 'xks-err', keyId, cacheTtlMs: 0 })
      if (token) await fx.addTenant('kf-hsm', { custody: 'kms', provider: 'hsm', cacheTtlMs: HSM_TTL_MS })
    })

    after(async () => {
      try {
        if (d) {
          // Invariant: every acknowledged write is in the store exactly once, under its tenant, sealed.
          const rows = await storeRows(d, 'SELECT tenant_id, id, email, tax_id FROM customers')
          for (const w of written) {
            const found = rows.filter((r) => r.id === w.id)
            assert.equal(found.length, 1, `acknowledged write ${w.id} is stored exactly once`)
            const r = found[0]!
            assert.equal(r.tenant_id, w.tenant, `${w.id} belongs to ${w.tenant}`)
            for (const [col, plain] of [['email', w.email], ['tax_id', w.taxId]] as const) {
              const v = r[col]
              assert.ok(v instanceof Uint8Array && v[0] === 0x01, `${w.id}.${col} holds a sealed value`)
              assert.equal(Buffer.from(v).indexOf(Buffer.from(plain)), -1, `${w.id}.${col} holds no plaintext`)
            }
          }
          leaks.text('store rows', JSON.stringify(rows.map((r) => ({ ...r, email: Buffer.from(r.email as Uint8Array).toString('hex'), tax_id: Buffer.from(r.tax_id as Uint8Array).toString('hex') }))))
          const audit = await storeRows(d, 'SELECT tenant_id, type, outcome, actor, detail::text AS detail FROM domicile_audit')
          leaks.text('region audit', JSON.stringify(audit))
          const control = await internalsOf(d).controlPlane.withSession(async (s) => (await s.query('SELECT tenant_id, type, outcome, actor, detail::text AS detail FROM domicile_control_audit')).rows, { role: 'owner' })
          leaks.text('control audit', JSON.stringify(control))
        }
        leaks.text('keyproxy stderr', proxy?.stderrTail() ?? '')
        leaks.stop()
        const found = leaks.findings()
        recordFigures({
          scenario: 'key-faults',
          title: 'Key-service faults: HYOK proxy killed, slowed, answering errors; PKCS#11 token removed',
          faultsInjected: figures.faults, writesAcknowledged: figures.acknowledged, writesVerified: figures.verified, leaksFound: found.length,
          extra: {
            seed: rng.seed, unavailableErrors: figures.unavailable, maxFailedCallMs: Math.round(figures.maxCallMs), deadlineMs: TIMEOUT_MS,
            requestsToDeadServiceIn13Calls: figures.requestsToDeadService, recoveryMs: figures.recoveryMs, hsmRecoveryMs: figures.hsmRecoveryMs,
          },
        })
        assert.deepEqual(found, [], 'no plaintext or key bytes in anything the process emitted')
    } finally {
      leaks.stop()
      await fx?.close()
      for (const p of Object.values(fp)) await p?.close()
      await proxy?.kill()
      await kp?.cleanup()
      await token?.cleanup()
    }
  })

  test('HYOK proxy killed: cached keys serve until the TTL; then ERR_KEY_PROVIDER_UNAVAILABLE within the deadline; the breaker stops the requests; back by itself after a restart', async () => {
    // The keys adding the tenant created are cached from then: let that entry expire, so the keys
    // are loaded again below and their TTL runs from t0 (otherwise, on a slow machine, it can run
    // out inside the "served from cache" window and the test would blame the cache).
    await sleepUntil(killTenantAddedAt + TTL_MS + 50)
    const t0 = Date.now()
    const mine: Written[] = []
    for (let i = 0; i < 4; i++) mine.push(await insert(d, 'kf-kill'))
    assert.equal(await reveal(d, mine[0]!), mine[0]!.taxId)
    const loadedBy = Date.now() // the tenant's data and index keys were unwrapped/created in [t0, loadedBy]

    await proxy.kill()
    figures.faults++
    try {
    const base = fp.kill.requests
    // Within the TTL: reveals, finds and inserts are served from the cached keys.
    let served = 0
    while (Date.now() < t0 + TTL_MS - 700 && served < 6) {
      const w = rng.pick(mine)
      assert.equal(await reveal(d, w), w.taxId)
      const found = await d.withTenant('kf-kill', (s) => s.table('customers').find({ email: w.email.toUpperCase() }))
      assert.deepEqual(found.map((r) => r.id), [w.id])
      mine.push(await insert(d, 'kf-kill'))
      served++
    }
    assert.ok(served >= 1, 'at least one round ran inside the TTL (the machine is very slow otherwise)')
    assert.equal(fp.kill.requests - base, 0, 'no request reached the key service while cached keys served')

    // After the TTL: typed errors, each within the deadline; the breaker opens after its threshold.
    await sleepUntil(loadedBy + TTL_MS + 100)
    const before = fp.kill.requests
    const errs: Array<{ e: DomicileError; ms: number }> = []
    for (let i = 0; i < 12; i++) {
      const w = rng.pick(mine)
      errs.push(await failing('reveal after TTL, proxy dead', () => reveal(d, w)))
    }
    const p = plaintexts('kf-kill')
    errs.push(await failing('insert after TTL, proxy dead', () => d.withTenant('kf-kill', (s) => s.table('customers').insert({ id: p.id, name: 'n', email: p.email, tax_id: p.taxId }))))
    for (const { e, ms } of errs) {
      assert.equal(e.code, 'ERR_KEY_PROVIDER_UNAVAILABLE', e.message)
      assert.ok(ms <= TIMEOUT_MS + SLACK_MS, `a call took ${ms.toFixed(0)} ms (deadline ${TIMEOUT_MS} ms)`)
      figures.unavailable++
    }
    const reached = fp.kill.requests - before
    figures.requestsToDeadService = reached
    // One call may reach the service twice (a keep-alive socket found dead is retried once).
    assert.ok(reached <= 2 * BREAKER_THRESHOLD, `${reached} requests reached the dead key service for ${errs.length} calls`)
    assert.ok(errs.slice(BREAKER_THRESHOLD).every(({ e }) => /circuit open/.test(e.message)), 'calls after the threshold fail fast (circuit open)')
    assert.equal((await storeRows(d, 'SELECT count(*)::int AS n FROM customers WHERE id = $1', [p.id]))[0]!.n, 0, 'the failed insert wrote nothing')

    } finally {
      // The key service comes back (a new process, a new port), also when a check above failed, so
      // the next scenarios do not fail for this one.
      proxy = await startKeyProxyProcess({ dir: kp.dir, uriPrefix: '/xks', insecureHttp: true })
      fp.kill.setUpstream(proxy.url)
      fp.slow.setUpstream(proxy.url)
      fp.err.setUpstream(proxy.url)
    }
    // Service resumes without intervention.
    const w = mine[0]!
    figures.recoveryMs = await until('recovery after the proxy restart', BREAKER_COOLDOWN_MS + 5000, async () => assert.equal(await reveal(d, w), w.taxId))
    for (const m of mine) {
      assert.equal(await reveal(d, m), m.taxId)
      figures.verified++
    }
  })

  test('HYOK proxy slowed past its deadline: each call ends at the deadline, the breaker stops waiting after its threshold, back when the proxy is fast again', async () => {
    const mine: Written[] = []
    for (let i = 0; i < 3; i++) mine.push(await insert(d, 'kf-slow'))
    fp.slow.setMode({ kind: 'delay', ms: TIMEOUT_MS * 4 })
    const before = fp.slow.requests
    const errs: Array<{ e: DomicileError; ms: number }> = []
    for (let i = 0; i < BREAKER_THRESHOLD + 4; i++) errs.push(await failing('reveal, proxy slow', () => reveal(d, rng.pick(mine))))
    figures.faults += fp.slow.requests - before
    for (const [i, { e, ms }] of errs.entries()) {
      assert.equal(e.code, 'ERR_KEY_PROVIDER_UNAVAILABLE', e.message)
      assert.ok(ms <= TIMEOUT_MS + SLACK_MS, `call ${i} took ${ms.toFixed(0)} ms (deadline ${TIMEOUT_MS} ms)`)
      if (i < BREAKER_THRESHOLD) assert.ok(ms >= TIMEOUT_MS * 0.8, `call ${i} waited for its deadline (${ms.toFixed(0)} ms)`)
      else assert.match(e.message, /circuit open/, `call ${i} failed fast`)
      figures.unavailable++
    }
    assert.ok(fp.slow.requests - before <= BREAKER_THRESHOLD, `${fp.slow.requests - before} requests reached the slow service`)
    // A write while the key service is slow fails and leaves nothing.
    const p = plaintexts('kf-slow')
    const { e } = await failing('insert, proxy slow', () => d.withTenant('kf-slow', (s) => s.table('customers').insert({ id: p.id, name: 'n', email: p.email, tax_id: p.taxId })))
    assert.equal(e.code, 'ERR_KEY_PROVIDER_UNAVAILABLE')
    assert.equal((await storeRows(d, 'SELECT count(*)::int AS n FROM customers WHERE id = $1', [p.id]))[0]!.n, 0, 'the failed insert wrote nothing')

    fp.slow.setMode({ kind: 'pass' })
    await until('recovery after the proxy is fast again', BREAKER_COOLDOWN_MS + 5000, async () => assert.equal(await reveal(d, mine[0]!), mine[0]!.taxId))
    for (const m of mine) {
      assert.equal(await reveal(d, m), m.taxId)
      figures.verified++
    }
  })

  test('HYOK proxy answering errors, garbage, oversized bodies, closed connections: typed errors within the deadline, and the next good answer serves again', async () => {
    const mine: Written[] = []
    for (let i = 0; i < 2; i++) mine.push(await insert(d, 'kf-err'))
    const xksError = (status: number, errorName: string) => ({ kind: 'status' as const, status, body: JSON.stringify({ errorName, errorMessage: 'chaos' }) })
    const modes = [
      xksError(500, 'InternalException'),
      xksError(503, 'ThrottlingException'),
      xksError(500, 'DependencyTimeoutException'),
      { kind: 'status' as const, status: 500, body: '<html>Internal Server Error</html>', contentType: 'text/html' },
      { kind: 'status' as const, status: 502, body: '' },
      { kind: 'garbage' as const, bytes: 512 },
      { kind: 'oversized' as const, bytes: 300 * 1024 },
      { kind: 'close' as const },
      { kind: 'hang' as const },
    ]
    for (const mode of modes) {
      fp.err.setMode(mode)
      const before = fp.err.requests
      const { e, ms } = await failing(`reveal, proxy ${mode.kind}`, () => reveal(d, rng.pick(mine)))
      assert.equal(e.code, 'ERR_KEY_PROVIDER_UNAVAILABLE', `${JSON.stringify(mode).slice(0, 80)}: ${e.message}`)
      assert.ok(ms <= TIMEOUT_MS + SLACK_MS, `${mode.kind}: ${ms.toFixed(0)} ms`)
      assert.ok(fp.err.requests > before, `${mode.kind}: the request reached the proxy`)
      figures.faults++
      figures.unavailable++
      fp.err.setMode({ kind: 'pass' })
      const w = rng.pick(mine)
      assert.equal(await reveal(d, w), w.taxId, `${mode.kind}: the next good answer serves (one failure does not open the breaker)`)
    }

    // An answer is not an outage: a disabled key (InvalidStateException) is ERR_KEY_REVOKED every time,
    // and the breaker keeps asking (the customer may enable the key again at any moment).
    fp.err.setMode(xksError(400, 'InvalidStateException'))
    const before = fp.err.requests
    for (let i = 0; i < BREAKER_THRESHOLD + 2; i++) {
      const { e } = await failing('reveal, key disabled at the proxy', () => reveal(d, rng.pick(mine)))
      assert.equal(e.code, 'ERR_KEY_REVOKED', e.message)
      figures.faults++
    }
    assert.equal(fp.err.requests - before, BREAKER_THRESHOLD + 2, 'every call asked the key service (no breaker on answers)')
    fp.err.setMode({ kind: 'pass' })
    for (const m of mine) {
      assert.equal(await reveal(d, m), m.taxId)
      figures.verified++
    }
  })

  describe('PKCS#11 token removed', { skip: hsmSkip }, () => {
    let tokenDir = ''
    let parked = ''
    const mine: Written[] = []
    let loadedBy = 0

    test('cached keys keep serving while the token is gone', async () => {
      const t0 = Date.now()
      for (let i = 0; i < 3; i++) mine.push(await insert(d, 'kf-hsm'))
      loadedBy = Date.now()
      const tokens = join(token!.dir, 'tokens')
      const [sub] = readdirSync(tokens)
      tokenDir = join(tokens, sub!)
      parked = join(token!.dir, 'parked')
      renameSync(tokenDir, parked)
      figures.faults++
      let served = 0
      while (Date.now() < t0 + HSM_TTL_MS - 500 && served < 4) {
        const w = rng.pick(mine)
        assert.equal(await reveal(d, w), w.taxId)
        served++
      }
      assert.ok(served >= 1, 'at least one reveal ran inside the TTL')
    })

    test('after the TTL: ERR_KEY_PROVIDER_UNAVAILABLE within the deadline; back by itself when the token returns', async () => {
      try {
        await sleepUntil(loadedBy + HSM_TTL_MS + 100)
        for (let i = 0; i < 3; i++) {
          const { e, ms } = await failing('reveal, token removed', () => reveal(d, rng.pick(mine)))
          assert.ok(ms <= 2000 + SLACK_MS, `${ms.toFixed(0)} ms`)
          assert.equal(e.code, 'ERR_KEY_PROVIDER_UNAVAILABLE', `a removed token is an outage, not a missing key: ${e.message}`)
        }
      } finally {
        renameSync(parked, tokenDir)
      }
      figures.hsmRecoveryMs = await until('recovery after the token returns', BREAKER_COOLDOWN_MS + 5000, async () => assert.equal(await reveal(d, mine[0]!), mine[0]!.taxId))
      for (const m of mine) {
        assert.equal(await reveal(d, m), m.taxId)
        figures.verified++
      }
    })
  })
})
