/**
 * Kill-switch timing across processes (key-custody issue): two reveal workers (separate Node
 * processes, test/support/reveal-worker.ts) keep revealing each tenant's sealed tax_id with HOT
 * data-key caches while this process pulls a kill switch, and we measure time-to-dark per worker.
 *
 * - Our side (operator revoke): reaches every process through the control plane; bound 1 s.
 *   Measured with LISTEN/NOTIFY push; with push withheld (directory change written by SQL without
 *   NOTIFY) so only change-log polling can deliver it, also when its change-log entry commits after
 *   a later one; after the processes' LISTEN connections were killed; and inside a withTenant
 *   scope opened before the revoke that keeps revealing (its key hot in the scope).
 * - Customer side (BYOK material deleted, HYOK key disabled at their proxy, their proxy killed):
 *   no message reaches us, so it takes effect when the cached data key expires; bound cache TTL
 *   plus a stated slack.
 *
 * Everything is real: PostgreSQL 15 clusters (two regions + control plane), the local keystore
 * directory shared by all processes, the reference XKS proxy as a child process, the keyproxy CLI.
 */
import { after, before, describe, test } from 'node:test'
import { strict as assert } from 'node:assert'
import { spawn, type ChildProcess } from 'node:child_process'
import { EventEmitter } from 'node:events'
import { constants, publicEncrypt, randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createDomicile, type Domicile, type StoreSession } from '../../src/index.js'
import { EXAMPLE_SCHEMA } from '../../src/cli/templates.js'
import { createLocalKeyProvider, type LocalKeyProvider } from '../../src/keys/providers/local/index.js'
import { postgresUnavailable, startPgCluster, type PgCluster } from '../support/pg-cluster.js'
import {
  REPO_ROOT, createKeyViaCli, initKeyProxyDir, runKeyproxyCliOk, startKeyProxyProcess,
  type KeyProxyDir, type KeyProxyProcess,
} from '../support/keyproxy-process.js'
import { internalsOf } from '../../src/domicile-internals.js'

/** Our side of the kill switch must reach every process within this bound (the issue's 1 s). */
const OPERATOR_BOUND_MS = 1000
/** Short data-key TTLs for BYOK/HYOK so the customer-side path is measurable quickly. */
const CACHE_TTL_MS = 1500
/** Stated slack on top of the TTL: one reveal round (20 ms pause + a transaction) plus scheduling on 2 loaded cores. */
const TTL_SLACK_MS = 500
const WORKER_SCRIPT = join(REPO_ROOT, 'test', 'support', 'reveal-worker.ts')
const TENANTS = ['t-kms', 't-byok', 't-hyok', 't-control'] as const

interface WorkerEvent {
  readonly event: 'ready' | 'dark' | 'recovered' | 'changed' | 'fatal' | 'scope-open'
  readonly tenant?: string
  readonly code?: string
  readonly at?: number
  readonly reveals?: number
  readonly message?: string
}

/** A reveal worker child process and the JSON lines it printed. */
class RevealWorker {
  readonly events: WorkerEvent[] = []
  readonly #bus = new EventEmitter()
  readonly #stderr: string[] = []
  readonly #child: ChildProcess
  readonly #exited: Promise<number | null>

  constructor(readonly name: string, configPath: string, tenants: readonly string[]) {
    this.#child = spawn(process.execPath, ['--import', 'tsx', WORKER_SCRIPT, configPath, ...tenants], {
      cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'],
    })
    this.#exited = new Promise((r) => this.#child.once('exit', (code) => {
      this.#bus.emit('exit')
      r(code)
    }))
    let buf = ''
    this.#child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buf += d
      for (let nl = buf.indexOf('\n'); nl !== -1; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        try {
          this.events.push(JSON.parse(line) as WorkerEvent)
        } catch {
          this.#stderr.push(`(stdout) ${line}\n`)
          continue
        }
        this.#bus.emit('event')
      }
    })
    this.#child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.#stderr.push(d)
      if (this.#stderr.length > 40) this.#stderr.shift()
    })
  }

  get running(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null
  }

  /** Index of the next event; pass it as `from` to wait only for what happens afterwards. */
  mark(): number {
    return this.events.length
  }

  /** The first event at index >= from matching `pred`, waiting up to `timeoutMs` for it. */
  waitFor(pred: (e: WorkerEvent) => boolean, from: number, timeoutMs: number, what: string): Promise<WorkerEvent> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const hit = this.events.slice(from).find(pred)
        if (hit === undefined) return false
        done()
        resolve(hit)
        return true
      }
      const onExit = (): void => {
        if (check()) return
        done()
        reject(new Error(`${this.name} exited while waiting for ${what}: ${this.#diag()}`))
      }
      const timer = setTimeout(() => {
        if (check()) return
        done()
        reject(new Error(`${this.name}: no ${what} within ${timeoutMs} ms: ${this.#diag()}`))
      }, timeoutMs)
      const done = (): void => {
        clearTimeout(timer)
        this.#bus.off('event', check)
        this.#bus.off('exit', onExit)
      }
      this.#bus.on('event', check)
      this.#bus.on('exit', onExit)
      if (!check() && !this.running) onExit()
    })
  }

  #diag(): string {
    // (Node's MaxListenersExceededWarning lines are dropped here: noise, reported separately.)
    const err = this.#stderr.join('').split('\n').filter((l) => !/MaxListenersExceededWarning|--trace-warnings/.test(l)).join('\n')
    return `events=${JSON.stringify(this.events.slice(-8))} stderr=${err.slice(-2000)}`
  }

  /** Sends one command line to the worker (see test/support/reveal-worker.ts). */
  send(line: string): void {
    this.#child.stdin!.write(`${line}\n`)
  }

  /** Closes stdin (the worker's stop signal) and waits for exit; SIGKILL after 5 s. */
  async stop(): Promise<number | null> {
    if (!this.running) return this.#child.exitCode
    this.#child.stdin!.end()
    const killer = setTimeout(() => this.#child.kill('SIGKILL'), 5000)
    try {
      return await this.#exited
    } finally {
      clearTimeout(killer)
    }
  }
}

function oaep(pem: string, material: Uint8Array): Uint8Array {
  return new Uint8Array(publicEncrypt({ key: pem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, material))
}

interface Measured {
  readonly path: string
  readonly bound: string
  /** Per worker; NaN = no such event within `waitedMs`. */
  readonly ms: readonly number[]
  readonly waitedMs?: number
}

const missing = postgresUnavailable()

describe('kill switch: time-to-dark in every running process', { skip: missing ?? false }, () => {
  let dir: string
  let configPath: string
  const clusters: PgCluster[] = []
  let proxyDir: KeyProxyDir | undefined
  let proxy: KeyProxyProcess | undefined
  let domicile: Domicile | undefined
  let local: LocalKeyProvider | undefined
  const workers: RevealWorker[] = []
  const results: Measured[] = []
  const material = randomBytes(32)
  let byokKeyId = ''
  let hyokKeyId = ''

  const d = (): Domicile => {
    assert.ok(domicile, 'setup did not complete')
    return domicile
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'domicile-revocation-'))
    clusters.push(await startPgCluster('us'))
    clusters.push(await startPgCluster('eu'))
    clusters.push(await startPgCluster('cp'))
    const [us, eu, cp] = clusters as [PgCluster, PgCluster, PgCluster]

    proxyDir = await initKeyProxyDir()
    proxy = await startKeyProxyProcess({ dir: proxyDir.dir, uriPrefix: '/xks' })
    hyokKeyId = await createKeyViaCli(proxyDir.dir, ['--label', 't-hyok'])
    writeFileSync(join(dir, 'xks-credentials.json'), JSON.stringify(proxy.credentials), { mode: 0o600 })

    writeFileSync(join(dir, 'domicile.schema.mjs'), EXAMPLE_SCHEMA)
    configPath = join(dir, 'domicile.config.json')
    writeFileSync(configPath, JSON.stringify({
      regions: {
        'us-east-1': { driver: 'postgres', url: us.database('region'), jurisdiction: 'US' },
        'eu-west-1': { driver: 'postgres', url: eu.database('region'), jurisdiction: 'EU' },
      },
      controlPlane: { driver: 'postgres', url: cp.database('control') },
      schema: './domicile.schema.mjs',
      keys: {
        // The local provider's keystore and root.key, shared by every process through the directory.
        dir: './keys',
        providers: {
          'customer-xks': {
            kind: 'xks', endpoint: proxy.url, uriPrefix: proxy.uriPrefix, credentialsFile: './xks-credentials.json', timeoutMs: 2000,
            ...(proxy.caFile !== undefined ? { caFile: proxy.caFile } : {}), ...(proxy.url.startsWith('http:') ? { allowInsecureHttp: true } : {}),
          },
        },
        defaults: { hyok: 'customer-xks' },
        // kms keeps its 300 s default: only the revoke itself can make it go dark in time.
        cacheTtlMs: { byok: CACHE_TTL_MS, hyok: CACHE_TTL_MS },
      },
      // directoryPollMs: default (500 ms)
    }, null, 2))

    domicile = await createDomicile({ configPath })
    await domicile.migrate()

    const kms = await domicile.keys.provision('t-kms', { custody: 'kms' })
    await domicile.addTenant('t-kms', { region: 'eu-west-1', key: kms.key, keyState: kms.keyState })

    const byok = await domicile.keys.provision('t-byok', { custody: 'byok' })
    assert.equal(byok.keyState, 'pending-import')
    byokKeyId = byok.key.keyId
    await domicile.addTenant('t-byok', { region: 'eu-west-1', key: byok.key, keyState: byok.keyState })
    const job = await domicile.keys.createImportJob('t-byok')
    const imported = await domicile.keys.importKeyMaterial('t-byok', oaep(job.wrappingPublicKeyPem, material), job.importToken)
    assert.equal(imported.keyState, 'enabled')

    const hyok = await domicile.keys.provision('t-hyok', { custody: 'hyok', keyId: hyokKeyId })
    assert.equal(hyok.key.provider, 'customer-xks')
    await domicile.addTenant('t-hyok', { region: 'eu-west-1', key: hyok.key, keyState: hyok.keyState })

    const control = await domicile.keys.provision('t-control', { custody: 'kms' })
    await domicile.addTenant('t-control', { region: 'us-east-1', key: control.key, keyState: control.keyState })

    for (const t of TENANTS) {
      await domicile.withTenant(t, (s) => s.table('customers').insert({ id: 'c1', name: `customer of ${t}`, tax_id: `TAX-${t}-0042` }))
    }
    local = createLocalKeyProvider({ dir: join(dir, 'keys') })

    workers.push(new RevealWorker('worker-1', configPath, TENANTS), new RevealWorker('worker-2', configPath, TENANTS))
    await Promise.all(workers.map((w) => w.waitFor((e) => e.event === 'ready' || e.event === 'fatal', 0, 30_000, 'ready line')
      .then((e) => assert.equal(e.event, 'ready', `${w.name}: ${e.message ?? ''}`))))
  })

  after(async () => {
    const codes = await Promise.all(workers.map((w) => w.stop().catch(() => null)))
    await domicile?.close().catch(() => undefined)
    await local?.close().catch(() => undefined)
    await proxy?.stop().catch(() => undefined)
    await proxyDir?.cleanup().catch(() => undefined)
    for (const c of clusters) {
      try {
        c.destroy()
      } catch {
        // best effort
      }
    }
    if (dir) rmSync(dir, { recursive: true, force: true })
    material.fill(0)
    if (results.length > 0) {
      const lines = ['', 'kill switch: time-to-dark (ms after the revocation)', `${'path'.padEnd(44)} ${'bound'.padEnd(16)} worker-1  worker-2`]
      for (const r of results) lines.push(`${r.path.padEnd(44)} ${r.bound.padEnd(16)} ${r.ms.map((m) => (Number.isNaN(m) ? `>${r.waitedMs ?? '?'}` : String(m)).padStart(8)).join('  ')}`)
      console.log(lines.join('\n'))
    }
    assert.deepEqual(codes, workers.map(() => 0), 'reveal workers exit 0 when their stdin closes')
  })

  /**
   * Runs `act` (which returns t0, the moment the revocation took effect or just before), waits
   * for every worker's first failure of `tenant`, checks its code and bound, and records it.
   */
  async function measureDark(path: string, tenant: string, code: string, boundMs: number, boundLabel: string, act: () => Promise<number>, alsoDark: readonly string[] = []): Promise<number[]> {
    const marks = workers.map((w) => w.mark())
    const t0 = await act()
    const settled = await Promise.allSettled(workers.map((w, i) =>
      w.waitFor((e) => e.event === 'dark' && e.tenant === tenant, marks[i]!, boundMs + 5000, `dark event for ${tenant}`)))
    results.push({ path, bound: boundLabel, ms: settled.map((r) => r.status === 'fulfilled' ? r.value.at! - t0 : Number.NaN), waitedMs: boundMs + 5000 })
    const events = settled.map((r) => {
      if (r.status === 'rejected') throw r.reason
      return r.value
    })
    const ms = events.map((e) => e.at! - t0)
    events.forEach((e, i) => {
      assert.equal(e.code, code, `${workers[i]!.name}: ${tenant} failed with ${e.code}, expected ${code}`)
      assert.ok(ms[i]! >= 0, `${workers[i]!.name}: ${tenant} went dark ${-ms[i]!} ms BEFORE the revocation`)
      assert.ok(ms[i]! <= boundMs, `${workers[i]!.name}: ${tenant} went dark after ${ms[i]} ms; bound ${boundLabel}`)
    })
    // Pulling one tenant's switch leaves every other tenant readable.
    workers.forEach((w, i) => {
      const others = w.events.slice(marks[i]!).filter((e) => e.event === 'dark' && e.tenant !== tenant && !alsoDark.includes(e.tenant ?? ''))
      assert.deepEqual(others, [], `${w.name}: other tenants went dark too`)
    })
    return ms
  }

  /** Waits until every worker reveals `tenant` again after `act` (the restore; returns its t0). Informational. */
  async function measureRecovery(path: string, tenant: string, act: () => Promise<number>): Promise<void> {
    const marks = workers.map((w) => w.mark())
    const t0 = await act()
    const events = await Promise.all(workers.map((w, i) =>
      w.waitFor((e) => e.event === 'recovered' && e.tenant === tenant, marks[i]!, 5000, `recovery of ${tenant}`)))
    results.push({ path, bound: '(recovery)', ms: events.map((e) => e.at! - t0) })
  }

  /** When the proxy's keyproxy CLI last wrote the key's state (its updatedAt), checked against the run. */
  async function proxyKeyCli(cmd: 'disable-key' | 'enable-key'): Promise<number> {
    const before = Date.now()
    await runKeyproxyCliOk([cmd, hyokKeyId, '--dir', proxyDir!.dir])
    const done = Date.now()
    const t0 = Date.parse((JSON.parse(readFileSync(join(proxyDir!.dir, 'keys', `${hyokKeyId}.json`), 'utf8')) as { updatedAt: string }).updatedAt)
    assert.ok(t0 >= before - 5 && t0 <= done, `the key file was updated by this ${cmd} run`)
    return t0
  }

  test('operator revoke (LISTEN/NOTIFY push): every process fails with ERR_KEY_REVOKED within 1 s', async () => {
    await measureDark('operator revoke, push', 't-kms', 'ERR_KEY_REVOKED', OPERATOR_BOUND_MS, `<= ${OPERATOR_BOUND_MS}`, async () => {
      const t0 = Date.now()
      await d().keys.revoke('t-kms', 'kill-switch-test')
      return t0
    })
    await measureRecovery('operator restore, push', 't-kms', async () => {
      const t0 = Date.now()
      await d().keys.restore('t-kms', 'kill-switch-test')
      return t0
    })
  })

  test('operator revoke reaches a scope opened before it that keeps revealing: ERR_KEY_REVOKED within 1 s', async () => {
    // Each worker opens one withTenant scope for t-kms (its data key hot) and keeps revealing in it.
    const marks = workers.map((w) => w.mark())
    for (const w of workers) w.send('scope t-kms')
    await Promise.all(workers.map((w, i) => w.waitFor((e) => e.event === 'scope-open' && e.tenant === 't-kms', marks[i]!, 10_000, 'the open scope')))
    const beforeRevoke = workers.map((w) => w.mark())
    await measureDark('operator revoke, scope opened before it', 't-kms@open-scope', 'ERR_KEY_REVOKED', OPERATOR_BOUND_MS, `<= ${OPERATOR_BOUND_MS}`, async () => {
      const t0 = Date.now()
      await d().keys.revoke('t-kms', 'kill-switch-test')
      return t0
    }, ['t-kms'])
    // The workers' own reveal loops for t-kms go dark as well; restore only once they have.
    await Promise.all(workers.map((w, i) => w.waitFor((e) => e.event === 'dark' && e.tenant === 't-kms', beforeRevoke[i]!, 5000, 'the reveal loop of t-kms going dark')))
    await measureRecovery('operator restore, push', 't-kms', async () => {
      const t0 = Date.now()
      await d().keys.restore('t-kms', 'kill-switch-test')
      return t0
    })
  })

  /** Writes a revoke exactly as TenantDirectory.update does, minus pg_notify: only pollers see it. */
  async function revokeSilently(s: StoreSession, tenant: string): Promise<void> {
    await s.query(`UPDATE domicile_tenants SET key_state = 'revoked', version = version + 1, updated_at = now() WHERE id = $1`, [tenant])
    await s.query('INSERT INTO domicile_directory_log (tenant_id, change) VALUES ($1, $2)', [tenant, 'key:revoke'])
  }

  test('operator revoke without NOTIFY (polling fallback): every process fails within 1 s', async () => {
    const cp = internalsOf(d()).controlPlane
    await measureDark('operator revoke, poll only', 't-kms', 'ERR_KEY_REVOKED', OPERATOR_BOUND_MS, `<= ${OPERATOR_BOUND_MS}`, async () => {
      const t0 = Date.now()
      await cp.withSession(async (s) => {
        await s.exec('BEGIN')
        await revokeSilently(s, 't-kms')
        await s.exec('COMMIT')
      })
      return t0
    })
    // This process learns of it by polling too; restore only once it has (restore is a no-op otherwise).
    const deadline = Date.now() + 5000
    while ((await d().getTenant('t-kms')).keyState !== 'revoked') {
      assert.ok(Date.now() < deadline, 'the test process never saw the polled revocation')
      await d().directory.poll()
    }
    await measureRecovery('operator restore, push', 't-kms', async () => {
      const t0 = Date.now()
      await d().keys.restore('t-kms', 'kill-switch-test')
      return t0
    })
  })

  test('polling fallback: a revoke whose change-log entry commits after a later entry still arrives within 1 s', async () => {
    // Two directory changes in flight at once (no NOTIFY): the revoke takes change-log seq N but
    // commits after a change with seq N+1 that every poller has already read. Fails while
    // TenantDirectory.poll advances its high-water mark past seqs whose transactions are still open
    // (a bigserial is assigned at INSERT, not at COMMIT): seq N is then never read by the poller.
    const cp = internalsOf(d()).controlPlane
    // An unrelated directory change (no NOTIFY), and every worker's poller reporting it.
    const touchControl = async (): Promise<number[]> => {
      const marks = workers.map((w) => w.mark())
      await cp.withSession((s) => s.query('INSERT INTO domicile_directory_log (tenant_id, change) VALUES ($1, $2)', ['t-control', 'touch']))
      await Promise.all(workers.map((w, i) =>
        w.waitFor((e) => e.event === 'changed' && e.tenant === 't-control', marks[i]!, 3000, 'the polled change of t-control')))
      return marks
    }
    try {
      // Flush: every poller has read the whole log so far (t-kms is then re-read, enabled, and cached).
      await touchControl()
      await measureDark('revoke, poll only, seq committed late', 't-kms', 'ERR_KEY_REVOKED', OPERATOR_BOUND_MS, `<= ${OPERATOR_BOUND_MS}`, () =>
        cp.withSession(async (a) => {
          await a.exec('BEGIN')
          try {
            await revokeSilently(a, 't-kms')
            // Seq N+1 commits first, and every poller reads it.
            const marks = await touchControl()
            /* Precondition: no worker saw the revoke before its commit (else the race is not set up). A
               late 'changed' of t-kms here is the previous test's restore NOTIFY arriving after its
               poll; it invalidates a cache entry, it does not reveal the uncommitted revoke. */
            workers.forEach((w, i) => assert.deepEqual(w.events.slice(marks[i]!).filter((e) => e.tenant === 't-kms' && e.event === 'dark'), [], `${w.name}: t-kms went dark before the commit`))
            const t0 = Date.now()
            await a.exec('COMMIT')
            return t0
          } catch (e) {
            await a.exec('ROLLBACK').catch(() => undefined)
            throw e
          }
        }))
    } finally {
      // Back to enabled with a regular (notified) directory update, whatever any cache believes.
      const marks = workers.map((w) => w.mark())
      await d().directory.update('t-kms', { keyState: 'enabled' }, 'key:restore')
      await Promise.all(workers.map((w, i) => {
        const last = w.events.slice(0, marks[i]).filter((e) => e.tenant === 't-kms' && (e.event === 'dark' || e.event === 'recovered')).at(-1)
        return last?.event === 'dark'
          ? w.waitFor((e) => e.event === 'recovered' && e.tenant === 't-kms', marks[i]!, 5000, 'recovery of t-kms')
          : undefined
      }))
    }
  })

  test('push connection lost (LISTEN backends terminated): an operator revoke still reaches every process within 1 s', async () => {
    const cp = internalsOf(d()).controlPlane
    const listening = async (): Promise<number> => Number((await cp.withSession((s) =>
      s.query<{ n: string }>(`SELECT count(*)::text AS n FROM pg_stat_activity WHERE query = 'LISTEN domicile_directory'`))).rows[0]!.n)
    assert.ok(await listening() >= workers.length, 'every worker listens for directory changes')
    await cp.withSession((s) => s.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'LISTEN domicile_directory'`))
    const deadline = Date.now() + 5000
    while (await listening() > 0) assert.ok(Date.now() < deadline, 'LISTEN backends did not go away')
    await measureDark('operator revoke, LISTEN killed', 't-kms', 'ERR_KEY_REVOKED', OPERATOR_BOUND_MS, `<= ${OPERATOR_BOUND_MS}`, async () => {
      const t0 = Date.now()
      await d().keys.revoke('t-kms', 'kill-switch-test')
      return t0
    })
    await measureRecovery('operator restore, LISTEN killed', 't-kms', async () => {
      const t0 = Date.now()
      await d().keys.restore('t-kms', 'kill-switch-test')
      return t0
    })
  })

  test(`customer deletes BYOK material: dark within the cache TTL (${CACHE_TTL_MS} ms) + ${TTL_SLACK_MS} ms`, async () => {
    await measureDark('BYOK material deleted', 't-byok', 'ERR_KEY_REVOKED', CACHE_TTL_MS + TTL_SLACK_MS, `<= TTL+${TTL_SLACK_MS}`, async () => {
      const t0 = Date.now()
      await local!.deleteKeyMaterial(byokKeyId)
      return t0
    })
    // Restore: the customer re-imports the same material.
    await measureRecovery('BYOK material re-imported', 't-byok', async () => {
      const job = await d().keys.createImportJob('t-byok')
      const t0 = Date.now()
      await d().keys.importKeyMaterial('t-byok', oaep(job.wrappingPublicKeyPem, material), job.importToken)
      return t0
    })
  })

  test(`customer disables the HYOK key at their proxy: dark within the cache TTL + ${TTL_SLACK_MS} ms`, async () => {
    // t0 = when the CLI wrote the disabled state, not when the CLI process started.
    await measureDark('HYOK key disabled at proxy', 't-hyok', 'ERR_KEY_REVOKED', CACHE_TTL_MS + TTL_SLACK_MS, `<= TTL+${TTL_SLACK_MS}`, () => proxyKeyCli('disable-key'))
    await measureRecovery('HYOK key enabled at proxy', 't-hyok', () => proxyKeyCli('enable-key'))
  })

  test(`customer's proxy unreachable: dark (ERR_KEY_PROVIDER_UNAVAILABLE) within the cache TTL + ${TTL_SLACK_MS} ms`, async () => {
    await measureDark('HYOK proxy killed', 't-hyok', 'ERR_KEY_PROVIDER_UNAVAILABLE', CACHE_TTL_MS + TTL_SLACK_MS, `<= TTL+${TTL_SLACK_MS}`, async () => {
      const t0 = Date.now()
      await proxy!.kill()
      return t0
    })
  })

  test('the control tenant was readable throughout, in every worker', () => {
    for (const w of workers) {
      assert.ok(w.running, `${w.name} is still running`)
      assert.deepEqual(w.events.filter((e) => e.tenant === 't-control' && (e.event === 'dark' || e.event === 'recovered')), [], `${w.name}: t-control`)
    }
  })
})
