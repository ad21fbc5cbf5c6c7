/**
 * RuntimeKeyProvider: the one wrapper every key provider runs behind.
 *
 * It holds the invariants so that each provider stays short (after the AWS Encryption SDK's
 * public `onEncrypt` / abstract `_onEncrypt` split and kysely's RuntimeDriver):
 * - data keys are exactly 32 bytes, going in and coming out (a bad unwrap result is zeroed);
 * - the wrap context is complete (non-empty ids, known purpose);
 * - every call has a deadline (250 ms for XKS, 2 s otherwise) combined with the caller's signal;
 * - errors are normalised: DomicileErrors pass through, decryption failures become a fresh opaque
 *   DecryptionFailedError, anything else becomes ERR_KEY_PROVIDER_UNAVAILABLE with a generic message;
 * - a circuit breaker fails fast after consecutive outages;
 * - every call leaves an audit event with identifiers only, never key bytes;
 * - after close() every call fails with ERR_CLOSED.
 * The optional administrative calls (createKey, destroyKey, deleteKeyMaterial) exist on the wrapper
 * exactly when the inner provider has them, and run under the same rules.
 */

import { CallStats, type CallStatsSnapshot } from './call-stats.js'
import type { AuditOutcome, AuditSink } from '../audit/audit-sink.js'
import { noopAuditSink } from '../audit/audit-sink.js'
import { DecryptionFailedError, DomicileError, isDomicileError } from '../errors.js'
import { CircuitBreaker } from './circuit-breaker.js'
import type { CallOutcome } from './circuit-breaker.js'
import type {
  CreateKeyRequest,
  DestroyKeyResult,
  KeyProvider,
  KeyState,
  KeyStatus,
  OpOptions,
  ProviderKind,
  UnwrapRequest,
  WrapContext,
  WrappedKey,
  WrapRequest,
} from './key-provider.js'

/** Data keys are AES-256 keys. */
export const DATA_KEY_BYTES = 32

/** Default deadlines: XKS proxies promise sub-250 ms answers; everything else gets 2 s. */
export const DEFAULT_TIMEOUT_MS = 2000
export const DEFAULT_XKS_TIMEOUT_MS = 250

export interface RuntimeKeyProviderOptions {
  /** Deadline per call in ms. Default 250 for 'xks', 2000 otherwise. */
  readonly timeoutMs?: number
  /** Where key.wrap / key.unwrap / key.status / key.create events go (a call's `opts.audit` overrides it). Default: nowhere. */
  readonly audit?: AuditSink
  /** Shared breaker; default: a fresh `new CircuitBreaker()` per wrapper. */
  readonly breaker?: CircuitBreaker
}

type Op = 'wrap' | 'unwrap' | 'status' | 'create' | 'destroy' | 'delete-material'

const KEY_STATES: ReadonlySet<KeyState> = new Set(['enabled', 'disabled', 'pending-import', 'deleted', 'unavailable'])

/** Thrown internally when our own deadline / the caller's signal fires first. */
class Aborted {
  constructor(readonly byTimeout: boolean) {}
}

export class RuntimeKeyProvider implements KeyProvider {
  readonly kind: ProviderKind
  readonly name: string
  readonly timeoutMs: number
  readonly breaker: CircuitBreaker
  /** Present when the inner provider can mint keys. */
  readonly createKey?: (req: CreateKeyRequest, opts?: OpOptions) => Promise<{ keyId: string }>
  /** Present when the inner provider can destroy key material (local, pkcs11, aws-kms). */
  readonly destroyKey?: (keyId: string, opts?: OpOptions) => Promise<DestroyKeyResult>
  /** Present when the inner provider can delete imported key material (local). */
  readonly deleteKeyMaterial?: (keyId: string, opts?: OpOptions) => Promise<void>
  readonly #inner: KeyProvider
  readonly #audit: AuditSink
  readonly #unwrapStats = new CallStats()
  #closed = false

  /**
   * @example
   * const provider = new RuntimeKeyProvider(createLocalKeyProvider({ dir: './keys' }), { audit: new MemoryAuditSink() })
   * const wrapped = await provider.wrapKey({ keyId, plaintextKey, context })
   */
  constructor(inner: KeyProvider, opts: RuntimeKeyProviderOptions = {}) {
    const timeoutMs = opts.timeoutMs ?? (inner.kind === 'xks' ? DEFAULT_XKS_TIMEOUT_MS : DEFAULT_TIMEOUT_MS)
    /* Precondition: timeoutMs is a positive finite number. */
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
      throw new DomicileError('ERR_CONFIG_INVALID', 'key provider timeoutMs must be a positive number of milliseconds', { path: 'timeoutMs' })
    }
    this.#inner = inner
    this.kind = inner.kind
    this.name = inner.name
    this.timeoutMs = timeoutMs
    this.#audit = opts.audit ?? noopAuditSink
    this.breaker = opts.breaker ?? new CircuitBreaker()
    if (typeof inner.createKey === 'function') {
      const create = inner.createKey.bind(inner)
      this.createKey = (req, o) => this.#createKey(create, req, o)
    }
    if (typeof inner.destroyKey === 'function') {
      const destroy = inner.destroyKey.bind(inner)
      this.destroyKey = (keyId, o) => this.#destroyKey(destroy, keyId, o)
    }
    if (typeof inner.deleteKeyMaterial === 'function') {
      const del = inner.deleteKeyMaterial.bind(inner)
      this.deleteKeyMaterial = (keyId, o) => this.#deleteKeyMaterial(del, keyId, o)
    }
  }

  /** Wrap a 32-byte data key under the KEK `req.keyId`, bound to `req.context`. */
  async wrapKey(req: WrapRequest, opts?: OpOptions): Promise<WrappedKey> {
    this.#assertOpen()
    const started = performance.now()
    try {
      assertKeyId(req.keyId)
      assertContext(req.context)
      /* Precondition: the plaintext data key is exactly 32 bytes. */
      if (!(req.plaintextKey instanceof Uint8Array) || req.plaintextKey.length !== DATA_KEY_BYTES) {
        const got = req.plaintextKey instanceof Uint8Array ? `${req.plaintextKey.length} bytes` : 'not a Uint8Array'
        throw new DomicileError('ERR_KEY_INVALID', `data key must be exactly ${DATA_KEY_BYTES} bytes (AES-256); got ${got}`, { path: 'plaintextKey' })
      }
      const wrapped = await this.#invoke('wrap', (signal) => this.#inner.wrapKey(req, { signal }), opts?.signal)
      /* Precondition: the provider answered with a non-empty ciphertext. */
      if (wrapped === null || typeof wrapped !== 'object' || !(wrapped.ciphertext instanceof Uint8Array) || wrapped.ciphertext.length === 0) {
        throw new DomicileError('ERR_KEY_PROVIDER_UNAVAILABLE', `key provider ${this.name} returned a malformed wrap result; check the provider`)
      }
      await this.#record(opts?.audit, 'wrap', req, started, 'ok')
      return { keyId: typeof wrapped.keyId === 'string' && wrapped.keyId !== '' ? wrapped.keyId : req.keyId, ciphertext: wrapped.ciphertext }
    } catch (e) {
      throw await this.#fail(opts?.audit, 'wrap', req, started, e)
    }
  }

  /** Unwrap a data key; the result is exactly 32 bytes or the call fails opaquely. */
  async unwrapKey(req: UnwrapRequest, opts?: OpOptions): Promise<Uint8Array> {
    this.#assertOpen()
    const started = performance.now()
    let key: Uint8Array | undefined
    try {
      assertKeyId(req.keyId)
      assertContext(req.context)
      /* Precondition: the wrapped key is a Uint8Array. */
      if (!(req.ciphertext instanceof Uint8Array)) {
        throw new DomicileError('ERR_INPUT_INVALID', 'wrapped key ciphertext must be a Uint8Array', { path: 'ciphertext' })
      }
      /* Precondition: an empty wrapped key cannot unwrap (opaque failure, no provider call). */
      if (req.ciphertext.length === 0) throw new DecryptionFailedError()
      const result: unknown = await this.#invoke(
        'unwrap',
        (signal) => this.#inner.unwrapKey(req, { signal }),
        opts?.signal,
        (late) => { if (late instanceof Uint8Array) late.fill(0) },
      )
      /* Precondition: the unwrapped data key is exactly 32 bytes (otherwise zero it and fail opaquely). */
      if (!(result instanceof Uint8Array) || result.length !== DATA_KEY_BYTES) {
        if (result instanceof Uint8Array) result.fill(0)
        throw new DecryptionFailedError()
      }
      key = result
      this.#unwrapStats.record((performance.now() - started) / 1000, true)
      await this.#record(opts?.audit, 'unwrap', req, started, 'ok')
      return key
    } catch (e) {
      key?.fill(0)
      if (key === undefined) this.#unwrapStats.record((performance.now() - started) / 1000, false)
      throw await this.#fail(opts?.audit, 'unwrap', req, started, e)
    }
  }

  /** Calls, failures and latency of `unwrapKey` in this process, for metrics. */
  callStats(op: 'unwrap'): CallStatsSnapshot {
    void op
    return this.#unwrapStats.snapshot()
  }

  /** Ask the provider for the state of a KEK. */
  async keyStatus(keyId: string, opts?: OpOptions): Promise<KeyStatus> {
    this.#assertOpen()
    const started = performance.now()
    const ref = { keyId }
    try {
      assertKeyId(keyId)
      const status = await this.#invoke('status', (signal) => this.#inner.keyStatus(keyId, { signal }), opts?.signal)
      /* Precondition: the provider answered with a known key state. */
      if (status === null || typeof status !== 'object' || !KEY_STATES.has(status.state)) {
        throw new DomicileError('ERR_KEY_PROVIDER_UNAVAILABLE', `key provider ${this.name} returned a malformed key status; check the provider`)
      }
      await this.#record(opts?.audit, 'status', ref, started, 'ok', { state: status.state })
      return { keyId, state: status.state }
    } catch (e) {
      throw await this.#fail(opts?.audit, 'status', ref, started, e)
    }
  }

  /** Close the wrapper and the inner provider; later calls fail with ERR_CLOSED. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#inner.close?.()
  }

  async #createKey(
    create: (req: CreateKeyRequest, opts?: OpOptions) => Promise<{ keyId: string }>,
    req: CreateKeyRequest,
    opts?: OpOptions,
  ): Promise<{ keyId: string }> {
    this.#assertOpen()
    const started = performance.now()
    const ref = { keyId: '' }
    try {
      /* Precondition: a created key has a label and a known origin. */
      if (typeof req?.label !== 'string' || req.label === '' || (req.origin !== 'generate' && req.origin !== 'import')) {
        throw new DomicileError('ERR_INPUT_INVALID', "createKey needs a non-empty label and origin 'generate' or 'import'")
      }
      const out = await this.#invoke('create', (signal) => create(req, { signal }), opts?.signal)
      if (out === null || typeof out !== 'object' || typeof out.keyId !== 'string' || out.keyId === '') {
        throw new DomicileError('ERR_KEY_PROVIDER_UNAVAILABLE', `key provider ${this.name} returned a malformed createKey result; check the provider`)
      }
      await this.#record(opts?.audit, 'create', { keyId: out.keyId }, started, 'ok', { origin: req.origin })
      return { keyId: out.keyId }
    } catch (e) {
      throw await this.#fail(opts?.audit, 'create', ref, started, e)
    }
  }

  async #destroyKey(
    destroy: (keyId: string, opts?: OpOptions) => Promise<DestroyKeyResult>,
    keyId: string,
    opts?: OpOptions,
  ): Promise<DestroyKeyResult> {
    this.#assertOpen()
    const started = performance.now()
    const ref = { keyId }
    try {
      assertKeyId(keyId)
      const out = await this.#invoke('destroy', (signal) => destroy(keyId, { signal }), opts?.signal)
      /* Precondition: the provider answered with 'destroyed', or 'pending-deletion' and a valid deletion date. */
      const pending = out?.state === 'pending-deletion'
      if (out === null || typeof out !== 'object' || (out.state !== 'destroyed' && !pending) ||
        (pending && !(out.deletionDate instanceof Date && Number.isFinite(out.deletionDate.getTime())))) {
        throw new DomicileError('ERR_KEY_PROVIDER_UNAVAILABLE', `key provider ${this.name} returned a malformed destroyKey result; check the provider and the key's state there`)
      }
      const result: DestroyKeyResult = pending ? { keyId, state: 'pending-deletion', deletionDate: new Date(out.deletionDate!.getTime()) } : { keyId, state: 'destroyed' }
      await this.#record(opts?.audit, 'destroy', ref, started, 'ok', { state: result.state, ...(pending ? { deletionDate: result.deletionDate!.toISOString() } : {}) })
      return result
    } catch (e) {
      throw await this.#fail(opts?.audit, 'destroy', ref, started, e)
    }
  }

  async #deleteKeyMaterial(del: (keyId: string, opts?: OpOptions) => Promise<void>, keyId: string, opts?: OpOptions): Promise<void> {
    this.#assertOpen()
    const started = performance.now()
    const ref = { keyId }
    try {
      assertKeyId(keyId)
      await this.#invoke('delete-material', (signal) => del(keyId, { signal }), opts?.signal)
      await this.#record(opts?.audit, 'delete-material', ref, started, 'ok')
    } catch (e) {
      throw await this.#fail(opts?.audit, 'delete-material', ref, started, e)
    }
  }

  #assertOpen(): void {
    /* Precondition: the provider has not been closed. */
    if (this.#closed) throw new DomicileError('ERR_CLOSED', `key provider ${this.name} is closed; create a new one`)
  }

  /**
   * Run one provider call under the breaker and the deadline. Resolves with the provider's answer
   * or rejects with a normalised DomicileError.
   */
  async #invoke<T>(op: Op, call: (signal: AbortSignal) => Promise<T>, callerSignal?: AbortSignal, onLate?: (late: T) => void): Promise<T> {
    /* Precondition: the caller has not already given up. */
    if (callerSignal?.aborted) {
      throw new DomicileError('ERR_KEY_PROVIDER_UNAVAILABLE', `key provider ${this.name} call was cancelled by the caller before it started`)
    }
    const permit = this.breaker.tryAcquire()
    /* Precondition: the circuit is not open (the provider is not known to be down). */
    if (permit === undefined) {
      throw new DomicileError('ERR_KEY_PROVIDER_UNAVAILABLE', `key provider ${this.name} is failing; calls are paused for up to ${this.breaker.cooldownMs} ms (circuit open). Check it is reachable`)
    }
    // Like AbortSignal.timeout, but with a ref'd timer: a pending call keeps the process alive
    // until it answers or its deadline passes.
    const deadline = new AbortController()
    const timer = setTimeout(() => deadline.abort(), this.timeoutMs)
    const timeout = deadline.signal
    const signal = callerSignal === undefined ? timeout : AbortSignal.any([callerSignal, timeout])
    let outcome: CallOutcome = 'success'
    try {
      return await raceSignal(call, signal, timeout, onLate)
    } catch (e) {
      const err = this.#normalise(op, e, signal, timeout)
      if (isDomicileError(err, 'ERR_KEY_PROVIDER_UNAVAILABLE')) {
        // The caller giving up tells us nothing about the provider; our own deadline does.
        const cancelled = e instanceof Aborted ? !e.byTimeout : signal.aborted && !timeout.aborted
        outcome = cancelled ? 'neutral' : 'failure'
      }
      throw err
    } finally {
      clearTimeout(timer)
      this.breaker.settle(permit, outcome)
    }
  }

  #normalise(op: Op, e: unknown, signal: AbortSignal, timeout: AbortSignal): DomicileError {
    if (e instanceof Aborted || (signal.aborted && !isDomicileError(e))) {
      const byTimeout = e instanceof Aborted ? e.byTimeout : timeout.aborted
      return byTimeout
        ? new DomicileError('ERR_KEY_PROVIDER_UNAVAILABLE', `key provider ${this.name} did not answer within ${this.timeoutMs} ms; check it is reachable`)
        : new DomicileError('ERR_KEY_PROVIDER_UNAVAILABLE', `key provider ${this.name} call was cancelled by the caller`)
    }
    if (isDomicileError(e, 'ERR_DECRYPTION_FAILED')) return new DecryptionFailedError()
    if (isDomicileError(e)) return e
    // A foreign error may carry data in its message: never echo it. Keep it as cause only where it
    // cannot be a decryption oracle.
    const message = `key provider ${this.name} failed during ${op}; check it is reachable and healthy`
    return op === 'unwrap'
      ? new DomicileError('ERR_KEY_PROVIDER_UNAVAILABLE', message)
      : new DomicileError('ERR_KEY_PROVIDER_UNAVAILABLE', message, { cause: e })
  }

  async #fail(sink: AuditSink | undefined, op: Op, req: { keyId?: unknown; context?: unknown }, started: number, e: unknown): Promise<unknown> {
    const err = isDomicileError(e, 'ERR_DECRYPTION_FAILED') ? new DecryptionFailedError() : e
    const code = isDomicileError(err) ? err.code : 'ERR_KEY_PROVIDER_UNAVAILABLE'
    const outcome: AuditOutcome = code === 'ERR_KEY_REVOKED' || code === 'ERR_KEY_PENDING_IMPORT' || code === 'ERR_DECRYPTION_FAILED' ? 'denied' : 'error'
    try {
      await this.#record(sink, op, req, started, outcome, undefined, code)
    } catch {
      // The original failure matters more than a failing audit sink on an already failing call.
    }
    return err
  }

  /** Record one audit event (in the call's sink, else this wrapper's); identifiers only. A throwing sink fails the call (fail closed). */
  async #record(
    sink: AuditSink | undefined,
    op: Op,
    req: { keyId?: unknown; context?: unknown },
    started: number,
    outcome: AuditOutcome,
    extra?: Record<string, string>,
    code?: string,
  ): Promise<void> {
    const ctx = (typeof req.context === 'object' && req.context !== null ? req.context : {}) as Partial<Record<keyof WrapContext, unknown>>
    const detail: Record<string, string | number> = { provider: this.name, ms: Math.round((performance.now() - started) * 1000) / 1000 }
    if (typeof req.keyId === 'string' && req.keyId !== '') detail.keyId = req.keyId
    if (typeof ctx.dataKeyId === 'string') detail.dataKeyId = ctx.dataKeyId
    if (typeof ctx.purpose === 'string') detail.purpose = ctx.purpose
    Object.assign(detail, extra)
    await (sink ?? this.#audit).record({
      type: `key.${op}`,
      ...(typeof ctx.tenantId === 'string' ? { tenantId: ctx.tenantId } : {}),
      ...(typeof ctx.region === 'string' ? { region: ctx.region } : {}),
      outcome,
      ...(code === undefined ? {} : { code }),
      detail,
    })
  }
}

/** Resolve with the call's answer, or reject with `Aborted` as soon as `signal` fires. */
function raceSignal<T>(call: (signal: AbortSignal) => Promise<T>, signal: AbortSignal, timeout: AbortSignal, onLate?: (late: T) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false
    const onAbort = (): void => {
      if (settled) return
      settled = true
      reject(new Aborted(timeout.aborted))
    }
    signal.addEventListener('abort', onAbort, { once: true })
    let pending: Promise<T>
    try {
      pending = Promise.resolve(call(signal))
    } catch (e) {
      pending = Promise.reject(e)
    }
    pending.then(
      (value) => {
        signal.removeEventListener('abort', onAbort)
        if (settled) { onLate?.(value); return }
        settled = true
        resolve(value)
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort)
        if (settled) return
        settled = true
        reject(err)
      },
    )
  })
}

function assertKeyId(keyId: unknown): void {
  /* Precondition: the key id is a non-empty string. */
  if (typeof keyId !== 'string' || keyId === '') {
    throw new DomicileError('ERR_INPUT_INVALID', 'keyId must be a non-empty string', { path: 'keyId' })
  }
}

function assertContext(ctx: unknown): void {
  /* Precondition: the wrap context is an object. */
  if (typeof ctx !== 'object' || ctx === null) {
    throw new DomicileError('ERR_INPUT_INVALID', 'wrap context must be an object with tenantId, region, dataKeyId and purpose', { path: 'context' })
  }
  const c = ctx as Record<string, unknown>
  for (const field of ['tenantId', 'region', 'dataKeyId'] as const) {
    /* Precondition: tenantId, region and dataKeyId are non-empty strings. */
    if (typeof c[field] !== 'string' || c[field] === '') {
      throw new DomicileError('ERR_INPUT_INVALID', `wrap context field ${field} must be a non-empty string`, { path: `context.${field}` })
    }
  }
  /* Precondition: purpose is 'data' or 'index'. */
  if (c.purpose !== 'data' && c.purpose !== 'index') {
    throw new DomicileError('ERR_INPUT_INVALID', "wrap context field purpose must be 'data' or 'index'", { path: 'context.purpose' })
  }
}
