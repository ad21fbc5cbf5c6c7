/**
 * Key-unwrap benchmark: data-key unwrap per key provider, cold (a provider call through the
 * RuntimeKeyProvider) and cached (the DataKeyCache hit path the keyring takes), all in one run.
 *
 * Targets (issue): cached unwrap costs under 1 µs median; report ops/s per provider (local,
 * PKCS#11 on SoftHSM2, XKS proxy over loopback) cold and cached, and the XKS loopback round trip
 * p50 / p99.
 *
 * Providers, all real:
 * - local: a temp keystore directory (the provider re-reads the key file on every call, by design);
 * - pkcs11: a fresh SoftHSM2 token (createSoftHsmToken), the KEK generated on the token;
 * - xks: the reference key proxy as a child process (`domicile keyproxy serve`, file keystore) on
 *   127.0.0.1, SigV4 on both ends; the key created through the keyproxy CLI.
 *
 * Method
 * - Per provider: create a KEK, wrap N data keys with the keyring's wrap context
 *   (tenant, region, key number, purpose 'data'), warm up, then:
 * - Cold: rounds; in each round every provider unwraps all N keys sequentially through its
 *   RuntimeKeyProvider (checks, deadline, breaker, no-op audit), the provider order rotated per
 *   round. Every call is timed on its own; ops/s = calls / total time (one call in flight).
 * - Cached: the N keys are loaded into a DataKeyCache under the ids the keyring uses. Timed in
 *   batches (BATCH peeks per batch, id rotating over the N keys); figure = median over batches of
 *   the batch average in ns/op. Rows: `cache.peek(id)` with a prepared id string (the target);
 *   the keyring's exact fast path (`peek` of an id string built per call, as Keyring#key does);
 *   `await cache.get(...)` on a hit; `await TenantKeys.withDataKey(n, use)` on a hit (the real Keyring, key state checked,
 *   whose transaction stub fails if the store is ever touched); and the empty loop as the floor.
 *   Also `peek` on a cache at its default capacity (10 000 entries).
 * - XKS raw round trip: the XKS provider without the runtime wrapper, encrypt (wrapKey) and
 *   decrypt (unwrapKey) interleaved, each call timed: one HTTP POST + SigV4 each way + AES-GCM at
 *   the proxy. Also GetHealthStatus (no key operation) as the HTTP + SigV4 floor.
 * - The XKS deadline is raised to 2 s (default 250 ms) so an outlier on this loaded 2-core machine
 *   does not abort the run; calls slower than 250 ms are counted and reported instead.
 *
 * Run: node --import tsx bench/key-unwrap.bench.ts   (BENCH_QUICK=1 for a short smoke run)
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { TenantRecord } from '../src/control-plane/tenant-directory.js'
import { DataKeyCache, DEFAULT_MAX_ENTRIES } from '../src/keys/data-key-cache.js'
import type { KeyProvider, WrapContext } from '../src/keys/key-provider.js'
import { Keyring } from '../src/keys/keyring.js'
import { createLocalKeyProvider } from '../src/keys/providers/local/index.js'
import { createPkcs11KeyProvider } from '../src/keys/providers/pkcs11/index.js'
import { createXksKeyProvider, type XksKeyProvider } from '../src/keys/providers/xks/index.js'
import { RuntimeKeyProvider } from '../src/keys/runtime-key-provider.js'
import type { TenantTransaction } from '../src/regions/router.js'
import { createKeyViaCli, initKeyProxyDir, startKeyProxyProcess } from '../test/support/keyproxy-process.js'
import { createSoftHsmToken, softHsmAvailable } from '../test/support/softhsm.js'
import { machineInfo, printTable, writeResults } from './lib/report.js'
import { median, quantileSorted, round, summarize, type Summary } from './lib/stats.js'
import { cleanupAll, onCleanup } from './lib/cleanup.js'

const HERE = dirname(fileURLToPath(import.meta.url))
const RESULTS = join(HERE, 'results', 'key-unwrap.json')
const QUICK = process.env.BENCH_QUICK === '1'
const T0 = Date.now()
const log = (msg: string) => console.log(`[${((Date.now() - T0) / 1000).toFixed(1)}s] ${msg}`)

const TARGET_CACHED_NS = 1000
const XKS_DEFAULT_DEADLINE_MS = 250
const PLAN = QUICK
  ? { keys: 64, coldRounds: 3, coldWarmup: 20, xksRounds: 3, xksBlock: 50, batch: 10_000, batches: 40, asyncBatches: 15 }
  : { keys: 400, coldRounds: 8, coldWarmup: 100, xksRounds: 10, xksBlock: 200, batch: 10_000, batches: 300, asyncBatches: 100 }

const TENANT = 'bench'
const REGION = 'eu-west-1'
const TTL_MS = 3_600_000
const ctxFor = (n: number): WrapContext => ({ tenantId: TENANT, region: REGION, dataKeyId: String(n), purpose: 'data' })
/** Keyring#cacheId, spelled out: tenant|region|purpose|number|provider|keyId. */
const cacheIdFor = (n: number, provider: string, keyId: string) => `${TENANT}|${REGION}|data|${n}|${provider}|${keyId}`

const nowNs = (): bigint => process.hrtime.bigint()
const usSince = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1000

// ---------------------------------------------------------------------------------------------
// Providers

interface Subject {
  readonly name: string
  readonly runtime: RuntimeKeyProvider
  readonly keyId: string
  readonly wrapped: Uint8Array[]
  /** Unwrapped once as a check; compared with each cold unwrap of the first round. */
  readonly plain: Buffer[]
}

async function makeSubject(name: string, inner: KeyProvider, keyId: string, runtimeOpts: { timeoutMs?: number } = {}): Promise<Subject> {
  const runtime = new RuntimeKeyProvider(inner, runtimeOpts)
  onCleanup(() => runtime.close())
  const wrapped: Uint8Array[] = []
  const plain: Buffer[] = []
  for (let n = 1; n <= PLAN.keys; n++) {
    const dk = randomBytes(32)
    const w = await runtime.wrapKey({ keyId, plaintextKey: new Uint8Array(dk), context: ctxFor(n) })
    wrapped.push(w.ciphertext)
    plain.push(dk)
  }
  return { name, runtime, keyId, wrapped, plain }
}

async function setupLocal(): Promise<Subject> {
  const dir = mkdtempSync(join(tmpdir(), 'domicile-bench-local-'))
  onCleanup(() => rmSync(dir, { recursive: true, force: true }))
  const local = createLocalKeyProvider({ name: 'local', dir })
  const { keyId } = await local.createKey({ label: 'bench', origin: 'generate' })
  return makeSubject('local', local, keyId)
}

async function setupPkcs11(): Promise<Subject | string> {
  const a = softHsmAvailable()
  if (!a.ok) return a.reason
  const pin = randomBytes(6).toString('hex')
  const token = await createSoftHsmToken({ label: `bench-${randomUUID().slice(0, 8)}`, pin, soPin: randomBytes(6).toString('hex') })
  onCleanup(() => token.cleanup())
  const hsm = createPkcs11KeyProvider({ name: 'hsm', library: token.library, tokenLabel: token.label, pin })
  const { keyId } = await hsm.createKey({ label: 'bench', origin: 'generate' })
  return makeSubject('pkcs11', hsm, keyId)
}

async function setupXks(): Promise<{ subject: Subject; raw: XksKeyProvider }> {
  const dir = await initKeyProxyDir()
  onCleanup(() => dir.cleanup())
  const proxy = await startKeyProxyProcess({ dir: dir.dir, uriPrefix: '/xks' })
  onCleanup(async () => {
    const code = await proxy.stop()
    if (code !== 0) console.error(`keyproxy exited with ${code}: ${proxy.stderrTail().slice(-500)}`)
  })
  const keyId = await createKeyViaCli(dir.dir)
  const opts = { ...proxy.providerOptions, timeoutMs: 2000 }
  const raw = createXksKeyProvider({ name: 'xks-raw', ...opts })
  onCleanup(() => raw.close())
  const subject = await makeSubject('xks', createXksKeyProvider({ name: 'xks', ...opts }), keyId, { timeoutMs: 2000 })
  return { subject, raw }
}

// ---------------------------------------------------------------------------------------------
// Cold unwrap

interface ColdResult extends Summary {
  /** Sequential throughput: calls / total time. */
  readonly seqOpsPerSec: number
  readonly p50PerRoundUs: number[]
  readonly over250ms: number
}

async function measureCold(subjects: readonly Subject[]): Promise<Record<string, ColdResult>> {
  const samples = new Map<string, number[]>(subjects.map((s) => [s.name, []]))
  const perRound = new Map<string, number[]>(subjects.map((s) => [s.name, []]))
  const unwrap = (s: Subject, i: number) => s.runtime.unwrapKey({ keyId: s.keyId, ciphertext: s.wrapped[i]!, context: ctxFor(i + 1) })
  for (const s of subjects) {
    for (let i = 0; i < PLAN.coldWarmup; i++) {
      const k = await unwrap(s, i % PLAN.keys)
      /* Precondition: the unwrap returns the data key that was wrapped. */
      if (!Buffer.from(k).equals(s.plain[i % PLAN.keys]!)) throw new Error(`${s.name}: unwrap returned a different key`)
    }
  }
  for (let r = 0; r < PLAN.coldRounds; r++) {
    for (let j = 0; j < subjects.length; j++) {
      const s = subjects[(r + j) % subjects.length]!
      const block: number[] = []
      for (let i = 0; i < PLAN.keys; i++) {
        const t0 = nowNs()
        const k = await unwrap(s, i)
        block.push(usSince(t0))
        if (k.length !== 32) throw new Error(`${s.name}: unwrap returned ${k.length} bytes`)
      }
      samples.get(s.name)!.push(...block)
      perRound.get(s.name)!.push(round(median(block)))
    }
    log(`cold round ${r + 1}/${PLAN.coldRounds}`)
  }
  const out: Record<string, ColdResult> = {}
  for (const s of subjects) {
    const xs = samples.get(s.name)!
    const total = xs.reduce((a, b) => a + b, 0)
    out[s.name] = { ...summarize(xs), seqOpsPerSec: Math.round(xs.length / (total / 1e6)), p50PerRoundUs: perRound.get(s.name)!, over250ms: xs.filter((x) => x > 250_000).length }
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// Cached (hit path)

interface BatchResult {
  /** Median over batches of the batch-average cost, ns/op. */
  readonly medianNsPerOp: number
  readonly p10NsPerOp: number
  readonly p90NsPerOp: number
  readonly minNsPerOp: number
  readonly opsPerSec: number
  readonly batches: number
  readonly batchSize: number
}

function batchResult(perOpNs: number[], batchSize: number): BatchResult {
  const s = [...perOpNs].sort((a, b) => a - b)
  const med = quantileSorted(s, 0.5)
  return {
    medianNsPerOp: round(med), p10NsPerOp: round(quantileSorted(s, 0.1)), p90NsPerOp: round(quantileSorted(s, 0.9)), minNsPerOp: round(s[0]!),
    opsPerSec: Math.round(1e9 / med), batches: s.length, batchSize,
  }
}

/** Lets timers and I/O run between batches (outside the timed part), so sockets are not left unserviced. */
const yieldLoop = () => new Promise<void>((r) => setImmediate(r))

/** Times `batches` synchronous batches of `size` calls of `body(i)`; the result feeds a sink. */
async function syncBatches(size: number, batches: number, ids: number, body: (i: number) => number): Promise<BatchResult> {
  const per: number[] = []
  let sink = 0
  const warm = Math.max(5, Math.floor(batches / 10))
  for (let b = -warm; b < batches; b++) {
    await yieldLoop()
    let i = 0
    const t0 = nowNs()
    for (let k = 0; k < size; k++) {
      sink += body(i)
      if (++i === ids) i = 0
    }
    const dt = Number(nowNs() - t0)
    if (b >= 0) per.push(dt / size)
  }
  if (sink === -1) console.log('unreachable')
  return batchResult(per, size)
}

async function asyncBatches(size: number, batches: number, ids: number, body: (i: number) => Promise<Uint8Array>): Promise<BatchResult> {
  const per: number[] = []
  let sink = 0
  const warm = Math.max(3, Math.floor(batches / 10))
  for (let b = -warm; b < batches; b++) {
    await yieldLoop()
    let i = 0
    const t0 = nowNs()
    for (let k = 0; k < size; k++) {
      sink += (await body(i))[0]!
      if (++i === ids) i = 0
    }
    const dt = Number(nowNs() - t0)
    if (b >= 0) per.push(dt / size)
  }
  if (sink === -1) console.log('unreachable')
  return batchResult(per, size)
}

interface CachedResult {
  readonly peekPreparedId: BatchResult
  readonly peekKeyringId: BatchResult
  readonly getAsyncHit: BatchResult
  readonly keyringDataKeyHit: BatchResult
  readonly loopFloor: BatchResult
  readonly cacheEntries: number
  readonly peekUnder1us: boolean
}

/** A transaction stub for the keyring hit path: only `region` may be read; the store must not be touched. */
function hitOnlyTransaction(): TenantTransaction {
  const refuse = (): never => { throw new Error('keyring hit path touched the store: the cache missed') }
  const records = { reserveDataKeyBudget: refuse, insertKey: refuse, appendAudit: refuse }
  const tx = { tenantId: TENANT, region: REGION, cell: 'main', session: { query: refuse, exec: refuse, discard: refuse }, records, onRollback: refuse, onCommit: refuse, runsApplicationSql: refuse }
  return tx
}

interface LoadedCache {
  readonly cache: DataKeyCache
  readonly ids: string[]
}

/** Fills a cache with the subject's N keys, loaded exactly as the keyring loads on a miss: through the provider. */
async function loadCache(s: Subject): Promise<LoadedCache> {
  const cache = new DataKeyCache()
  const ids: string[] = []
  for (let i = 0; i < PLAN.keys; i++) {
    const id = cacheIdFor(i + 1, s.runtime.name, s.keyId)
    ids.push(id)
    await cache.load(id, TENANT, TTL_MS, () => s.runtime.unwrapKey({ keyId: s.keyId, ciphertext: s.wrapped[i]!, context: ctxFor(i + 1) }))
  }
  for (let i = 0; i < PLAN.keys; i++) {
    /* Precondition: every id hits and holds the wrapped key. */
    if (!Buffer.from(cache.peek(ids[i]!) ?? []).equals(s.plain[i]!)) throw new Error(`${s.name}: cached key ${i} missing or wrong`)
  }
  return { cache, ids }
}

async function measureCached(s: Subject, { cache, ids }: LoadedCache): Promise<CachedResult> {
  const n = PLAN.keys
  const name = s.runtime.name
  const keyId = s.keyId
  const neverLoad = (): Promise<Uint8Array> => Promise.reject(new Error('cache.get missed'))

  const loopFloor = await syncBatches(PLAN.batch, PLAN.batches, n, (i) => ids[i]!.length)
  const peekPreparedId = await syncBatches(PLAN.batch, PLAN.batches, n, (i) => cache.peek(ids[i]!)![0]!)
  const peekKeyringId = await syncBatches(PLAN.batch, PLAN.batches, n, (i) => cache.peek(`${TENANT}|${REGION}|data|${i + 1}|${name}|${keyId}`)![0]!)
  const getAsyncHit = await asyncBatches(PLAN.batch, PLAN.asyncBatches, n, (i) => cache.get(ids[i]!, TENANT, TTL_MS, neverLoad))

  const tenant: TenantRecord = {
    id: TENANT, region: REGION, cell: 'main', status: 'active', key: { custody: 'kms', provider: name, keyId }, keyState: 'enabled',
    cacheTtlMs: null, version: 1, createdAt: new Date(), updatedAt: new Date(),
  }
  const keyring = new Keyring({
    provider: async () => s.runtime, cache,
    // The key state every use checks: the directory's entry, unchanged during the measurement.
    directory: { cached: () => tenant, get: async () => tenant }, cacheTtlMs: { kms: TTL_MS, byok: TTL_MS, hyok: TTL_MS }, maxEncryptionsPerKey: 2 ** 32, reservationBlock: 65_536,
  })
  const tk = keyring.forTransaction(tenant, hitOnlyTransaction())
  const keyringDataKeyHit = await asyncBatches(PLAN.batch, PLAN.asyncBatches, n, async (i) => tk.withDataKey(i + 1, (key) => key))
  if (cache.size !== n) throw new Error(`${s.name}: cache size changed during the hit-path measurement`)
  cache.clear()
  return { peekPreparedId, peekKeyringId, getAsyncHit, keyringDataKeyHit, loopFloor, cacheEntries: n, peekUnder1us: peekPreparedId.medianNsPerOp < TARGET_CACHED_NS }
}

/** `peek` on a cache filled to its default capacity, ids rotating over all entries. */
async function measureFullCache(): Promise<{ entries: number; peekPreparedId: BatchResult; peekKeyringId: BatchResult }> {
  const cache = new DataKeyCache()
  const ids: string[] = []
  for (let i = 0; i < DEFAULT_MAX_ENTRIES; i++) {
    const id = cacheIdFor(i + 1, 'local', 'k-full')
    ids.push(id)
    await cache.load(id, TENANT, TTL_MS, async () => new Uint8Array(randomBytes(32)))
  }
  if (cache.size !== DEFAULT_MAX_ENTRIES) throw new Error('full cache: not at capacity')
  const peekPreparedId = await syncBatches(PLAN.batch, PLAN.batches, ids.length, (i) => cache.peek(ids[i]!)!.length)
  const peekKeyringId = await syncBatches(PLAN.batch, PLAN.batches, ids.length, (i) => cache.peek(`${TENANT}|${REGION}|data|${i + 1}|local|k-full`)!.length)
  cache.clear()
  return { entries: DEFAULT_MAX_ENTRIES, peekPreparedId, peekKeyringId }
}

// ---------------------------------------------------------------------------------------------
// XKS raw round trip

interface XksRoundTrip {
  readonly encrypt: Summary & { over250ms: number }
  readonly decrypt: Summary & { over250ms: number }
  readonly health: Summary & { over250ms: number }
}

async function measureXksRaw(raw: XksKeyProvider, keyId: string): Promise<XksRoundTrip> {
  const dk = new Uint8Array(randomBytes(32))
  const blobs = new Map<number, Uint8Array>()
  const arms: Array<[string, (i: number) => Promise<unknown>]> = [
    ['encrypt', async (i) => { blobs.set(i, (await raw.wrapKey({ keyId, plaintextKey: dk, context: ctxFor(i + 1) })).ciphertext) }],
    ['decrypt', async (i) => {
      const blob = blobs.get(i)
      if (blob === undefined) throw new Error('xks raw: no blob to decrypt')
      const k = await raw.unwrapKey({ keyId, ciphertext: blob, context: ctxFor(i + 1) })
      if (!Buffer.from(k).equals(Buffer.from(dk))) throw new Error('xks raw: decrypt returned a different key')
    }],
    ['health', () => raw.health()],
  ]
  const samples = new Map<string, number[]>(arms.map(([n]) => [n, []]))
  // Warm-up (connection set-up, JIT on both ends).
  for (let i = 0; i < 50; i++) for (const [, op] of arms) await op(i)
  let base = 1000
  for (let r = 0; r < PLAN.xksRounds; r++) {
    // encrypt must precede decrypt for the same i: rotate only the position of health.
    const order = r % 2 === 0 ? [0, 1, 2] : [2, 0, 1]
    for (const a of order) {
      const [name, op] = arms[a]!
      const xs = samples.get(name)!
      for (let k = 0; k < PLAN.xksBlock; k++) {
        const t0 = nowNs()
        await op(base + k)
        xs.push(usSince(t0))
      }
    }
    base += PLAN.xksBlock
  }
  const sum = (n: string) => ({ ...summarize(samples.get(n)!), over250ms: samples.get(n)!.filter((x) => x > XKS_DEFAULT_DEADLINE_MS * 1000).length })
  return { encrypt: sum('encrypt'), decrypt: sum('decrypt'), health: sum('health') }
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  log(`plan: ${JSON.stringify(PLAN)}`)
  const subjects: Subject[] = []
  const skipped: Record<string, string> = {}
  log('local: keystore + wrap ...')
  subjects.push(await setupLocal())
  log('pkcs11: SoftHSM token + wrap ...')
  const hsm = await setupPkcs11()
  if (typeof hsm === 'string') {
    if (process.env.CI === 'true') throw new Error(`SoftHSM2 is required in CI: ${hsm}`)
    skipped.pkcs11 = hsm
    log(`pkcs11 SKIPPED: ${hsm}`)
  } else {
    subjects.push(hsm)
  }
  log('xks: keyproxy child process + wrap ...')
  const xks = await setupXks()
  subjects.push(xks.subject)

  log('cold unwrap ...')
  const cold = await measureCold(subjects)
  log('xks raw round trip ...')
  const xksRaw = await measureXksRaw(xks.raw, xks.subject.keyId)
  log('cached hit path ...')
  // All caches are loaded (provider calls) before any tight loop runs.
  const loaded = new Map<string, LoadedCache>()
  for (const s of subjects) loaded.set(s.name, await loadCache(s))
  const cached: Record<string, CachedResult> = {}
  for (const s of subjects) cached[s.name] = await measureCached(s, loaded.get(s.name)!)
  const full = await measureFullCache()

  printTable(`Cold unwrap through RuntimeKeyProvider (${PLAN.keys} keys x ${PLAN.coldRounds} rounds, sequential)`,
    ['provider', 'ops/s (seq)', 'ops/s (1/p50)', 'p50 µs', 'p90 µs', 'p99 µs', 'n'],
    subjects.map((s) => { const c = cold[s.name]!; return [s.name, c.seqOpsPerSec, c.opsPerSec, c.medianUs, c.p90Us, c.p99Us, c.n] }))
  printTable(`Cached: DataKeyCache hit path, median of ${PLAN.batches} batch averages (${PLAN.batch} ops/batch), ns/op`,
    ['provider', 'peek(id)', '<1µs', 'peek(keyring id)', 'get() await', 'keyring.withDataKey', 'loop floor', 'peek ops/s'],
    subjects.map((s) => {
      const c = cached[s.name]!
      return [s.name, c.peekPreparedId.medianNsPerOp, c.peekUnder1us ? 'yes' : 'NO', c.peekKeyringId.medianNsPerOp, c.getAsyncHit.medianNsPerOp, c.keyringDataKeyHit.medianNsPerOp, c.loopFloor.medianNsPerOp, c.peekPreparedId.opsPerSec]
    }))
  printTable(`Cached at capacity (${full.entries} entries), ns/op`, ['variant', 'median', 'p10', 'p90'],
    [['peek(id)', full.peekPreparedId.medianNsPerOp, full.peekPreparedId.p10NsPerOp, full.peekPreparedId.p90NsPerOp],
      ['peek(keyring id)', full.peekKeyringId.medianNsPerOp, full.peekKeyringId.p10NsPerOp, full.peekKeyringId.p90NsPerOp]])
  printTable(`XKS raw round trip on loopback (provider without runtime wrapper, ${PLAN.xksRounds * PLAN.xksBlock} calls each)`,
    ['call', 'p50 µs', 'p90 µs', 'p99 µs', 'min µs', `>${XKS_DEFAULT_DEADLINE_MS} ms`],
    (['encrypt', 'decrypt', 'health'] as const).map((k) => [k, xksRaw[k].medianUs, xksRaw[k].p90Us, xksRaw[k].p99Us, xksRaw[k].minUs, xksRaw[k].over250ms]))

  const worstPeek = Math.max(...Object.values(cached).map((c) => c.peekPreparedId.medianNsPerOp), full.peekPreparedId.medianNsPerOp)
  const verdict = {
    cachedUnder1usMedian: worstPeek < TARGET_CACHED_NS,
    worstPeekMedianNs: worstPeek,
    keyringFastPathUnder1usMedian: Math.max(...Object.values(cached).map((c) => c.peekKeyringId.medianNsPerOp), full.peekKeyringId.medianNsPerOp) < TARGET_CACHED_NS,
    /** What the data layer awaits per sealed value: TenantKeys.dataKey on a hit. */
    keyringDataKeyUnder1usMedian: Math.max(...Object.values(cached).map((c) => c.keyringDataKeyHit.medianNsPerOp)) < TARGET_CACHED_NS,
  }
  console.log(`\nTarget: cached unwrap (cache.peek) < ${TARGET_CACHED_NS} ns median: ${verdict.cachedUnder1usMedian ? 'MET' : 'MISSED'} (worst median ${worstPeek} ns/op)`)
  console.log(`As the data layer sees it: keyring id built per call + peek < ${TARGET_CACHED_NS} ns: ${verdict.keyringFastPathUnder1usMedian ? 'yes' : 'NO'}; await TenantKeys.withDataKey (hit, key state checked) < ${TARGET_CACHED_NS} ns: ${verdict.keyringDataKeyUnder1usMedian ? 'yes' : 'NO'}`)
  console.log(`XKS loopback round trip: decrypt p50 ${xksRaw.decrypt.medianUs} µs, p99 ${xksRaw.decrypt.p99Us} µs; encrypt p50 ${xksRaw.encrypt.medianUs} µs, p99 ${xksRaw.encrypt.p99Us} µs`)

  writeResults(RESULTS, {
    benchmark: 'key-unwrap',
    machine: machineInfo(),
    quick: QUICK,
    plan: PLAN,
    targets: { cachedMedianNs: TARGET_CACHED_NS, xksDefaultDeadlineMs: XKS_DEFAULT_DEADLINE_MS },
    method: {
      cold: 'RuntimeKeyProvider.unwrapKey, one call in flight, every call timed (hrtime); rounds interleave providers with rotated order; seqOpsPerSec = calls / total time',
      cached: 'DataKeyCache populated via cache.load (provider unwrap); batches of batchSize calls timed as a whole; figure = median of batch averages (ns/op), loop floor not subtracted',
      peekKeyringId: 'cache.peek of an id string built per call exactly like Keyring#cacheId (the keyring fast path)',
      keyringDataKeyHit: 'await TenantKeys.withDataKey(n, use) on a hit (real Keyring, key state checked against the directory entry; the transaction stub throws if the store is touched)',
      xksRaw: 'XKS provider without the runtime wrapper: encrypt = wrapKey, decrypt = unwrapKey, health = GetHealthStatus; one HTTP POST with SigV4 per call over 127.0.0.1 to the keyproxy child process (file keystore)',
      xksTimeout: 'deadline raised to 2000 ms for the run; calls over the default 250 ms are counted (over250ms)',
    },
    skipped,
    cold,
    cached,
    cachedAtCapacity: full,
    xksRoundTrip: xksRaw,
    verdict,
  })
  log(`wrote ${RESULTS}`)
}

try {
  await main()
} finally {
  await cleanupAll()
}
