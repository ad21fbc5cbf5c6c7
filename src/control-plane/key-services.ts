/**
 * Key services registered per tenant, in the control plane (`domicile_key_services`): a HYOK
 * tenant's XKS proxy (endpoint, URI prefix, CA to trust, deadline) and its SigV4 credentials,
 * registered at onboarding instead of in the config file.
 *
 * The credentials are sealed, never stored in plaintext (format version 1):
 *   - a fresh 32-byte data key, wrapped by a key-encryption key created for this record at the
 *     provider-managed default provider (`keys.defaults.kms`), wrap context
 *     { tenant, region 'control-plane', dataKeyId 'xks-credentials', purpose 'data' };
 *   - the credentials JSON under AES-256-GCM with that data key, a random 96-bit nonce, and AAD
 *     binding the format, the tenant, the purpose, the endpoint, the prefix, the CA and the sealing
 *     key reference. A row whose endpoint or CA was edited (to send data keys elsewhere) no longer
 *     opens: the provider fails closed.
 * The data plane may read rows (it signs the tenant's requests); only admin work (owner) writes.
 * `replace` swaps a record's credentials, CA or deadline in place (credential rotation), re-sealed
 * under the record's sealing key, in one transaction with the caller's directory change.
 * Messages and audit records name the tenant and the proxy host, never a credential.
 */
import { randomBytes } from 'node:crypto'
import { aesGcmDecrypt, aesGcmEncrypt, GCM_NONCE_BYTES } from '../crypto/aead.js'
import { encodeLengthPrefixed } from '../crypto/length-prefix.js'
import { DomicileError, isDomicileError } from '../errors.js'
import type { WrapContext } from '../keys/key-provider.js'
import { keyServiceTenant, type KeyServiceRecord, type KeyServiceSource } from '../keys/provider-registry.js'
import type { RuntimeKeyProvider } from '../keys/runtime-key-provider.js'
import { ownerTransaction } from '../regions/owner-transaction.js'
import type { StoreDriver, StoreSession } from '../regions/store-driver.js'

const SEAL_VERSION = 1
const SEAL_PURPOSE = 'xks-credentials'

/** Public facts about a registered key service (what `tenant show` prints): no credential. */
export interface KeyServiceInfo {
  readonly tenantId: string
  readonly kind: 'xks'
  readonly endpoint: string
  readonly uriPrefix: string
  readonly trustsCustomCa: boolean
  readonly timeoutMs: number | null
  /** Where the credentials' sealing key lives: the provider name and its key id. */
  readonly sealedBy: { readonly provider: string; readonly keyId: string }
  readonly createdAt: Date
}

interface Row {
  tenant_id: string; kind: 'xks'; endpoint: string; uri_prefix: string; ca_pem: string | null; timeout_ms: number | null
  seal_version: number; seal_provider: string; seal_key_id: string; wrapped_key: Uint8Array; sealed_credentials: Uint8Array
  created_at: Date | string
}

type Sealer = (name: string) => Promise<RuntimeKeyProvider>

function wrapContext(tenantId: string): WrapContext {
  return { tenantId, region: 'control-plane', dataKeyId: SEAL_PURPOSE, purpose: 'data' }
}

function sealAad(r: { tenantId: string; endpoint: string; uriPrefix: string; caPem: string | null; sealProvider: string; sealKeyId: string }): Uint8Array {
  return encodeLengthPrefixed([`domicile-key-service-v${SEAL_VERSION}`, r.tenantId, SEAL_PURPOSE, 'xks', r.endpoint, r.uriPrefix, r.caPem ?? '', r.sealProvider, r.sealKeyId])
}

const bytes = (v: Uint8Array): Uint8Array => new Uint8Array(v.buffer, v.byteOffset, v.byteLength)

export class KeyServiceStore implements KeyServiceSource {
  readonly #store: StoreDriver
  readonly #sealProvider: string | undefined

  /**
   * @param opts.sealProvider the provider-managed default (`keys.defaults.kms`) that seals credentials.
   * @example
   * providers.useKeyServices(new KeyServiceStore(controlPlane, { sealProvider: config.keys.defaults.kms }))
   */
  constructor(store: StoreDriver, opts: { sealProvider: string | undefined }) {
    this.#store = store
    this.#sealProvider = opts.sealProvider
  }

  /**
   * Seals and stores a tenant's key service. Creates the sealing key first; anything failing after
   * that destroys it again, so a refused registration leaves no key and no row. Returns `remove`,
   * which undoes the registration (row and sealing key), for a caller whose next step failed.
   */
  async register(rec: KeyServiceRecord, sealer: Sealer, actor?: string): Promise<{ remove(): Promise<void> }> {
    const name = this.#sealProvider
    /* Precondition: a provider-managed default exists to seal the credentials with. */
    if (name === undefined || keyServiceTenant(name) !== undefined) {
      throw new DomicileError('ERR_KEY_PROVIDER_UNKNOWN', 'Registering a key service seals its credentials under the provider-managed default key: set keys.defaults.kms to a configured provider.')
    }
    const provider = await sealer(name)
    /* Precondition: the sealing provider can create a key for the record. */
    if (!provider.createKey) {
      throw new DomicileError('ERR_INPUT_INVALID', `Provider "${name}" (keys.defaults.kms) cannot create keys, so it cannot seal key-service credentials. Point keys.defaults.kms at a local, pkcs11 or aws-kms provider that can.`)
    }
    const { keyId } = await provider.createKey({ label: `${SEAL_PURPOSE}-${rec.tenantId}`, origin: 'generate' })
    const destroySealKey = async (): Promise<void> => {
      await provider.destroyKey?.(keyId).catch(() => undefined)
    }
    try {
      const uriPrefix = rec.uriPrefix ?? ''
      const caPem = rec.caPem ?? null
      const dataKey = new Uint8Array(randomBytes(32))
      let wrapped: Uint8Array
      let sealed: Uint8Array
      const plain = Buffer.from(JSON.stringify({ accessKeyId: rec.credentials.accessKeyId, secretAccessKey: rec.credentials.secretAccessKey }), 'utf8')
      try {
        wrapped = (await provider.wrapKey({ keyId, plaintextKey: dataKey, context: wrapContext(rec.tenantId) })).ciphertext
        const nonce = randomBytes(GCM_NONCE_BYTES)
        const aad = sealAad({ tenantId: rec.tenantId, endpoint: rec.endpoint, uriPrefix, caPem, sealProvider: name, sealKeyId: keyId })
        sealed = Buffer.concat([nonce, aesGcmEncrypt(dataKey, nonce, plain, aad)])
      } finally {
        dataKey.fill(0)
        plain.fill(0)
      }
      await ownerTransaction(this.#store, async (s) => {
        // A record left by a registration that crashed before its tenant was added is stale.
        await s.query('DELETE FROM domicile_key_services WHERE tenant_id = $1 AND NOT EXISTS (SELECT 1 FROM domicile_tenants WHERE id = $1)', [rec.tenantId])
        const r = await s.query(
          `INSERT INTO domicile_key_services (tenant_id, kind, endpoint, uri_prefix, ca_pem, timeout_ms, seal_version, seal_provider, seal_key_id, wrapped_key, sealed_credentials)
           VALUES ($1, 'xks', $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (tenant_id) DO NOTHING RETURNING tenant_id`,
          [rec.tenantId, rec.endpoint, uriPrefix, caPem, rec.timeoutMs ?? null, SEAL_VERSION, name, keyId, wrapped, sealed])
        if (r.rows.length === 0) throw new DomicileError('ERR_TENANT_EXISTS', `Tenant "${rec.tenantId}" already has a key service registered. Use another id.`)
        await s.query('INSERT INTO domicile_control_audit (tenant_id, type, outcome, actor, detail) VALUES ($1, $2, $3, $4, $5::jsonb)',
          [rec.tenantId, 'key-service.register', 'ok', actor ?? null, JSON.stringify({ kind: 'xks', host: new URL(rec.endpoint).host, sealProvider: name })])
      })
    } catch (e) {
      await destroySealKey()
      throw e
    }
    return {
      remove: async () => {
        await ownerTransaction(this.#store, (s) => s.query('DELETE FROM domicile_key_services WHERE tenant_id = $1 AND seal_key_id = $2', [rec.tenantId, keyId]))
        await destroySealKey()
      },
    }
  }

  /**
   * Replaces the tenant's credentials, CA and deadline (endpoint and prefix stay: `rec` must name
   * the registered ones), re-sealed under the record's own sealing key with a fresh data key and
   * nonce. One owner transaction holds the row update (guarded: the record is still the one this
   * replacement was prepared against), the `key-service.update` audit record and `within` (the
   * caller's directory change, so every process learns of it through the change feed); if any
   * part fails, nothing changes.
   */
  async replace(rec: KeyServiceRecord, sealer: Sealer, within: (s: StoreSession) => Promise<void>, opts: { actor?: string; changed: readonly string[] }): Promise<KeyServiceInfo> {
    const row = await this.#row(rec.tenantId)
    /* Precondition: the tenant has a registered key service, in a format this version writes. */
    if (!row) {
      throw new DomicileError('ERR_KEY_PROVIDER_UNKNOWN', `No key service is registered for tenant "${rec.tenantId}". Register one with "domicile tenant add ${rec.tenantId} --custody hyok --xks-endpoint URL --xks-credentials FILE --key-id K".`)
    }
    if (row.seal_version !== SEAL_VERSION || keyServiceTenant(row.seal_provider) !== undefined) {
      throw new DomicileError('ERR_CONFIG_INVALID', `The key service record of tenant "${rec.tenantId}" is in an unknown format. Upgrade Domicile, or register the key service again.`)
    }
    const uriPrefix = rec.uriPrefix ?? ''
    /* Precondition: the endpoint and the prefix are the registered ones (changing them is a new registration). */
    if (rec.endpoint !== row.endpoint || uriPrefix !== row.uri_prefix) {
      throw new DomicileError('ERR_INPUT_INVALID', `The key service of tenant "${rec.tenantId}" is registered for another endpoint; a new endpoint or URI prefix needs a new onboarding.`)
    }
    const caPem = rec.caPem ?? null
    const provider = await sealer(row.seal_provider)
    const dataKey = new Uint8Array(randomBytes(32))
    const plain = Buffer.from(JSON.stringify({ accessKeyId: rec.credentials.accessKeyId, secretAccessKey: rec.credentials.secretAccessKey }), 'utf8')
    let wrapped: Uint8Array
    let sealed: Uint8Array
    try {
      wrapped = (await provider.wrapKey({ keyId: row.seal_key_id, plaintextKey: dataKey, context: wrapContext(rec.tenantId) })).ciphertext
      const nonce = randomBytes(GCM_NONCE_BYTES)
      const aad = sealAad({ tenantId: rec.tenantId, endpoint: row.endpoint, uriPrefix, caPem, sealProvider: row.seal_provider, sealKeyId: row.seal_key_id })
      sealed = Buffer.concat([nonce, aesGcmEncrypt(dataKey, nonce, plain, aad)])
    } finally {
      dataKey.fill(0)
      plain.fill(0)
    }
    await ownerTransaction(this.#store, async (s) => {
      const r = await s.query(
        `UPDATE domicile_key_services SET ca_pem = $5, timeout_ms = $6, wrapped_key = $7, sealed_credentials = $8
         WHERE tenant_id = $1 AND seal_key_id = $2 AND endpoint = $3 AND uri_prefix = $4 AND sealed_credentials = $9 RETURNING tenant_id`,
        [rec.tenantId, row.seal_key_id, row.endpoint, row.uri_prefix, caPem, rec.timeoutMs ?? null, wrapped, sealed, bytes(row.sealed_credentials)])
      if (r.rows.length === 0) throw new DomicileError('ERR_CONFLICT', `The key service of tenant "${rec.tenantId}" changed while this update ran. Run the command again.`)
      await s.query('INSERT INTO domicile_control_audit (tenant_id, type, outcome, actor, detail) VALUES ($1, $2, $3, $4, $5::jsonb)',
        [rec.tenantId, 'key-service.update', 'ok', opts.actor ?? null, JSON.stringify({ kind: 'xks', host: new URL(row.endpoint).host, changed: opts.changed, sealProvider: row.seal_provider })])
      await within(s)
    })
    return (await this.describe(rec.tenantId))!
  }

  /** Reads the tenant's record and unseals its credentials (the registry's source). */
  async open(tenantId: string, sealer: Sealer): Promise<KeyServiceRecord> {
    const row = await this.#row(tenantId)
    /* Precondition: the tenant has a registered key service. */
    if (!row) {
      throw new DomicileError('ERR_KEY_PROVIDER_UNKNOWN', `No key service is registered for tenant "${tenantId}". Register one with "domicile tenant add ${tenantId} --custody hyok --xks-endpoint URL --xks-credentials FILE --key-id K".`)
    }
    /* Precondition: the record is sealed in a format this version reads, by a configured provider. */
    if (row.seal_version !== SEAL_VERSION || keyServiceTenant(row.seal_provider) !== undefined) {
      throw new DomicileError('ERR_CONFIG_INVALID', `The key service record of tenant "${tenantId}" is in an unknown format. Upgrade Domicile, or register the key service again.`)
    }
    const provider = await sealer(row.seal_provider)
    const caPem = row.ca_pem
    let dataKey: Uint8Array
    try {
      dataKey = await provider.unwrapKey({ keyId: row.seal_key_id, ciphertext: bytes(row.wrapped_key), context: wrapContext(tenantId) })
    } catch (e) {
      if (isDomicileError(e, 'ERR_DECRYPTION_FAILED')) throw unopenable(tenantId)
      throw e
    }
    let plain: Buffer | undefined
    try {
      const sealed = bytes(row.sealed_credentials)
      const aad = sealAad({ tenantId, endpoint: row.endpoint, uriPrefix: row.uri_prefix, caPem, sealProvider: row.seal_provider, sealKeyId: row.seal_key_id })
      plain = aesGcmDecrypt(dataKey, sealed.subarray(0, GCM_NONCE_BYTES), sealed.subarray(GCM_NONCE_BYTES), aad)
      const c = JSON.parse(plain.toString('utf8')) as { accessKeyId?: unknown; secretAccessKey?: unknown }
      if (typeof c.accessKeyId !== 'string' || typeof c.secretAccessKey !== 'string') throw unopenable(tenantId)
      return Object.freeze({
        tenantId, endpoint: row.endpoint,
        ...(row.uri_prefix !== '' ? { uriPrefix: row.uri_prefix } : {}),
        ...(caPem !== null ? { caPem } : {}),
        ...(row.timeout_ms !== null ? { timeoutMs: Number(row.timeout_ms) } : {}),
        credentials: Object.freeze({ accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey }),
      })
    } catch (e) {
      if (isDomicileError(e) && e.code !== 'ERR_DECRYPTION_FAILED') throw e
      throw unopenable(tenantId)
    } finally {
      dataKey.fill(0)
      plain?.fill(0)
    }
  }

  /** Public facts about the tenant's key service; undefined when none is registered. */
  async describe(tenantId: string): Promise<KeyServiceInfo | undefined> {
    const row = await this.#row(tenantId)
    if (!row) return undefined
    return Object.freeze({
      tenantId, kind: row.kind, endpoint: row.endpoint, uriPrefix: row.uri_prefix, trustsCustomCa: row.ca_pem !== null,
      timeoutMs: row.timeout_ms === null ? null : Number(row.timeout_ms),
      sealedBy: Object.freeze({ provider: row.seal_provider, keyId: row.seal_key_id }), createdAt: new Date(row.created_at),
    })
  }

  async #row(tenantId: string): Promise<Row | undefined> {
    const r = await this.#store.withSession((s) => s.query<Row>('SELECT * FROM domicile_key_services WHERE tenant_id = $1', [tenantId]))
    return r.rows[0]
  }
}

function unopenable(tenantId: string): DomicileError {
  return new DomicileError('ERR_KEY_PROVIDER_UNAVAILABLE', `The key service record of tenant "${tenantId}" could not be unsealed (it was edited, or its sealing key is disabled or gone). Restore the sealing key, or register the key service again.`)
}
