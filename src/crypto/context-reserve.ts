/**
 * Crypto contexts made ahead of use, for keys whose bytes are guaranteed not to change.
 *
 * Creating an AES-256-GCM cipher or an HMAC in node:crypto costs more than using one: OpenSSL 3
 * fetches the algorithm and expands the key on every create. In a service that alternates with
 * database round trips this is also cold-cache work, measured at about twice its tight-loop cost
 * (bench/field-storage.bench.ts). A reserve makes a few contexts for a key while the process
 * waits on I/O (one `setImmediate` after contexts were taken, so normally while a statement is
 * in flight) and hands one out per value:
 *
 * - AES-256-GCM: a `Cipheriv` initialised with the key and a fresh 96-bit nonce drawn from the
 *   process nonce source (the CSPRNG). It encrypts exactly one message and is dropped, so the
 *   nonce rules are unchanged: each prepared nonce is drawn once and used once or never.
 * - HMAC-SHA-256: a keyed `Hmac` that has not been updated yet.
 *
 * Only MANAGED keys get reserves: the owner (the data-key cache) calls `manageKey(key)` when it
 * starts holding a key and promises not to change its bytes until it calls `retireKey(key)`,
 * which it does before zeroing the key. Retiring empties the key's reserves at once, so no
 * prepared context outlives its key in our caches. Any other key (a caller's own buffer, which
 * could be rewritten with other key bytes) gets `undefined` and the caller creates a context as
 * usual. Taking a context for a retired key (one the cache let go of between fetch and use)
 * throws ERR_CONFLICT (retry) instead of encrypting under zeroed bytes. Retiring ends the key's
 * unused contexts with final()/digest(), so OpenSSL frees and cleanses their key schedules at
 * once rather than at garbage collection. Reserves follow demand down as well as up, and the
 * process keeps at most RESERVE_MAX_TOTAL contexts ready.
 */

import { createCipheriv, createHmac, type CipherGCM, type Hmac } from 'node:crypto'
import { DomicileError } from '../errors.js'
import { defaultNonceSource } from './nonce-source.js'

/** A GCM cipher ready for one message, with the nonce it was initialised with. */
export interface ReadyGcm {
  readonly cipher: CipherGCM
  readonly nonce: Buffer
}

/** Most contexts kept ready per key and kind. */
export const RESERVE_MAX_DEPTH = 32
/** Most contexts kept ready in the process (about 1.6 KB of native memory each). */
export const RESERVE_MAX_TOTAL = 2048
const MIN_DEPTH = 2
const KEY_BYTES = 32

class Reserve<T> {
  readonly items: T[] = []
  /** How many to keep ready: follows the number taken between two refills, within MIN..MAX. */
  depth = MIN_DEPTH
  taken = 0
  retired = false
  constructor(readonly make: () => T, readonly dispose: (item: T) => void) {}
}

const managed = new WeakSet<Uint8Array>()
const retired = new WeakSet<Uint8Array>()
const gcmReserves = new WeakMap<Uint8Array, Reserve<ReadyGcm>>()
const hmacReserves = new WeakMap<Uint8Array, Reserve<Hmac>>()
/** Reserves with contexts taken since the last refill (strong references until it runs). */
const toRefill = new Set<Reserve<never>>()
let refillScheduled = false
/** Contexts ready in all reserves. */
let readyTotal = 0

/** The error for a key the cache let go of (expiry, eviction) between fetch and use: not a revocation. */
export function releasedKeyError(): DomicileError {
  return new DomicileError('ERR_CONFLICT', 'The data key was released by the key cache while in use. Retry the operation.')
}

/** Ends a context without using it: OpenSSL frees and cleanses its key schedule now, not at GC. */
function drain<T>(r: Reserve<T>): void {
  for (const item of r.items.splice(0)) {
    readyTotal--
    try {
      r.dispose(item)
    } catch {
      // already ended
    }
  }
}

/**
 * The owner of `key` starts holding it and will not change its bytes until `retireKey(key)`.
 * Only 32-byte keys are managed (AES-256 data keys and HMAC column keys); others are ignored.
 */
export function manageKey(key: Uint8Array): void {
  if (key instanceof Uint8Array && key.byteLength === KEY_BYTES && !retired.has(key)) managed.add(key)
}

/** The owner is about to zero `key`: end its prepared contexts now; later takes throw. */
export function retireKey(key: Uint8Array): void {
  if (!managed.has(key)) return
  managed.delete(key)
  retired.add(key)
  for (const map of [gcmReserves, hmacReserves] as const) {
    const r = map.get(key) as Reserve<never> | undefined
    if (r === undefined) continue
    map.delete(key)
    r.retired = true
    drain(r)
    toRefill.delete(r)
  }
}

/** True when the owner retired `key` (its bytes are zeroed or about to be): fetch it again. */
export function isRetiredKey(key: Uint8Array): boolean {
  return retired.has(key)
}

function take<T>(map: WeakMap<Uint8Array, Reserve<T>>, key: Uint8Array, make: (key: Uint8Array) => T, dispose: (item: T) => void): T | undefined {
  let r = map.get(key)
  if (r === undefined) {
    if (!managed.has(key)) {
      if (retired.has(key)) throw releasedKeyError()
      return undefined
    }
    r = new Reserve(() => make(key), dispose)
    map.set(key, r)
  }
  r.taken++
  if (!refillScheduled) {
    refillScheduled = true
    setImmediate(refill)
  }
  toRefill.add(r as unknown as Reserve<never>)
  const item = r.items.pop()
  if (item === undefined) return r.make()
  readyTotal--
  return item
}

function refill(): void {
  refillScheduled = false
  for (const r of toRefill) {
    if (r.retired) continue
    // Follow demand both ways: up to what was taken, down halfway when less was.
    r.depth = Math.min(RESERVE_MAX_DEPTH, Math.max(MIN_DEPTH, r.taken >= r.depth ? r.taken : Math.ceil((r.depth + r.taken) / 2)))
    r.taken = 0
    while (r.items.length > r.depth) {
      readyTotal--
      try {
        r.dispose(r.items.pop()!)
      } catch {
        // already ended
      }
    }
    try {
      while (r.items.length < r.depth && readyTotal < RESERVE_MAX_TOTAL) {
        r.items.push(r.make())
        readyTotal++
      }
    } catch {
      // Making a context failed (out of memory?): the next take makes one inline and reports it.
    }
  }
  toRefill.clear()
}

function makeGcm(key: Uint8Array): ReadyGcm {
  const nonce = defaultNonceSource.next()
  return { cipher: createCipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 }), nonce }
}

function makeHmac(key: Uint8Array): Hmac {
  return createHmac('sha256', key)
}

const endGcm = (g: ReadyGcm): void => {
  g.cipher.final()
}
const endHmac = (h: Hmac): void => {
  h.digest()
}

/**
 * A GCM cipher for one message under managed `key`, with a fresh random nonce; `undefined` for a
 * key that is not managed. Use it for exactly one message.
 */
export function takeGcm(key: Uint8Array): ReadyGcm | undefined {
  return take(gcmReserves, key, makeGcm, endGcm)
}

/** A keyed HMAC-SHA-256 for one message under managed `key`; `undefined` for an unmanaged key. */
export function takeHmac(key: Uint8Array): Hmac | undefined {
  return take(hmacReserves, key, makeHmac, endHmac)
}

/** For tests: how many contexts are ready for `key` (GCM, HMAC), and in the whole process. */
export function readyCount(key: Uint8Array): { gcm: number; hmac: number; total: number } {
  return { gcm: gcmReserves.get(key)?.items.length ?? 0, hmac: hmacReserves.get(key)?.items.length ?? 0, total: readyTotal }
}
