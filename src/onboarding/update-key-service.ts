/**
 * Changing a registered key service while everything runs: new SigV4 credentials (the customer
 * rotated them at the proxy), another CA certificate to trust, another deadline. The endpoint and
 * URI prefix stay; a service elsewhere is a new onboarding.
 *
 * Order: the new settings are checked against the proxy first (health check, key state, a test
 * wrap/unwrap with the tenant's key: the same checks as onboarding), with nothing stored yet; then
 * the record is re-sealed and replaced in one control-plane owner transaction together with a
 * directory change for the tenant and the `key-service.update` audit record. Every process learns
 * of the change through the directory (change feed, or the one-second re-read of an unwatched
 * process) and resolves the tenant's key service again (src/keys/provider-registry.ts). A refused
 * check or a failed write leaves the old record as it was.
 */
import { X509Certificate } from 'node:crypto'
import { KeyServiceStore, type KeyServiceInfo } from '../control-plane/key-services.js'
import { assertTenantId, type TenantRecord } from '../control-plane/tenant-directory.js'
import type { Domicile } from '../domicile.js'
import { internalsOf } from '../domicile-internals.js'
import { DomicileError } from '../errors.js'
import { keyServiceProvider, keyServiceProviderName, type KeyServiceRecord } from '../keys/provider-registry.js'
import type { XksKeyProvider } from '../keys/providers/xks/xks-key-provider.js'
import { RuntimeKeyProvider } from '../keys/runtime-key-provider.js'
import { checkKeyRoundTrip, checkXksHealth, CHECK_TIMEOUT_MS } from './key-checks.js'

export interface UpdateKeyServiceRequest {
  readonly id: string
  /** New SigV4 credentials (as configured at the proxy: `keyproxy rotate-credentials` prints them to its file). */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string }
  /** PEM certificate(s) to trust for the proxy from now on. */
  readonly caPem?: string
  /** Deadline per key call at run time (ms, 1..60000). */
  readonly timeoutMs?: number
  /** Recorded in the control-plane audit. */
  readonly actor?: string
}

export interface UpdateKeyServiceResult {
  readonly tenant: TenantRecord
  /** Public facts about the service after the update (never a credential). */
  readonly keyService: KeyServiceInfo
  /** What changed: 'credentials', 'ca', 'timeout'. */
  readonly changed: readonly string[]
}

function invalid(message: string, path: string): DomicileError {
  return new DomicileError('ERR_INPUT_INVALID', message, { path })
}

/** Every check that needs no remote call. */
function validate(req: UpdateKeyServiceRequest): string[] {
  assertTenantId(req.id)
  const changed: string[] = []
  if (req.credentials !== undefined) {
    const c = req.credentials
    /* Precondition: both halves of the new credential are given. */
    if (typeof c.accessKeyId !== 'string' || c.accessKeyId === '' || typeof c.secretAccessKey !== 'string' || c.secretAccessKey === '') {
      throw invalid('credentials: accessKeyId and secretAccessKey are required (the SigV4 credential configured at the proxy).', 'credentials')
    }
    changed.push('credentials')
  }
  if (req.caPem !== undefined) {
    /* Precondition: the CA to trust is a PEM certificate. */
    try {
      new X509Certificate(req.caPem)
    } catch {
      throw invalid('caPem: not a PEM certificate. Pass the proxy\'s certificate or its CA certificate.', 'caPem')
    }
    changed.push('ca')
  }
  if (req.timeoutMs !== undefined) {
    /* Precondition: the deadline is a bounded number of milliseconds. */
    if (!Number.isInteger(req.timeoutMs) || req.timeoutMs <= 0 || req.timeoutMs > 60_000) throw invalid('timeoutMs: expected an integer from 1 to 60000 (milliseconds).', 'timeoutMs')
    changed.push('timeout')
  }
  /* Precondition: something is to change. */
  if (changed.length === 0) throw invalid('Nothing to update: give new credentials, a CA certificate or a timeout.', 'credentials')
  return changed
}

/**
 * Replaces a HYOK tenant's registered key-service credentials (and/or CA, deadline) after the new
 * settings passed the proxy's health check and a test round trip with the tenant's key.
 *
 * @example
 * await updateKeyService(domicile, { id: 'acme', credentials: { accessKeyId, secretAccessKey } })
 */
export async function updateKeyService(d: Domicile, req: UpdateKeyServiceRequest): Promise<UpdateKeyServiceResult> {
  const changed = validate(req)
  const { directory, controlPlane, config, providers } = internalsOf(d)
  /* Precondition: providers are configured (the sealing key lives at one). */
  if (!providers) throw new DomicileError('ERR_KEY_PROVIDER_UNKNOWN', 'No key providers are configured for this instance.')
  const entry = await directory.fresh(req.id)
  const name = keyServiceProviderName(req.id)
  /* Precondition: the tenant's key is held by its registered key service. */
  if (!entry.key || entry.key.provider !== name) {
    throw new DomicileError('ERR_KEY_PROVIDER_UNKNOWN', `Tenant "${req.id}" has no registered key service (its key is ${entry.key ? `at provider "${entry.key.provider}"` : 'not bound'}). update-key-service changes a key service registered with "domicile tenant add ${req.id} --custody hyok --xks-endpoint ...".`)
  }
  /* Precondition: a destroyed key has no use for a key service. */
  if (entry.keyState === 'destroyed') throw new DomicileError('ERR_KEY_DESTROYED', `The key of tenant "${req.id}" was destroyed; its key service is no longer used.`)
  const store = new KeyServiceStore(controlPlane, { sealProvider: config?.keys.defaults.kms })
  const sealer = async (n: string): Promise<RuntimeKeyProvider> => (await providers.get(n)).runtime
  const current = await store.open(req.id, sealer)
  const next: KeyServiceRecord = {
    tenantId: req.id, endpoint: current.endpoint,
    ...(current.uriPrefix !== undefined ? { uriPrefix: current.uriPrefix } : {}),
    ...(req.caPem !== undefined ? { caPem: req.caPem } : current.caPem !== undefined ? { caPem: current.caPem } : {}),
    ...(req.timeoutMs !== undefined ? { timeoutMs: req.timeoutMs } : current.timeoutMs !== undefined ? { timeoutMs: current.timeoutMs } : {}),
    credentials: req.credentials !== undefined
      ? { accessKeyId: req.credentials.accessKeyId, secretAccessKey: req.credentials.secretAccessKey }
      : current.credentials,
  }
  // 1. The new settings against the proxy, nothing stored yet: health, key state, round trip.
  const raw = await keyServiceProvider(name, { ...next, timeoutMs: CHECK_TIMEOUT_MS }) as XksKeyProvider
  const probe = new RuntimeKeyProvider(raw, { timeoutMs: CHECK_TIMEOUT_MS })
  try {
    await checkXksHealth(raw)
    await checkKeyRoundTrip(probe, entry.key.keyId, req.id, entry.region)
  } finally {
    await probe.close().catch(() => undefined)
  }
  // 2. Re-seal and replace, with the directory change (guarded: the entry the check used) in the same transaction.
  let tenant: TenantRecord | undefined
  const keyService = await store.replace(next, sealer, async (s) => {
    tenant = await directory.updateWithin(s, req.id, {}, 'key-service:update', { version: entry.version })
  }, { changed, ...(req.actor !== undefined ? { actor: req.actor } : {}) })
  // 3. This process's own view: the entry and the provider are read again at the next use.
  directory.invalidate(req.id)
  await providers.forget(name)
  return Object.freeze({ tenant: tenant!, keyService, changed: Object.freeze(changed) })
}
