/**
 * The `aws-kms` key provider: wraps data keys with AWS KMS Encrypt / Decrypt under a customer
 * managed key, binding the wrap context as the KMS encryption context
 * ({ tenant, region, dataKey, purpose }), so CloudTrail shows which tenant's key was used and a
 * wrapped key only decrypts under the same context.
 *
 * `@aws-sdk/client-kms` is an optional dependency, imported lazily on first use; the subset used is
 * described structurally below so that no SDK type leaks out of this module. Deadlines, length
 * checks and audit are RuntimeKeyProvider's job; the AbortSignal it passes goes to `client.send`.
 *
 * Destruction is ScheduleKeyDeletion: KMS never deletes a key at once. The key is refused from the
 * moment it is scheduled ('deleted' here, KMS state PendingDeletion) and its material is deleted
 * after the waiting period (7 days by default here, the shortest KMS allows); until then the key's
 * holder can cancel the deletion in KMS. Shred certificates say so.
 */

import { DecryptionFailedError, DomicileError } from '../../errors.js'
import type { DestroyKeyResult, KeyProvider, KeyState, KeyStatus, OpOptions, UnwrapRequest, WrapContext, WrappedKey, WrapRequest } from '../key-provider.js'

/** The subset of a KMS client used here (satisfied by `KMSClient` of @aws-sdk/client-kms). */
export interface KmsClientLike {
  send(command: unknown, options?: { abortSignal?: AbortSignal }): Promise<unknown>
  destroy?(): void
}

export interface AwsCredentials {
  readonly accessKeyId: string
  readonly secretAccessKey: string
  readonly sessionToken?: string
}

export interface AwsKmsKeyProviderOptions {
  /** Instance name from config, e.g. "kms-eu". */
  readonly name: string
  /** AWS region of the KMS keys, e.g. "eu-west-1". */
  readonly region: string
  /** Override the KMS endpoint (VPC endpoint, FIPS endpoint, or a local contract-test server). */
  readonly endpoint?: string
  /** Static credentials; default: the SDK's default credential chain. */
  readonly credentials?: AwsCredentials
  /** A ready client, or a lazy factory; default: a `KMSClient` built from the options above. */
  readonly client?: KmsClientLike | (() => Promise<KmsClientLike>)
  /** SDK attempts per call (retries included); default: the SDK's. The runtime deadline still applies. */
  readonly maxAttempts?: number
  /** Waiting period of destroyKey (ScheduleKeyDeletion PendingWindowInDays), 7 to 30. Default 7. */
  readonly deletionWindowDays?: number
}

/** The shortest waiting period KMS allows before it deletes a key. */
export const MIN_DELETION_WINDOW_DAYS = 7
const MAX_DELETION_WINDOW_DAYS = 30

/** The command constructors used here, as exported by @aws-sdk/client-kms. */
interface KmsModule {
  KMSClient: new (config: Record<string, unknown>) => KmsClientLike
  EncryptCommand: new (input: { KeyId: string; Plaintext: Uint8Array; EncryptionContext: Record<string, string> }) => unknown
  DecryptCommand: new (input: { KeyId: string; CiphertextBlob: Uint8Array; EncryptionContext: Record<string, string> }) => unknown
  DescribeKeyCommand: new (input: { KeyId: string }) => unknown
  ScheduleKeyDeletionCommand: new (input: { KeyId: string; PendingWindowInDays: number }) => unknown
}

const STATES: Readonly<Record<string, KeyState>> = {
  Enabled: 'enabled',
  Disabled: 'disabled',
  PendingImport: 'pending-import',
  PendingDeletion: 'deleted',
  PendingReplicaDeletion: 'deleted',
  Unavailable: 'unavailable',
  Creating: 'unavailable',
  Updating: 'unavailable',
}

/** The KMS encryption context for a wrap context. */
export function kmsEncryptionContext(ctx: WrapContext): Record<string, string> {
  return { tenant: ctx.tenantId, region: ctx.region, dataKey: ctx.dataKeyId, purpose: ctx.purpose }
}

export class AwsKmsKeyProvider implements KeyProvider {
  readonly kind = 'aws-kms' as const
  readonly name: string
  readonly region: string
  readonly #opts: AwsKmsKeyProviderOptions
  #ready: Promise<{ sdk: KmsModule; client: KmsClientLike; owned: boolean }> | undefined

  constructor(opts: AwsKmsKeyProviderOptions) {
    /* Precondition: the provider has a name and a region. */
    if (typeof opts?.name !== 'string' || opts.name === '' || typeof opts.region !== 'string' || opts.region === '') {
      throw new DomicileError('ERR_CONFIG_INVALID', 'the aws-kms key provider needs a name and an AWS region', { path: typeof opts?.name === 'string' && opts.name !== '' ? 'region' : 'name' })
    }
    const days = opts.deletionWindowDays ?? MIN_DELETION_WINDOW_DAYS
    /* Precondition: the deletion waiting period is an integer from 7 to 30 days (what KMS accepts). */
    if (!Number.isInteger(days) || days < MIN_DELETION_WINDOW_DAYS || days > MAX_DELETION_WINDOW_DAYS) {
      throw new DomicileError('ERR_CONFIG_INVALID', `the aws-kms deletionWindowDays must be an integer from ${MIN_DELETION_WINDOW_DAYS} to ${MAX_DELETION_WINDOW_DAYS}`, { path: 'deletionWindowDays' })
    }
    this.name = opts.name
    this.region = opts.region
    this.#opts = opts
  }

  async wrapKey(req: WrapRequest, opts?: OpOptions): Promise<WrappedKey> {
    const { sdk, client } = await this.#client()
    const out = await this.#send(client, new sdk.EncryptCommand({
      KeyId: req.keyId,
      Plaintext: req.plaintextKey,
      EncryptionContext: kmsEncryptionContext(req.context),
    }), req.keyId, opts, false) as { CiphertextBlob?: unknown }
    if (!(out?.CiphertextBlob instanceof Uint8Array)) throw this.#malformed('Encrypt')
    return { keyId: req.keyId, ciphertext: out.CiphertextBlob }
  }

  async unwrapKey(req: UnwrapRequest, opts?: OpOptions): Promise<Uint8Array> {
    const { sdk, client } = await this.#client()
    const out = await this.#send(client, new sdk.DecryptCommand({
      KeyId: req.keyId,
      CiphertextBlob: req.ciphertext,
      EncryptionContext: kmsEncryptionContext(req.context),
    }), req.keyId, opts, true) as { Plaintext?: unknown }
    if (!(out?.Plaintext instanceof Uint8Array)) throw new DecryptionFailedError()
    return out.Plaintext
  }

  async keyStatus(keyId: string, opts?: OpOptions): Promise<KeyStatus> {
    const { sdk, client } = await this.#client()
    const out = await this.#send(client, new sdk.DescribeKeyCommand({ KeyId: keyId }), keyId, opts, false) as { KeyMetadata?: { KeyState?: unknown } }
    const state = out?.KeyMetadata?.KeyState
    if (typeof state !== 'string') throw this.#malformed('DescribeKey')
    return { keyId, state: STATES[state] ?? 'unavailable' }
  }

  /**
   * Schedule the key's deletion (ScheduleKeyDeletion): refused from now on, its material deleted by
   * KMS at `deletionDate`. A key already pending deletion answers with its existing date (so an
   * interrupted destruction can run again).
   */
  async destroyKey(keyId: string, opts?: OpOptions): Promise<DestroyKeyResult> {
    const { sdk, client } = await this.#client()
    const days = this.#opts.deletionWindowDays ?? MIN_DELETION_WINDOW_DAYS
    let out: { DeletionDate?: unknown }
    try {
      out = await this.#send(client, new sdk.ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: days }), keyId, opts, false) as { DeletionDate?: unknown }
    } catch (e) {
      if (!(e instanceof DomicileError) || e.code !== 'ERR_KEY_REVOKED') throw e
      // KMSInvalidStateException: already pending deletion (or pending import, disabled is fine for KMS).
      const described = await this.#send(client, new sdk.DescribeKeyCommand({ KeyId: keyId }), keyId, opts, false) as { KeyMetadata?: { KeyState?: unknown; DeletionDate?: unknown } }
      if (described?.KeyMetadata?.KeyState !== 'PendingDeletion') throw e
      out = { DeletionDate: described.KeyMetadata.DeletionDate }
    }
    const when = toDate(out?.DeletionDate)
    if (when === undefined) throw this.#malformed('ScheduleKeyDeletion')
    return { keyId, state: 'pending-deletion', deletionDate: when }
  }

  /** Destroy the client if this provider created it. */
  async close(): Promise<void> {
    const ready = this.#ready
    this.#ready = undefined
    if (ready === undefined) return
    try {
      const { client, owned } = await ready
      if (owned) client.destroy?.()
    } catch {
      // never got a client: nothing to close
    }
  }

  #client(): Promise<{ sdk: KmsModule; client: KmsClientLike; owned: boolean }> {
    if (this.#ready === undefined) {
      const ready = this.#connect()
      this.#ready = ready
      ready.catch(() => { if (this.#ready === ready) this.#ready = undefined }) // retry setup next time
    }
    return this.#ready
  }

  async #connect(): Promise<{ sdk: KmsModule; client: KmsClientLike; owned: boolean }> {
    let sdk: KmsModule
    try {
      sdk = (await import('@aws-sdk/client-kms')) as unknown as KmsModule
    } catch (e) {
      throw new DomicileError('ERR_CONFIG_INVALID', 'the aws-kms key provider needs the optional package @aws-sdk/client-kms; install it with: npm install @aws-sdk/client-kms', { cause: e })
    }
    const given = this.#opts.client
    if (given !== undefined) return { sdk, client: typeof given === 'function' ? await given() : given, owned: false }
    const o = this.#opts
    const client = new sdk.KMSClient({
      region: o.region,
      ...(o.endpoint === undefined ? {} : { endpoint: o.endpoint }),
      ...(o.credentials === undefined ? {} : { credentials: { ...o.credentials } }),
      ...(o.maxAttempts === undefined ? {} : { maxAttempts: o.maxAttempts }),
    })
    return { sdk, client, owned: true }
  }

  async #send(client: KmsClientLike, command: unknown, keyId: string, opts: OpOptions | undefined, isDecrypt: boolean): Promise<unknown> {
    try {
      return await client.send(command, opts?.signal === undefined ? {} : { abortSignal: opts.signal })
    } catch (e) {
      throw this.#mapError(e, keyId, isDecrypt)
    }
  }

  /** KMS exception names to Domicile codes. Messages never repeat what KMS said (it may echo input). */
  #mapError(e: unknown, keyId: string, isDecrypt: boolean): Error {
    const name = typeof (e as { name?: unknown })?.name === 'string' ? (e as { name: string }).name : ''
    switch (name) {
      case 'DisabledException':
        return new DomicileError('ERR_KEY_REVOKED', `AWS KMS key ${keyId} is disabled; its holder must enable it before it can be used`)
      case 'KMSInvalidStateException':
        return new DomicileError('ERR_KEY_REVOKED', `AWS KMS key ${keyId} is not usable in its current state (pending deletion, pending import or disabled); check the key in KMS`)
      case 'NotFoundException':
        return new DomicileError('ERR_KEY_NOT_FOUND', `AWS KMS key ${keyId} was not found in ${this.region}; check the key binding's keyId and region`)
      case 'InvalidCiphertextException':
      case 'IncorrectKeyException':
        return new DecryptionFailedError()
      default: {
        const shown = /^[A-Za-z]{1,64}$/.test(name) ? ` (${name})` : ''
        const msg = `AWS KMS in ${this.region} did not complete the request${shown}; check network access, credentials and throttling`
        // No cause on decrypt: the SDK error may carry request details.
        return isDecrypt ? new DomicileError('ERR_KEY_PROVIDER_UNAVAILABLE', msg) : new DomicileError('ERR_KEY_PROVIDER_UNAVAILABLE', msg, { cause: e })
      }
    }
  }

  #malformed(op: string): DomicileError {
    return new DomicileError('ERR_KEY_PROVIDER_UNAVAILABLE', `AWS KMS ${op} returned an unexpected response; check the endpoint is AWS KMS`)
  }
}

/** A KMS timestamp as the SDK gives it (a Date), or epoch seconds (the wire format). */
function toDate(v: unknown): Date | undefined {
  const d = v instanceof Date ? v : typeof v === 'number' ? new Date(v * 1000) : undefined
  return d !== undefined && Number.isFinite(d.getTime()) ? d : undefined
}

/**
 * Create the aws-kms key provider.
 * @example
 * const kms = createAwsKmsKeyProvider({ name: 'kms-eu', region: 'eu-west-1' })
 * const provider = new RuntimeKeyProvider(kms)
 */
export function createAwsKmsKeyProvider(opts: AwsKmsKeyProviderOptions): AwsKmsKeyProvider {
  return new AwsKmsKeyProvider(opts)
}
