/**
 * The `pkcs11` key provider (the HSM rung): tenant KEKs are non-extractable AES-256 keys on a
 * PKCS#11 token, and data keys are wrapped with AES-256-GCM inside the token, the wrap context
 * (encodeWrapContext) as AAD.
 *
 * Wrapped format: version (1 byte, 0x01) || iv (12) || ciphertext || tag (16).
 * Revocation: disableKey clears CKA_ENCRYPT/CKA_DECRYPT on the key object, so the token refuses
 * every wrap and unwrap (ERR_KEY_REVOKED) until enableKey sets them again.
 * Destruction: destroyKey removes the key object from the token (C_DestroyObject), irreversibly.
 * The session is opened on first use; after an outage (ERR_KEY_PROVIDER_UNAVAILABLE) the next
 * call opens a fresh one. A pin the token refuses is not retried: the provider keeps failing with
 * that error (fix the pin and create a new provider), so it cannot lock the pin by retrying.
 */

import { DecryptionFailedError, DomicileError, isDomicileError } from '../../../errors.js'
import {
  encodeWrapContext,
  type CreateKeyRequest,
  type DestroyKeyResult,
  type KeyProvider,
  type KeyStatus,
  type OpOptions,
  type UnwrapRequest,
  type WrappedKey,
  type WrapRequest,
} from '../../key-provider.js'
import { isPinRejected } from '../../../pkcs11/pkcs11-library.js'
import { Pkcs11Session } from '../../../pkcs11/pkcs11-session.js'

/** Where Debian/Ubuntu install SoftHSM2's PKCS#11 module. */
export const DEFAULT_PKCS11_LIBRARY = '/usr/lib/softhsm/libsofthsm2.so'

export interface Pkcs11KeyProviderOptions {
  /** Instance name from config. Default 'pkcs11'. */
  readonly name?: string
  /** PKCS#11 module path. Default DEFAULT_PKCS11_LIBRARY (SoftHSM2). */
  readonly library?: string
  readonly tokenLabel: string
  /** User pin; kept in a private field, never logged or put in an error. */
  readonly pin: string
}

export interface Pkcs11KeyProvider extends KeyProvider {
  readonly kind: 'pkcs11'
  /** Generate a new KEK on the token. origin 'import' is not supported (ERR_INPUT_INVALID). */
  createKey(req: CreateKeyRequest, opts?: OpOptions): Promise<{ keyId: string }>
  /** Revoke: the token refuses to use the key until enableKey. */
  disableKey(keyId: string, opts?: OpOptions): Promise<void>
  enableKey(keyId: string, opts?: OpOptions): Promise<void>
  /** Destroy the key object on the token (C_DestroyObject): irreversible; ERR_KEY_NOT_FOUND from then on. */
  destroyKey(keyId: string, opts?: OpOptions): Promise<DestroyKeyResult>
  close(): Promise<void>
}

const FORMAT_VERSION = 0x01
const IV_BYTES = 12
const TAG_BYTES = 16

/**
 * Create a pkcs11 key provider. Nothing is loaded until the first call.
 *
 * @example
 * const hsm = createPkcs11KeyProvider({ name: 'hsm-eu', tokenLabel: 'domicile-eu', pin: process.env.HSM_PIN ?? '' })
 * const { keyId } = await hsm.createKey({ label: 'acme', origin: 'generate' })
 * const context = { tenantId: 'acme', region: 'eu-west-1', dataKeyId: 'dk1', purpose: 'data' } as const
 * const wrapped = await hsm.wrapKey({ keyId, plaintextKey: new Uint8Array(32), context })
 * const dataKey = await hsm.unwrapKey({ keyId, ciphertext: wrapped.ciphertext, context })
 * await hsm.close()
 */
export function createPkcs11KeyProvider(options: Pkcs11KeyProviderOptions): Pkcs11KeyProvider {
  /* Precondition: the provider has a token label and a pin. */
  if (typeof options?.tokenLabel !== 'string' || options.tokenLabel.length === 0) {
    throw new DomicileError('ERR_CONFIG_INVALID', 'The pkcs11 provider needs "tokenLabel": the label of the HSM token holding the keys.', { path: 'tokenLabel' })
  }
  if (typeof options.pin !== 'string' || options.pin.length === 0) {
    throw new DomicileError('ERR_CONFIG_INVALID', 'The pkcs11 provider needs "pin": the token user pin (read it from a secret store, not from source).', { path: 'pin' })
  }
  return new Pkcs11KeyProviderImpl(options)
}

class Pkcs11KeyProviderImpl implements Pkcs11KeyProvider {
  readonly kind = 'pkcs11' as const
  readonly name: string
  readonly #library: string
  readonly #tokenLabel: string
  readonly #pin: string
  #session: Promise<Pkcs11Session> | undefined
  /** A login refused for the pin: not retried (it would only count against the token's retry limit). */
  #pinRejection: unknown
  #closed = false

  constructor(options: Pkcs11KeyProviderOptions) {
    this.name = options.name ?? 'pkcs11'
    this.#library = options.library ?? DEFAULT_PKCS11_LIBRARY
    this.#tokenLabel = options.tokenLabel
    this.#pin = options.pin
    Object.freeze(this)
  }

  async wrapKey(req: WrapRequest, opts?: OpOptions): Promise<WrappedKey> {
    const sealed = await this.#use(opts, (s) => s.encryptGcm(req.keyId, req.plaintextKey, encodeWrapContext(req.context)))
    const out = new Uint8Array(1 + IV_BYTES + sealed.ciphertext.length + TAG_BYTES)
    out[0] = FORMAT_VERSION
    out.set(sealed.iv, 1)
    out.set(sealed.ciphertext, 1 + IV_BYTES)
    out.set(sealed.tag, 1 + IV_BYTES + sealed.ciphertext.length)
    return { keyId: req.keyId, ciphertext: out }
  }

  async unwrapKey(req: UnwrapRequest, opts?: OpOptions): Promise<Uint8Array> {
    const c = req.ciphertext
    /* Precondition: the wrapped key is in format version 1 (anything else is the opaque failure). */
    if (!(c instanceof Uint8Array) || c.length < 1 + IV_BYTES + TAG_BYTES || c[0] !== FORMAT_VERSION) throw new DecryptionFailedError()
    const iv = c.subarray(1, 1 + IV_BYTES)
    const ciphertext = c.subarray(1 + IV_BYTES, c.length - TAG_BYTES)
    const tag = c.subarray(c.length - TAG_BYTES)
    const opened = await this.#use(opts, (s) => s.decryptGcm(req.keyId, iv, ciphertext, tag, encodeWrapContext(req.context)))
    const key = new Uint8Array(opened)
    opened.fill(0)
    return key
  }

  async keyStatus(keyId: string, opts?: OpOptions): Promise<KeyStatus> {
    const info = await this.#use(opts, (s) => s.keyInfo(keyId))
    if (!info.exists) throw new DomicileError('ERR_KEY_NOT_FOUND', 'No key with this id exists on the HSM token. Check the tenant key binding.')
    return { keyId, state: info.enabled ? 'enabled' : 'disabled' }
  }

  async createKey(req: CreateKeyRequest, opts?: OpOptions): Promise<{ keyId: string }> {
    /* Precondition: HSM keys are generated on the token, not imported. */
    if (req?.origin !== 'generate') {
      throw new DomicileError('ERR_INPUT_INVALID',
        "BYOK import into an HSM is not supported by this provider; use the local provider's import flow or import into the HSM with your own tooling.")
    }
    const keyId = await this.#use(opts, (s) => s.generateAesKey(req.label))
    return { keyId }
  }

  disableKey(keyId: string, opts?: OpOptions): Promise<void> {
    return this.#use(opts, (s) => s.setEnabled(keyId, false))
  }

  enableKey(keyId: string, opts?: OpOptions): Promise<void> {
    return this.#use(opts, (s) => s.setEnabled(keyId, true))
  }

  async destroyKey(keyId: string, opts?: OpOptions): Promise<DestroyKeyResult> {
    await this.#use(opts, (s) => s.destroyKey(keyId))
    return { keyId, state: 'destroyed' }
  }

  async close(): Promise<void> {
    this.#closed = true
    const pending = this.#session
    this.#session = undefined
    if (pending === undefined) return
    const session = await pending.catch(() => undefined)
    await session?.close()
  }

  /** Run `op` on the (lazily opened) session; an outage drops the session so the next call reopens. */
  async #use<T>(opts: OpOptions | undefined, op: (s: Pkcs11Session) => Promise<T>): Promise<T> {
    /* Precondition: the provider is not closed. */
    if (this.#closed) throw new DomicileError('ERR_CLOSED', `The pkcs11 key provider "${this.name}" is closed.`)
    /* Precondition: the caller's deadline has not passed. */
    if (opts?.signal?.aborted) throw new DomicileError('ERR_KEY_PROVIDER_UNAVAILABLE', `The call to the pkcs11 key provider "${this.name}" was aborted before it reached the HSM.`)
    /* Precondition: the token has not refused this provider's pin. */
    if (this.#pinRejection !== undefined) throw this.#pinRejection
    const pending = this.#session ?? this.#open()
    const session = await pending
    try {
      return await op(session)
    } catch (e) {
      if (isDomicileError(e, 'ERR_KEY_PROVIDER_UNAVAILABLE') && this.#session === pending) {
        this.#session = undefined
        void session.close().catch(() => undefined)
      }
      throw e
    }
  }

  #open(): Promise<Pkcs11Session> {
    const opening = Pkcs11Session.open({ library: this.#library, tokenLabel: this.#tokenLabel, pin: this.#pin })
    this.#session = opening
    // A failed open is forgotten so the next call tries again.
    opening.catch((e: unknown) => {
      if (this.#session === opening) this.#session = undefined
      if (isPinRejected(e)) this.#pinRejection = e
    })
    return opening
  }
}
