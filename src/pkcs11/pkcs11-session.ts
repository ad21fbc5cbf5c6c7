/**
 * One logged-in PKCS#11 session on one token, with the handful of operations Domicile needs:
 * generate a non-extractable AES-256 key, AES-GCM encrypt/decrypt under it, switch it off and on,
 * inspect and destroy it.
 *
 * Used by the pkcs11 key provider and by the reference XKS key proxy (as its HSM keystore).
 * pkcs11js is imported lazily and never appears in this API. Every call on a session goes through
 * a promise-queue mutex, so concurrent callers never interleave C_EncryptInit/C_Encrypt.
 *
 * Key ids are 'hsm_' + hex(CKA_ID), CKA_ID being 16 random bytes set at generation.
 * Revocation ("disabled") is CKA_ENCRYPT = CKA_DECRYPT = false on the key object; the token then
 * refuses C_EncryptInit/C_DecryptInit with CKR_KEY_FUNCTION_NOT_PERMITTED (SoftHSM 2.6 honours it).
 */

import { randomBytes } from 'node:crypto'
import { DecryptionFailedError, DomicileError } from '../errors.js'
import { ckrName, type Pkcs11Attribute, type Pkcs11Handle, type Pkcs11Mechanism } from './pkcs11-binding.js'
import { acquireLibrary, lifecycleQueue, login, logout, releaseLibrary, unavailable, type Pkcs11Library } from './pkcs11-library.js'
import { SerialQueue } from './serial-queue.js'

export interface Pkcs11SessionOptions {
  /** Path of the PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so. */
  readonly library: string
  /** Label of the token to use (as set at token initialisation). */
  readonly tokenLabel: string
  /** User pin. Used once to log in; never stored or shown. */
  readonly pin: string
}

/** AES-GCM output: 12-byte IV, ciphertext (same length as the plaintext), 16-byte tag. */
export interface GcmSealed {
  readonly iv: Buffer
  readonly ciphertext: Buffer
  readonly tag: Buffer
}

export interface Pkcs11KeyInfo {
  readonly exists: boolean
  /** CKA_ENCRYPT and CKA_DECRYPT both true. */
  readonly enabled: boolean
  /** CKA_LABEL; undefined when the key does not exist. */
  readonly label: string | undefined
}

/** Largest plaintext / AAD accepted by encryptGcm and decryptGcm. */
export const MAX_GCM_INPUT_BYTES = 64 * 1024

const IV_BYTES = 12
const TAG_BYTES = 16
const KEY_ID = /^hsm_([0-9a-f]{32})$/

/** Errors after which the session is not usable: the provider reopens on the next call. */
const SESSION_LOST = new Set([
  'CKR_SESSION_HANDLE_INVALID', 'CKR_SESSION_CLOSED', 'CKR_DEVICE_REMOVED', 'CKR_DEVICE_ERROR',
  'CKR_DEVICE_MEMORY', 'CKR_TOKEN_NOT_PRESENT', 'CKR_TOKEN_NOT_RECOGNIZED', 'CKR_CRYPTOKI_NOT_INITIALIZED',
  'CKR_USER_NOT_LOGGED_IN', 'CKR_HOST_MEMORY',
])

export class Pkcs11Session {
  readonly library: string
  readonly tokenLabel: string
  readonly #lib: Pkcs11Library
  readonly #slot: Pkcs11Handle
  readonly #session: Pkcs11Handle
  readonly #queue = new SerialQueue()
  readonly #handles = new Map<string, Pkcs11Handle>()
  #closed = false

  private constructor(lib: Pkcs11Library, slot: Pkcs11Handle, session: Pkcs11Handle, opts: Pkcs11SessionOptions) {
    this.library = opts.library
    this.tokenLabel = opts.tokenLabel
    this.#lib = lib
    this.#slot = slot
    this.#session = session
  }

  /**
   * Load the library (C_Initialize once per process), find the token by label, open a read/write
   * session and log in as user. Failures are ERR_KEY_PROVIDER_UNAVAILABLE naming the library and
   * token label, never the pin.
   *
   * @example
   * const s = await Pkcs11Session.open({ library: '/usr/lib/softhsm/libsofthsm2.so', tokenLabel: 'domicile', pin: '1234' })
   * const keyId = await s.generateAesKey('tenant-acme')
   * const sealed = await s.encryptGcm(keyId, Buffer.from('data key'), Buffer.from('context'))
   * await s.close()
   */
  static open(opts: Pkcs11SessionOptions): Promise<Pkcs11Session> {
    /* Precondition: library, token label and pin are non-empty strings. */
    for (const field of ['library', 'tokenLabel', 'pin'] as const) {
      if (typeof opts?.[field] !== 'string' || opts[field].length === 0) {
        return Promise.reject(new DomicileError('ERR_CONFIG_INVALID', `PKCS#11 session option "${field}" must be a non-empty string.`, { path: field }))
      }
    }
    const { library, tokenLabel, pin } = opts
    return lifecycleQueue.run(async () => {
      const lib = await acquireLibrary(library, tokenLabel)
      try {
        const { module, binding } = lib
        let slot: Pkcs11Handle | undefined
        try {
          slot = module.C_GetSlotList(true).find((s) => module.C_GetTokenInfo(s).label.trimEnd() === tokenLabel)
        } catch (e) {
          throw unavailable('could not list the slots', library, tokenLabel, e)
        }
        if (slot === undefined) {
          throw unavailable('no token with this label is present; check the label, and if the token was created after the library was initialised in this process, close every session on the library first', library, tokenLabel)
        }
        let session: Pkcs11Handle
        try {
          session = module.C_OpenSession(slot, binding.CKF_RW_SESSION | binding.CKF_SERIAL_SESSION)
        } catch (e) {
          throw unavailable('could not open a read/write session', library, tokenLabel, e)
        }
        try {
          login(lib, slot, session, pin, tokenLabel)
        } catch (e) {
          try { module.C_CloseSession(session) } catch { /* already gone */ }
          throw e
        }
        return new Pkcs11Session(lib, slot, session, opts)
      } catch (e) {
        releaseLibrary(lib)
        throw e
      }
    })
  }

  /**
   * Generate a token-resident AES-256 key that never leaves the HSM (sensitive, non-extractable),
   * usable for encrypt/decrypt. Returns its key id ('hsm_' + 32 hex).
   */
  generateAesKey(label: string): Promise<string> {
    /* Precondition: the key label is a non-empty string of at most 128 characters. */
    if (typeof label !== 'string' || label.length === 0 || label.length > 128) {
      return Promise.reject(new DomicileError('ERR_INPUT_INVALID', 'The key label must be a non-empty string of at most 128 characters.'))
    }
    return this.#run(() => {
      const { module, binding: b } = this.#lib
      const id = randomBytes(16)
      const template: Pkcs11Attribute[] = [
        { type: b.CKA_CLASS, value: b.CKO_SECRET_KEY },
        { type: b.CKA_KEY_TYPE, value: b.CKK_AES },
        { type: b.CKA_VALUE_LEN, value: 32 },
        { type: b.CKA_TOKEN, value: true },
        { type: b.CKA_PRIVATE, value: true },
        { type: b.CKA_SENSITIVE, value: true },
        { type: b.CKA_EXTRACTABLE, value: false },
        { type: b.CKA_ENCRYPT, value: true },
        { type: b.CKA_DECRYPT, value: true },
        { type: b.CKA_MODIFIABLE, value: true },
        { type: b.CKA_LABEL, value: label },
        { type: b.CKA_ID, value: id },
      ]
      let handle: Pkcs11Handle
      try {
        handle = module.C_GenerateKey(this.#session, { mechanism: b.CKM_AES_KEY_GEN }, template)
      } catch (e) {
        throw this.#mapError(e, 'could not generate an AES key')
      }
      const keyId = `hsm_${id.toString('hex')}`
      this.#handles.set(keyId, handle)
      return keyId
    })
  }

  /**
   * AES-256-GCM encrypt `plaintext` (1 byte..64 KiB) with `aad` (0..64 KiB) under the key, with a
   * fresh random 12-byte IV and a 128-bit tag.
   */
  encryptGcm(keyId: string, plaintext: Uint8Array, aad: Uint8Array): Promise<GcmSealed> {
    /* Precondition: plaintext is 1 byte..64 KiB and AAD at most 64 KiB (PKCS#11 modules reject empty input). */
    if (!isSmallBytes(plaintext) || plaintext.length === 0 || !isSmallBytes(aad)) {
      return Promise.reject(new DomicileError('ERR_INPUT_INVALID', `Plaintext must be a Uint8Array of 1 to ${MAX_GCM_INPUT_BYTES} bytes and AAD one of at most ${MAX_GCM_INPUT_BYTES} bytes.`))
    }
    return this.#run(() => {
      const { module } = this.#lib
      const iv = randomBytes(IV_BYTES)
      const mechanism = this.#gcm(iv, aad)
      this.#withKey(keyId, (key) => module.C_EncryptInit(this.#session, mechanism, key))
      const out = Buffer.alloc(plaintext.length + TAG_BYTES)
      let sealed: Buffer
      try {
        sealed = module.C_Encrypt(this.#session, asBuffer(plaintext), out)
      } catch (e) {
        throw this.#mapError(e, 'encryption failed')
      }
      if (sealed.length !== plaintext.length + TAG_BYTES) {
        throw unavailable('the token returned AES-GCM output of an unexpected length', this.library, this.tokenLabel)
      }
      return {
        iv,
        ciphertext: Buffer.from(sealed.subarray(0, plaintext.length)),
        tag: Buffer.from(sealed.subarray(plaintext.length)),
      }
    })
  }

  /**
   * AES-256-GCM decrypt. Any failure of the ciphertext itself (tag, AAD, length, IV) is the one
   * opaque DecryptionFailedError; a disabled key is ERR_KEY_REVOKED; an unknown key ERR_KEY_NOT_FOUND.
   */
  decryptGcm(keyId: string, iv: Uint8Array, ciphertext: Uint8Array, tag: Uint8Array, aad: Uint8Array): Promise<Buffer> {
    /* Precondition: AAD is a byte array of at most 64 KiB. */
    if (!isSmallBytes(aad)) {
      return Promise.reject(new DomicileError('ERR_INPUT_INVALID', `AAD must be a Uint8Array of at most ${MAX_GCM_INPUT_BYTES} bytes.`))
    }
    /* Precondition: a sealed value has a 12-byte IV, a 16-byte tag and at most 64 KiB of ciphertext. */
    if (!(iv instanceof Uint8Array) || iv.length !== IV_BYTES || !(tag instanceof Uint8Array) || tag.length !== TAG_BYTES || !isSmallBytes(ciphertext)) {
      return Promise.reject(new DecryptionFailedError())
    }
    return this.#run(() => {
      const { module } = this.#lib
      const mechanism = this.#gcm(Buffer.from(iv), aad)
      this.#withKey(keyId, (key) => module.C_DecryptInit(this.#session, mechanism, key))
      const out = Buffer.alloc(ciphertext.length + TAG_BYTES)
      try {
        const opened = module.C_Decrypt(this.#session, Buffer.concat([ciphertext, tag]), out)
        if (opened.length !== ciphertext.length) throw new DecryptionFailedError()
        return Buffer.from(opened)
      } catch (e) {
        // SoftHSM reports a bad tag as CKR_GENERAL_ERROR, others as CKR_ENCRYPTED_DATA_INVALID:
        // only a lost session/device is an outage; everything else is the opaque failure.
        const ckr = ckrName(e)
        if (ckr !== undefined && SESSION_LOST.has(ckr)) throw unavailable('decryption could not run', this.library, this.tokenLabel, e)
        throw new DecryptionFailedError()
      } finally {
        out.fill(0)
      }
    })
  }

  /**
   * The revocation switch: set CKA_ENCRYPT and CKA_DECRYPT of the key. While disabled the token
   * refuses to start any encrypt/decrypt with it (ERR_KEY_REVOKED).
   */
  setEnabled(keyId: string, enabled: boolean): Promise<void> {
    return this.#run(() => {
      const { module, binding: b } = this.#lib
      this.#withKey(keyId, (key) => module.C_SetAttributeValue(this.#session, key, [
        { type: b.CKA_ENCRYPT, value: enabled },
        { type: b.CKA_DECRYPT, value: enabled },
      ]))
    })
  }

  /** Whether the key exists, is enabled, and its label. Never throws ERR_KEY_NOT_FOUND. */
  keyInfo(keyId: string): Promise<Pkcs11KeyInfo> {
    return this.#run(() => {
      const { module, binding: b } = this.#lib
      const read = (key: Pkcs11Handle) => module.C_GetAttributeValue(this.#session, key, [
        { type: b.CKA_ENCRYPT }, { type: b.CKA_DECRYPT }, { type: b.CKA_LABEL },
      ])
      let attrs
      try {
        attrs = this.#withKey(keyId, read)
      } catch (e) {
        if (e instanceof DomicileError && e.code === 'ERR_KEY_NOT_FOUND') return { exists: false, enabled: false, label: undefined }
        throw e
      }
      const value = (type: number) => attrs.find((a) => a.type === type)?.value
      const isTrue = (v: Buffer | undefined) => v !== undefined && v.length > 0 && v[0] !== 0
      return {
        exists: true,
        enabled: isTrue(value(b.CKA_ENCRYPT)) && isTrue(value(b.CKA_DECRYPT)),
        label: value(b.CKA_LABEL)?.toString('utf8'),
      }
    })
  }

  /** Destroy the key object on the token. Irreversible: everything wrapped under it is gone. */
  destroyKey(keyId: string): Promise<void> {
    return this.#run(() => {
      const { module } = this.#lib
      this.#withKey(keyId, (key) => module.C_DestroyObject(this.#session, key))
      this.#handles.delete(keyId)
    })
  }

  /** Log out (if last on the token), close the session, finalise the library (if last). Idempotent. */
  close(): Promise<void> {
    return this.#queue.run(() => lifecycleQueue.run(() => {
      if (this.#closed) return
      this.#closed = true
      this.#handles.clear()
      logout(this.#lib, this.#slot, this.#session)
      try { this.#lib.module.C_CloseSession(this.#session) } catch { /* already gone */ }
      releaseLibrary(this.#lib)
    }))
  }

  get closed(): boolean {
    return this.#closed
  }

  #run<T>(task: () => T): Promise<T> {
    return this.#queue.run(() => {
      /* Precondition: the session is open. */
      if (this.#closed) throw new DomicileError('ERR_CLOSED', `The PKCS#11 session on token "${this.tokenLabel}" is closed; open a new one.`)
      return task()
    })
  }

  #gcm(iv: Buffer, aad: Uint8Array): Pkcs11Mechanism {
    const b = this.#lib.binding
    return {
      mechanism: b.CKM_AES_GCM,
      parameter: { type: b.CK_PARAMS_AES_GCM_v240, iv, ivBits: IV_BYTES * 8, aad: asBuffer(aad), tagBits: TAG_BYTES * 8 },
    }
  }

  /**
   * Find the key object for a key id. Handles are cached, but a cached handle is confirmed by its
   * CKA_ID before use (one call instead of the three of a search): PKCS#11 lets a token reuse the
   * handle of a destroyed object, and a stale handle must never wrap under some other key.
   * Throws ERR_KEY_NOT_FOUND.
   */
  #lookup(keyId: string): Pkcs11Handle {
    const m = typeof keyId === 'string' ? KEY_ID.exec(keyId) : null
    if (m === null) throw notFound()
    const id = Buffer.from(m[1]!, 'hex')
    const { module, binding: b } = this.#lib
    const cached = this.#handles.get(keyId)
    if (cached !== undefined) {
      try {
        const [attr] = module.C_GetAttributeValue(this.#session, cached, [{ type: b.CKA_ID }])
        if (attr !== undefined && id.equals(attr.value)) return cached
      } catch {
        // stale handle: fall through to a fresh search
      }
      this.#handles.delete(keyId)
    }
    let found: Pkcs11Handle[]
    try {
      module.C_FindObjectsInit(this.#session, [
        { type: b.CKA_CLASS, value: b.CKO_SECRET_KEY },
        { type: b.CKA_TOKEN, value: true },
        { type: b.CKA_ID, value: id },
      ])
      try {
        found = module.C_FindObjects(this.#session, 2)
      } finally {
        module.C_FindObjectsFinal(this.#session)
      }
    } catch (e) {
      throw this.#mapError(e, 'could not search for the key')
    }
    /* Precondition: a key id names exactly one key object. */
    if (found.length > 1) throw new DomicileError('ERR_KEY_INVALID', 'More than one key object on the token has this key id; remove the duplicate with your HSM tooling.')
    const handle = found[0]
    if (handle === undefined) throw this.#missing()
    this.#handles.set(keyId, handle)
    return handle
  }

  /**
   * A key the token does not list: ERR_KEY_NOT_FOUND only if the token itself still answers. A
   * removed or failed token (SoftHSM lists no objects once its token directory is gone) is an
   * outage, ERR_KEY_PROVIDER_UNAVAILABLE: the provider then drops this session and reopens the
   * library, and the circuit breaker counts it; a missing key would do neither.
   */
  #missing(): DomicileError {
    try {
      this.#lib.module.C_GetTokenInfo(this.#slot)
    } catch (e) {
      return unavailable('the token is not present or not responding', this.library, this.tokenLabel, e)
    }
    return notFound()
  }

  /**
   * Run `use` with the key's handle. If it fails, the cached handle is dropped and the key looked up
   * again: a stale handle (key re-created) is retried once, a vanished key is ERR_KEY_NOT_FOUND.
   */
  #withKey<T>(keyId: string, use: (key: Pkcs11Handle) => T): T {
    const handle = this.#lookup(keyId)
    try {
      return use(handle)
    } catch (first) {
      this.#handles.delete(keyId)
      const ckr = ckrName(first)
      if (ckr === 'CKR_OBJECT_HANDLE_INVALID' || ckr === 'CKR_KEY_HANDLE_INVALID') {
        const fresh = this.#lookup(keyId)
        try {
          return use(fresh)
        } catch (second) {
          this.#handles.delete(keyId)
          throw this.#mapError(second, 'the key operation failed')
        }
      }
      throw this.#mapError(first, 'the key operation failed')
    }
  }

  #mapError(e: unknown, what: string): DomicileError {
    if (e instanceof DomicileError) return e
    const ckr = ckrName(e)
    if (ckr === 'CKR_KEY_FUNCTION_NOT_PERMITTED') {
      return new DomicileError('ERR_KEY_REVOKED', 'The HSM key is disabled (revoked) by its holder; it must be re-enabled before it can be used.')
    }
    if (ckr === 'CKR_OBJECT_HANDLE_INVALID' || ckr === 'CKR_KEY_HANDLE_INVALID') return this.#missing()
    return unavailable(what, this.library, this.tokenLabel, e)
  }
}

function notFound(): DomicileError {
  return new DomicileError('ERR_KEY_NOT_FOUND', 'No key with this id exists on the HSM token (pkcs11 key ids look like hsm_<32 hex digits>). Check the tenant key binding.')
}

function isSmallBytes(v: unknown): v is Uint8Array {
  return v instanceof Uint8Array && v.length <= MAX_GCM_INPUT_BYTES
}

/** A Buffer view of the same bytes (no copy, so nothing extra to zero). */
function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength)
}
