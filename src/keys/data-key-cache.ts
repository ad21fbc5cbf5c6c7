/**
 * Data-key cache: a bounded LRU of unwrapped data keys, so that opening a field does not cost a
 * key-provider round trip.
 *
 * - `peek(id)` is the synchronous fast path: a Map lookup, an expiry compare and setting a
 *   reference bit. Recency is tracked CLOCK-style (second chance), an LRU approximation that keeps
 *   the hit path free of Map reordering; eviction is amortised O(1).
 * - `load(...)` is single-flight: concurrent misses for the same id share ONE loader call, also
 *   when the TTL is 0 (nothing is kept, but the unwrap is still shared).
 * - Each entry carries its tenant id so that a revocation can drop one tenant's keys at once.
 *
 * OWNERSHIP: a loader hands its key over (the cache keeps a copy in its own memory and zeroes the
 * loader's buffer); a returned key belongs to the cache. Evicted, expired and invalidated keys are zeroed
 * (`fill(0)`), and a key loaded with TTL 0 (or invalidated while loading) is zeroed right after
 * its waiters have resumed (setImmediate). Callers must use a returned key synchronously, right
 * after the await, or copy it.
 */

import { DomicileError } from '../errors.js'
import { manageKey, retireKey } from '../crypto/context-reserve.js'

/** Zeroes a key the cache is letting go of, after dropping contexts prepared from it. */
function discard(key: Uint8Array): void {
  retireKey(key)
  key.fill(0)
}

export interface DataKeyCacheOptions {
  /** Maximum number of cached keys; beyond it the least recently used (CLOCK) is evicted and zeroed. Default 10_000. */
  readonly maxEntries?: number
  /** Clock in ms; injectable for tests. Default `Date.now`. */
  readonly now?: () => number
  /** How often (by the clock) a load also sweeps out expired entries. Default 1000 ms. */
  readonly sweepIntervalMs?: number
}

interface Entry {
  readonly key: Uint8Array
  readonly tenantId: string
  readonly expiresAt: number
  /** CLOCK reference bit: set by a hit, cleared when the eviction hand passes. */
  referenced: boolean
}

interface Flight {
  readonly tenantId: string
  promise: Promise<Uint8Array>
  /** Set by invalidate / invalidateTenant / clear while the loader runs: do not cache the result. */
  cancelled: boolean
}

export const DEFAULT_MAX_ENTRIES = 10_000

export class DataKeyCache {
  readonly maxEntries: number
  readonly #now: () => number
  readonly #sweepIntervalMs: number
  /** Insertion order, oldest first; entries hit since the hand passed get a second chance. */
  readonly #entries = new Map<string, Entry>()
  readonly #flights = new Map<string, Flight>()
  #lastSweep: number
  /** Lookups answered from the cache, and loads started (misses), for metrics. */
  #hits = 0
  #misses = 0

  /**
   * @example
   * const cache = new DataKeyCache({ maxEntries: 1000 })
   * const key = cache.peek(id) ?? await cache.load(id, tenantId, 60_000, () => keyring.unwrap(id))
   */
  constructor(opts: DataKeyCacheOptions = {}) {
    const maxEntries = opts.maxEntries ?? DEFAULT_MAX_ENTRIES
    /* Precondition: maxEntries is a positive integer. */
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new DomicileError('ERR_CONFIG_INVALID', 'data key cache maxEntries must be a positive integer', { path: 'maxEntries' })
    }
    this.maxEntries = maxEntries
    this.#now = opts.now ?? Date.now
    this.#sweepIntervalMs = opts.sweepIntervalMs ?? 1000
    this.#lastSweep = this.#now()
  }

  /** Number of cached entries (expired ones not yet swept included). */
  get size(): number {
    return this.#entries.size
  }

  /** Synchronous hit path: the cached key, or undefined on a miss or expiry. Use it synchronously or copy it. */
  peek(id: string): Uint8Array | undefined {
    const e = this.#entries.get(id)
    if (e === undefined) return undefined
    if (this.#now() >= e.expiresAt) {
      this.#entries.delete(id)
      discard(e.key)
      return undefined
    }
    e.referenced = true
    this.#hits++
    return e.key
  }

  /** Counters for metrics: hits, misses (loads started) and the entries held now. */
  stats(): { readonly hits: number; readonly misses: number; readonly entries: number } {
    return { hits: this.#hits, misses: this.#misses, entries: this.#entries.size }
  }

  /**
   * Load a key through `loader` (single-flight per id) and cache it for `ttlMs` (0 = do not keep).
   * Concurrent callers for the same id share the first caller's loader, tenant and TTL. A failed
   * load is not cached; its error reaches every waiter.
   */
  load(id: string, tenantId: string, ttlMs: number, loader: () => Promise<Uint8Array>): Promise<Uint8Array> {
    const flying = this.#flights.get(id)
    if (flying !== undefined) return flying.promise
    /* Precondition: the id and tenant id are non-empty strings. */
    if (typeof id !== 'string' || id === '' || typeof tenantId !== 'string' || tenantId === '') {
      return Promise.reject(new DomicileError('ERR_INPUT_INVALID', 'data key cache id and tenantId must be non-empty strings'))
    }
    /* Precondition: ttlMs is a non-negative number of milliseconds. */
    if (typeof ttlMs !== 'number' || Number.isNaN(ttlMs) || ttlMs < 0) {
      return Promise.reject(new DomicileError('ERR_INPUT_INVALID', 'data key cache ttlMs must be a non-negative number of milliseconds (0 = do not cache)', { path: 'ttlMs' }))
    }
    const flight: Flight = { tenantId, cancelled: false, promise: Promise.resolve(new Uint8Array(0)) }
    // Registered before the loader runs, so a loader that throws synchronously still cleans up.
    this.#flights.set(id, flight)
    this.#misses++
    flight.promise = this.#fly(id, flight, ttlMs, loader)
    return flight.promise
  }

  async #fly(id: string, flight: Flight, ttlMs: number, loader: () => Promise<Uint8Array>): Promise<Uint8Array> {
    try {
      const loaded = await loader()
      /* Precondition: the loader resolves to a Uint8Array. */
      if (!(loaded instanceof Uint8Array)) {
        throw new DomicileError('ERR_KEY_INVALID', 'data key loader must resolve to a Uint8Array')
      }
      // The cache's own copy in its own memory: never a slice of Node's shared Buffer pool (whose
      // slab other Buffers expose through .buffer), and safe from a loader that reuses its buffer.
      // The loader handed the key over, so its buffer is zeroed.
      const key = new Uint8Array(loaded)
      loaded.fill(0)
      if (ttlMs > 0 && !flight.cancelled) this.#insert(id, { key, tenantId: flight.tenantId, expiresAt: this.#now() + ttlMs, referenced: false })
      else setImmediate(() => discard(key))
      return key
    } finally {
      if (this.#flights.get(id) === flight) this.#flights.delete(id)
    }
  }

  /** `peek(id)` on a hit, else `load(...)`. */
  get(id: string, tenantId: string, ttlMs: number, loader: () => Promise<Uint8Array>): Promise<Uint8Array> {
    const hit = this.peek(id)
    return hit !== undefined ? Promise.resolve(hit) : this.load(id, tenantId, ttlMs, loader)
  }

  /** Drop (and zero) one key; a load in flight for it will not be cached. */
  invalidate(id: string): void {
    const e = this.#entries.get(id)
    if (e !== undefined) {
      this.#entries.delete(id)
      discard(e.key)
    }
    const f = this.#flights.get(id)
    if (f !== undefined) f.cancelled = true
  }

  /** Drop (and zero) every key of one tenant, e.g. on revocation; its loads in flight will not be cached. */
  invalidateTenant(tenantId: string): void {
    for (const [id, e] of this.#entries) {
      if (e.tenantId === tenantId) {
        this.#entries.delete(id)
        discard(e.key)
      }
    }
    for (const f of this.#flights.values()) if (f.tenantId === tenantId) f.cancelled = true
  }

  /** Drop (and zero) everything. */
  clear(): void {
    for (const e of this.#entries.values()) discard(e.key)
    this.#entries.clear()
    for (const f of this.#flights.values()) f.cancelled = true
  }

  /** Drop (and zero) expired entries now. Loads also do this every `sweepIntervalMs`. */
  sweep(): void {
    const now = this.#now()
    this.#lastSweep = now
    for (const [id, e] of this.#entries) {
      if (now >= e.expiresAt) {
        this.#entries.delete(id)
        discard(e.key)
      }
    }
  }

  #insert(id: string, entry: Entry): void {
    const old = this.#entries.get(id)
    if (old !== undefined) {
      this.#entries.delete(id)
      if (old.key !== entry.key) discard(old.key)
    }
    if (this.#now() - this.#lastSweep >= this.#sweepIntervalMs) this.sweep()
    // Make room first, CLOCK style (second chance): the oldest entry goes unless it was hit since
    // the hand last passed, in which case it moves to the young end with its bit cleared.
    // Amortised O(1). The new entry joins behind the hand afterwards.
    while (this.#entries.size >= this.maxEntries) {
      const oldest = this.#entries.entries().next()
      if (oldest.done === true) break
      const [victimId, victim] = oldest.value
      this.#entries.delete(victimId)
      if (victim.referenced) {
        victim.referenced = false
        this.#entries.set(victimId, victim)
      } else {
        discard(victim.key)
      }
    }
    manageKey(entry.key)
    this.#entries.set(id, entry)
  }
}
