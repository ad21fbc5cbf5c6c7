/**
 * The `local` key provider: the embedded default. Key-encryption keys live in a keystore directory
 * (one JSON file per key, sealed under a root key) and support the BYOK import flow of AWS KMS
 * (create key with origin 'import', get an import job, import RSA-OAEP-wrapped material, delete
 * material to revoke, re-import the same material to restore), and irreversible destruction of a
 * key (its file overwritten and removed).
 *
 * Every operation re-reads the key file, so a disable or delete by another process applies at
 * once; no KEK is kept in memory between calls. Invariants common to all providers (lengths,
 * deadlines, audit) are RuntimeKeyProvider's job, not this module's.
 *
 * The root key comes from the `rootKey` option, else DOMICILE_ROOT_KEY, else a root key file kept by
 * default BESIDE the keystore directory: `<dir>.root.key` (`.domicile/keys.root.key` for the default
 * keystore), or `<dir>/root.key` where an older keystore has one. It is generated only for a keystore
 * without keys; a missing root key with keys present is refused (root-key.ts).
 */

import { randomBytes } from 'node:crypto'
import { DomicileError } from '../../../errors.js'
import type { CreateKeyRequest, DestroyKeyResult, KeyProvider, KeyStatus, OpOptions, UnwrapRequest, WrappedKey, WrapRequest } from '../../key-provider.js'
import { decryptImportedMaterial, importTokenMatches, issueImportJob } from './import-job.js'
import { Keystore, notFound } from './keystore.js'
import type { KeyRecord } from './keystore.js'
import { loadRootKey } from './root-key.js'
import type { RootKey } from './root-key.js'
import { openDataKey, sealDataKey } from './wrap-format.js'

export interface LocalKeyProviderOptions {
  /** Instance name from config. Default 'local'. */
  readonly name?: string
  /** Keystore directory (created with mode 0700 if missing). */
  readonly dir: string
  /** 32-byte root key; else DOMICILE_ROOT_KEY; else the root key file (see `rootKeyFile`). */
  readonly rootKey?: Uint8Array
  /**
   * Root key file (base64, mode 0600) when neither `rootKey` nor DOMICILE_ROOT_KEY is set. Default:
   * `<dir>/root.key` if that file exists (older keystores), else `<dir>.root.key`, beside the keystore
   * directory. Generated only while the keystore holds no keys.
   */
  readonly rootKeyFile?: string
  /** Clock in ms (import-job expiry, timestamps). Default `Date.now`. */
  readonly now?: () => number
}

/** What the key holder needs to wrap their material for import. */
export interface ImportJob {
  /** RSA-3072 SPKI public key (PEM); encrypt the 32-byte material with RSAES-OAEP-SHA-256 under it. */
  readonly wrappingPublicKeyPem: string
  /** Hand this back with the material. Shown once; only its hash is stored. */
  readonly importToken: string
  readonly expiresAt: Date
}

export interface ImportKeyMaterialRequest {
  /** Raw RSAES-OAEP-SHA-256 ciphertext of exactly 32 bytes of key material (as AWS KMS ImportKeyMaterial takes). */
  readonly encryptedMaterial: Uint8Array
  readonly importToken: string
}

const KEK_BYTES = 32

export class LocalKeyProvider implements KeyProvider {
  readonly kind = 'local' as const
  readonly name: string
  readonly dir: string
  readonly #root: RootKey
  readonly #store: Keystore
  readonly #now: () => number
  #closed = false

  constructor(opts: LocalKeyProviderOptions) {
    /* Precondition: a keystore directory is given. */
    if (typeof opts?.dir !== 'string' || opts.dir === '') {
      throw new DomicileError('ERR_CONFIG_INVALID', 'the local key provider needs a keystore directory (dir)', { path: 'dir' })
    }
    /* Precondition: the provider name, when given, is a non-empty string. */
    if (opts.name !== undefined && (typeof opts.name !== 'string' || opts.name === '')) {
      throw new DomicileError('ERR_CONFIG_INVALID', 'the local key provider name must be a non-empty string', { path: 'name' })
    }
    this.name = opts.name ?? 'local'
    this.dir = opts.dir
    this.#now = opts.now ?? Date.now
    this.#root = loadRootKey({
      dir: opts.dir,
      ...(opts.rootKey === undefined ? {} : { rootKey: opts.rootKey }),
      ...(opts.rootKeyFile === undefined ? {} : { rootKeyFile: opts.rootKeyFile }),
    })
    this.#store = new Keystore(opts.dir)
  }

  async wrapKey(req: WrapRequest, opts?: OpOptions): Promise<WrappedKey> {
    const rec = await this.#usable(req.keyId, opts)
    const kek = this.#openMaterial(rec)
    try {
      return { keyId: rec.keyId, ciphertext: sealDataKey(kek, req.plaintextKey, req.context) }
    } finally {
      kek.fill(0)
    }
  }

  async unwrapKey(req: UnwrapRequest, opts?: OpOptions): Promise<Uint8Array> {
    const rec = await this.#usable(req.keyId, opts)
    const kek = this.#openMaterial(rec)
    try {
      return openDataKey(kek, req.ciphertext, req.context)
    } finally {
      kek.fill(0)
    }
  }

  async keyStatus(keyId: string, opts?: OpOptions): Promise<KeyStatus> {
    const rec = await this.#read(keyId, opts)
    return { keyId, state: rec.state }
  }

  /**
   * Create a key: origin 'generate' makes fresh material (enabled); 'import' starts pending-import.
   * @example
   * const { keyId } = await local.createKey({ label: 'acme', origin: 'import' })
   */
  async createKey(req: CreateKeyRequest, opts?: OpOptions): Promise<{ keyId: string }> {
    this.#assertOpen()
    opts?.signal?.throwIfAborted()
    /* Precondition: a created key has a non-empty label and origin 'generate' or 'import'. */
    if (typeof req?.label !== 'string' || req.label === '' || (req.origin !== 'generate' && req.origin !== 'import')) {
      throw new DomicileError('ERR_INPUT_INVALID', "createKey needs a non-empty label and origin 'generate' or 'import'")
    }
    const keyId = Keystore.newKeyId()
    const at = new Date(this.#now()).toISOString()
    let material = null
    let fingerprint = null
    if (req.origin === 'generate') {
      const kek = Buffer.alloc(KEK_BYTES)
      randomBytes(KEK_BYTES).copy(kek)
      try {
        material = this.#root.sealMaterial(keyId, kek)
        fingerprint = this.#root.fingerprint(keyId, kek)
      } finally {
        kek.fill(0)
      }
    }
    await this.#store.create({
      v: 1, keyId, label: req.label, origin: req.origin,
      state: req.origin === 'generate' ? 'enabled' : 'pending-import',
      createdAt: at, updatedAt: at, material, fingerprint, importJob: null,
    })
    return { keyId }
  }

  /**
   * Start (or restart) a BYOK import for a key created with origin 'import'. A new job replaces
   * the previous one; it is valid for 24 hours.
   * @example
   * const job = await local.createImportJob(keyId)
   * const encryptedMaterial = publicEncrypt({ key: job.wrappingPublicKeyPem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, material)
   */
  async createImportJob(keyId: string, opts?: OpOptions): Promise<ImportJob> {
    this.#assertOpen()
    opts?.signal?.throwIfAborted()
    let issued: Awaited<ReturnType<typeof issueImportJob>> | undefined
    await this.#store.update(keyId, async (rec) => {
      /* Precondition: only keys created with origin 'import' take imported material. */
      if (rec.origin !== 'import') {
        throw new DomicileError('ERR_KEY_IMPORT_INVALID', `local key ${keyId} was created with origin 'generate'; only keys created with origin 'import' take imported material`)
      }
      issued = await issueImportJob(this.#root, keyId, this.#now())
      return { ...rec, importJob: issued.record, updatedAt: new Date(this.#now()).toISOString() }
    })
    const job = issued!
    return { wrappingPublicKeyPem: job.wrappingPublicKeyPem, importToken: job.importToken, expiresAt: job.expiresAt }
  }

  /**
   * Import the key holder's material (RSAES-OAEP-SHA-256 under the current job's public key).
   * A key that ever had material only takes back that same material. Success enables the key and
   * consumes the job.
   */
  async importKeyMaterial(keyId: string, req: ImportKeyMaterialRequest, opts?: OpOptions): Promise<void> {
    this.#assertOpen()
    opts?.signal?.throwIfAborted()
    /* Precondition: the encrypted material is a Uint8Array. */
    if (!(req?.encryptedMaterial instanceof Uint8Array)) {
      throw new DomicileError('ERR_INPUT_INVALID', 'encryptedMaterial must be a Uint8Array (the raw RSAES-OAEP-SHA-256 ciphertext)', { path: 'encryptedMaterial' })
    }
    await this.#store.update(keyId, (rec) => {
      /* Precondition: only keys created with origin 'import' take imported material. */
      if (rec.origin !== 'import') {
        throw new DomicileError('ERR_KEY_IMPORT_INVALID', `local key ${keyId} was created with origin 'generate'; only keys created with origin 'import' take imported material`)
      }
      const job = rec.importJob
      /* Precondition: the key has a current import job. */
      if (job === null) {
        throw new DomicileError('ERR_KEY_IMPORT_INVALID', `local key ${keyId} has no current import job; call createImportJob first`)
      }
      /* Precondition: the import token is the current job's (checked in constant time). */
      if (!importTokenMatches(job, req.importToken)) {
        throw new DomicileError('ERR_KEY_IMPORT_INVALID', `the import token does not match the current import job of local key ${keyId}; use the token from the latest createImportJob`)
      }
      /* Precondition: the import job has not expired. */
      if (this.#now() >= Date.parse(job.expiresAt)) {
        throw new DomicileError('ERR_KEY_IMPORT_INVALID', `the import job of local key ${keyId} has expired; call createImportJob for a new one`)
      }
      const material = decryptImportedMaterial(this.#root, keyId, job, req.encryptedMaterial)
      try {
        /* Precondition: a key that had material only takes back the same material. */
        if (rec.fingerprint !== null && !this.#root.fingerprintMatches(keyId, material, rec.fingerprint)) {
          throw new DomicileError('ERR_KEY_IMPORT_INVALID', `local key ${keyId} already had different key material; a BYOK key only takes back the same material (create a new key for new material)`)
        }
        return {
          ...rec,
          state: 'enabled',
          material: this.#root.sealMaterial(keyId, material),
          fingerprint: rec.fingerprint ?? this.#root.fingerprint(keyId, material),
          importJob: null,
          updatedAt: new Date(this.#now()).toISOString(),
        }
      } finally {
        material.fill(0)
      }
    })
  }

  /**
   * Delete a key's material (the BYOK kill switch): state 'deleted', every data key wrapped under it
   * stops unwrapping at once. The fingerprint stays, so only the same material can be re-imported.
   * For origin 'generate' keys this is permanent.
   */
  async deleteKeyMaterial(keyId: string, opts?: OpOptions): Promise<void> {
    this.#assertOpen()
    opts?.signal?.throwIfAborted()
    await this.#store.update(keyId, (rec) => ({ ...rec, state: 'deleted', material: null, importJob: null, updatedAt: new Date(this.#now()).toISOString() }))
  }

  /**
   * Destroy a key for good: its key file (sealed material, fingerprint, import job) is overwritten
   * in place and removed (keystore.ts `destroy`). Every key wrapped under it stops unwrapping, the
   * key id is unknown from then on (ERR_KEY_NOT_FOUND), and no re-import can bring it back, not even
   * of the same BYOK material.
   * @example
   * await local.destroyKey(keyId) // { keyId, state: 'destroyed' }
   */
  async destroyKey(keyId: string, opts?: OpOptions): Promise<DestroyKeyResult> {
    this.#assertOpen()
    opts?.signal?.throwIfAborted()
    await this.#store.destroy(keyId)
    return { keyId, state: 'destroyed' }
  }

  /** Disable an enabled key (reversible revoke). No effect on keys without material. */
  async disableKey(keyId: string, opts?: OpOptions): Promise<void> {
    this.#assertOpen()
    opts?.signal?.throwIfAborted()
    await this.#store.update(keyId, (rec) => rec.state === 'enabled' ? { ...rec, state: 'disabled', updatedAt: new Date(this.#now()).toISOString() } : rec)
  }

  /** Enable a disabled key. A deleted or pending-import key needs its material imported instead. */
  async enableKey(keyId: string, opts?: OpOptions): Promise<void> {
    this.#assertOpen()
    opts?.signal?.throwIfAborted()
    await this.#store.update(keyId, (rec) => {
      /* Precondition: the key has material to enable. */
      if (rec.state === 'pending-import' || rec.state === 'deleted' || rec.material === null) {
        throw new DomicileError(rec.state === 'pending-import' ? 'ERR_KEY_PENDING_IMPORT' : 'ERR_KEY_REVOKED',
          `local key ${keyId} has no key material; import it with createImportJob and importKeyMaterial`)
      }
      return rec.state === 'disabled' ? { ...rec, state: 'enabled', updatedAt: new Date(this.#now()).toISOString() } : rec
    })
  }

  /** Zero the root-derived keys; later calls fail with ERR_CLOSED. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#root.destroy()
  }

  #assertOpen(): void {
    /* Precondition: the provider has not been closed. */
    if (this.#closed) throw new DomicileError('ERR_CLOSED', `key provider ${this.name} is closed; create a new one`)
  }

  async #read(keyId: string, opts?: OpOptions): Promise<KeyRecord> {
    this.#assertOpen()
    opts?.signal?.throwIfAborted()
    const rec = await this.#store.read(keyId, opts?.signal)
    if (rec === undefined) throw notFound(keyId)
    return rec
  }

  async #usable(keyId: string, opts?: OpOptions): Promise<KeyRecord> {
    const rec = await this.#read(keyId, opts)
    /* Precondition: the key is not disabled or deleted (revoked). */
    if (rec.state === 'disabled' || rec.state === 'deleted') {
      throw new DomicileError('ERR_KEY_REVOKED', `local key ${keyId} is ${rec.state}; its holder must ${rec.state === 'disabled' ? 'enable it' : 're-import its material'} before it can be used`)
    }
    /* Precondition: a BYOK key has its material imported. */
    if (rec.state === 'pending-import') {
      throw new DomicileError('ERR_KEY_PENDING_IMPORT', `local key ${keyId} has no key material yet; create an import job and import the material`)
    }
    return rec
  }

  #openMaterial(rec: KeyRecord): Buffer {
    if (rec.material === null) {
      throw new DomicileError('ERR_KEY_PROVIDER_UNAVAILABLE', `the local keystore file for key ${rec.keyId} is enabled but holds no material; restore it from backup`)
    }
    try {
      return this.#root.openMaterial(rec.keyId, rec.material)
    } catch {
      throw new DomicileError('ERR_KEY_PROVIDER_UNAVAILABLE', `local key ${rec.keyId} cannot be opened with this root key (from ${this.#root.source}); check DOMICILE_ROOT_KEY or the root key file`)
    }
  }
}

/**
 * Create the local key provider.
 * @example
 * const local = createLocalKeyProvider({ dir: './.domicile/keys' })
 * const { keyId } = await local.createKey({ label: 'acme', origin: 'generate' })
 */
export function createLocalKeyProvider(opts: LocalKeyProviderOptions): LocalKeyProvider {
  return new LocalKeyProvider(opts)
}
