/**
 * Circuit breaker for key-provider calls.
 *
 * Consecutive "provider unavailable" failures open the circuit; while it is open calls fail fast
 * instead of piling up behind a dead HSM or proxy. After `cooldownMs` the breaker goes half-open
 * and lets exactly one trial call through: its success closes the circuit, its failure opens it
 * for another cooldown. Only the caller decides what counts as a failure (RuntimeKeyProvider
 * counts ERR_KEY_PROVIDER_UNAVAILABLE only; a revoked key is an answer, not an outage).
 */

import { DomicileError } from '../errors.js'

export type CircuitState = 'closed' | 'open' | 'half-open'

export interface CircuitBreakerOptions {
  /** Consecutive failures that open the circuit. Default 5. */
  readonly failureThreshold?: number
  /** How long the circuit stays open before one trial call. Default 5000 ms. */
  readonly cooldownMs?: number
  /** Clock in ms; injectable for tests. Default `Date.now`. */
  readonly now?: () => number
}

/** Proof that a call was admitted; hand it back to `settle` exactly once. */
export interface CircuitPermit {
  /** True when this call is the single half-open trial. */
  readonly trial: boolean
  /** Breaker generation when admitted; results from an older generation are ignored. */
  readonly generation: number
}

/**
 * - success: the provider answered (including "revoked", "not found", "decryption failed")
 * - failure: the provider did not answer (timeout, network, HSM down)
 * - neutral: the call ended without telling us anything (e.g. the caller cancelled it)
 */
export type CallOutcome = 'success' | 'failure' | 'neutral'

export class CircuitBreaker {
  readonly failureThreshold: number
  readonly cooldownMs: number
  readonly #now: () => number
  #state: 'closed' | 'open' = 'closed'
  #failures = 0
  #openedAt = 0
  #trialInFlight = false
  #generation = 0

  /**
   * @example
   * const breaker = new CircuitBreaker({ failureThreshold: 3, cooldownMs: 1000 })
   */
  constructor(opts: CircuitBreakerOptions = {}) {
    const failureThreshold = opts.failureThreshold ?? 5
    const cooldownMs = opts.cooldownMs ?? 5000
    /* Precondition: failureThreshold is a positive integer. */
    if (!Number.isInteger(failureThreshold) || failureThreshold < 1) {
      throw new DomicileError('ERR_CONFIG_INVALID', 'circuit breaker failureThreshold must be a positive integer')
    }
    /* Precondition: cooldownMs is a non-negative finite number. */
    if (!Number.isFinite(cooldownMs) || cooldownMs < 0) {
      throw new DomicileError('ERR_CONFIG_INVALID', 'circuit breaker cooldownMs must be a non-negative number of milliseconds')
    }
    this.failureThreshold = failureThreshold
    this.cooldownMs = cooldownMs
    this.#now = opts.now ?? Date.now
  }

  /** Current state; an open circuit whose cooldown has passed reports 'half-open'. */
  get state(): CircuitState {
    if (this.#state === 'closed') return 'closed'
    return this.#now() - this.#openedAt >= this.cooldownMs ? 'half-open' : 'open'
  }

  /** Consecutive failures counted so far in the closed state. */
  get consecutiveFailures(): number {
    return this.#failures
  }

  /** Admit a call, or return undefined when the call must fail fast. */
  tryAcquire(): CircuitPermit | undefined {
    const state = this.state
    if (state === 'closed') return { trial: false, generation: this.#generation }
    if (state === 'open' || this.#trialInFlight) return undefined
    this.#trialInFlight = true
    return { trial: true, generation: this.#generation }
  }

  /** Report how an admitted call ended. */
  settle(permit: CircuitPermit, outcome: CallOutcome): void {
    if (permit.trial) {
      if (permit.generation !== this.#generation) return
      this.#trialInFlight = false
      if (outcome === 'success') this.#close()
      else if (outcome === 'failure') this.#open()
      return
    }
    // A call admitted while closed; ignore it if the breaker has opened since.
    if (this.#state !== 'closed' || permit.generation !== this.#generation) return
    if (outcome === 'success') this.#failures = 0
    else if (outcome === 'failure') {
      this.#failures += 1
      if (this.#failures >= this.failureThreshold) this.#open()
    }
  }

  /** Force the circuit closed (e.g. an operator knows the provider is back). */
  reset(): void {
    this.#close()
  }

  #open(): void {
    this.#state = 'open'
    this.#openedAt = this.#now()
    this.#failures = 0
    this.#trialInFlight = false
    this.#generation += 1
  }

  #close(): void {
    this.#state = 'closed'
    this.#failures = 0
    this.#trialInFlight = false
    this.#generation += 1
  }
}
