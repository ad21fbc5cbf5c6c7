/**
 * Random 96-bit GCM nonces, drawn from the CSPRNG in bulk.
 *
 * `randomBytes(12)` per value costs a native call and an allocation each time (about half the cost
 * of one AES-GCM field encryption on small values). `RandomNonceSource` draws `12 * poolNonces`
 * bytes at once and hands out consecutive 12-byte slices. On refill it allocates a NEW pool and
 * never rewrites an old one, so a nonce already handed out (a view into the old pool) never
 * changes under its holder. Every byte of a pool is handed out at most once.
 *
 * Nonces are not secret; uniqueness is what matters. Random 96-bit nonces keep the collision
 * probability below 2^-32 for up to 2^32 encryptions per key (NIST SP 800-38D, 8.3); that budget
 * is enforced per data key by the keyring, not here.
 */

import { randomBytes } from 'node:crypto'
import { DomicileError } from '../errors.js'

const NONCE_BYTES = 12

export interface NonceSource {
  /** A fresh 12-byte nonce. The returned view is never reused or rewritten. */
  next(): Buffer
  /** Writes a fresh 12-byte nonce into `target` at `offset`. */
  nextInto(target: Uint8Array, offset: number): void
}

export interface RandomNonceSourceOptions {
  /** Nonces drawn per CSPRNG call. Default 1024 (12 KiB). */
  readonly poolNonces?: number
}

/**
 * Bulk-drawn random nonces.
 *
 * @example
 * const nonces = new RandomNonceSource()
 * const iv = nonces.next() // 12 random bytes
 */
export class RandomNonceSource implements NonceSource {
  readonly #poolBytes: number
  #pool: Buffer
  #offset: number

  constructor(options: RandomNonceSourceOptions = {}) {
    const n = options.poolNonces ?? 1024
    /* Precondition: the pool holds between 1 and 2^16 nonces. */
    if (!Number.isInteger(n) || n < 1 || n > 65536) {
      throw new DomicileError('ERR_INPUT_INVALID', 'poolNonces must be an integer between 1 and 65536.')
    }
    this.#poolBytes = n * NONCE_BYTES
    this.#pool = randomBytes(this.#poolBytes)
    this.#offset = 0
  }

  next(): Buffer {
    if (this.#offset === this.#poolBytes) this.#refill()
    const start = this.#offset
    this.#offset = start + NONCE_BYTES
    return this.#pool.subarray(start, start + NONCE_BYTES)
  }

  nextInto(target: Uint8Array, offset: number): void {
    if (this.#offset === this.#poolBytes) this.#refill()
    const pool = this.#pool
    const start = this.#offset
    this.#offset = start + NONCE_BYTES
    for (let i = 0; i < NONCE_BYTES; i++) target[offset + i] = pool[start + i]!
  }

  #refill(): void {
    // A new buffer every time: views handed out from the old pool stay valid and unchanged.
    this.#pool = randomBytes(this.#poolBytes)
    this.#offset = 0
  }
}

/** The process-wide default source used when none is passed. */
export const defaultNonceSource: NonceSource = new RandomNonceSource()
