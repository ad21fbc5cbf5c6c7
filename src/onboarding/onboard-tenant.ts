/**
 * Onboarding in one step, for every rung of the custody ladder: a tenant pinned to its home
 * region and bound to its key, or nothing at all.
 *
 *   kms  (default)  a key generated at the provider-managed default provider (keys.defaults.kms)
 *   byok            a key at the customer's cloud account (--provider aws-kms --key-id ARN), or a
 *                   local key awaiting the customer's material (state pending-import; nextSteps
 *                   lists the import commands)
 *   hyok            the customer's own XKS proxy, registered with the tenant in the control plane
 *                   (credentials sealed, src/control-plane/key-services.ts); before the tenant is
 *                   accepted: the proxy's health check, the key's state, and a test wrap/unwrap
 *   none            no key: the tenant cannot hold sensitive fields until one is bound
 *                   (`bindTenantKey`, `domicile tenant bind-key`)
 *
 * Order: every check that needs no remote call (id, region, options, tenant id free) first; then
 * the key service checks; then what is created (a generated key, the sealed registration), each
 * undone if a later step fails, the directory row last. A refused onboarding leaves no key, no
 * key-service row and no directory row behind.
 */
import { assertTenantId, type KeyBinding, type TenantRecord } from '../control-plane/tenant-directory.js'
import { KeyServiceStore } from '../control-plane/key-services.js'
import type { Domicile } from '../domicile.js'
import { internalsOf } from '../domicile-internals.js'
import { DomicileError, isDomicileError } from '../errors.js'
import type { Custody } from '../keys/key-provider.js'
import { keyServiceProvider, keyServiceProviderName, type KeyServiceRecord, type ProviderRegistry } from '../keys/provider-registry.js'
import type { XksKeyProvider } from '../keys/providers/xks/xks-key-provider.js'
import { RuntimeKeyProvider } from '../keys/runtime-key-provider.js'
import { checkKeyRoundTrip, checkXksHealth, CHECK_TIMEOUT_MS } from './key-checks.js'

export type OnboardCustody = Custody | 'none'

/** The customer's XKS proxy, as `domicile keyproxy serve` prints it and `keyproxy init` writes its credentials. */
export interface OnboardXks {
  /** `https://host:port`, no path. */
  readonly endpoint: string
  /** Path prefix before /kms/xks/v1, e.g. '/xks' (the keyproxy default). */
  readonly uriPrefix?: string
  /** The SigV4 credentials configured at the proxy (sealed before they are stored). */
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string }
  /** PEM certificate(s) to trust for the proxy (self-signed, e.g. keyproxy's DIR/tls/cert.pem, or a private CA). */
  readonly caPem?: string
  /** Deadline per key call at run time (ms); default 250, the XKS budget. */
  readonly timeoutMs?: number
}

export interface OnboardRequest {
  readonly id: string
  readonly region: string
  /** The region's cell; default: the one with the fewest tenants (a region with one store: its only cell). */
  readonly cell?: string
  /** Default 'kms'. */
  readonly custody?: OnboardCustody
  /** A configured provider name (keys.providers), e.g. 'aws-kms' for a key in the customer's cloud account. */
  readonly provider?: string
  /** An existing key at the provider (hyok and byok at a cloud KMS: required). */
  readonly keyId?: string
  /** Per-tenant data-key cache TTL (ms, 0..86 400 000); 0 = never cache. */
  readonly cacheTtlMs?: number
  /** hyok: the customer's key service, registered with the tenant. */
  readonly xks?: OnboardXks
  /** Recorded in the control-plane audit. */
  readonly actor?: string
}

export interface OnboardResult {
  readonly tenant: TenantRecord
  /** As `domicile key status` reports it ('none' without a key). */
  readonly keyState: string
  /** Commands still to run (BYOK import, binding a key later); empty when the tenant is ready. */
  readonly nextSteps: readonly string[]
}

const CUSTODY: readonly OnboardCustody[] = ['kms', 'byok', 'hyok', 'none']
const MAX_CACHE_TTL_MS = 86_400_000

/** A key made ready for a tenant, with the way to take it back if the tenant is not written. */
interface PreparedKey {
  readonly key: KeyBinding | null
  readonly keyState: 'enabled' | 'pending-import' | 'none'
  undo(): Promise<void>
}

type KeyOptions = Pick<OnboardRequest, 'provider' | 'keyId' | 'xks' | 'actor'>

const nothing = async (): Promise<void> => undefined

function invalid(message: string, path?: string): DomicileError {
  return new DomicileError('ERR_INPUT_INVALID', message, path === undefined ? undefined : { path })
}

/** Every check that needs no remote call. */
function validate(d: Domicile, req: OnboardRequest): OnboardCustody {
  assertTenantId(req.id)
  if (!d.regions.includes(req.region)) {
    throw new DomicileError('ERR_REGION_UNKNOWN', `Region "${req.region}" is not configured (configured: ${d.regions.join(', ')}).`)
  }
  const custody = req.custody ?? 'kms'
  /* Precondition: custody is one of the rungs. */
  if (!CUSTODY.includes(custody)) throw invalid('custody: expected "kms" | "byok" | "hyok" | "none".', 'custody')
  /* Precondition: a tenant without a key names no key. */
  if (custody === 'none' && (req.provider !== undefined || req.keyId !== undefined || req.xks !== undefined)) {
    throw invalid('custody "none" binds no key: leave out provider, key id and key service.', 'custody')
  }
  /* Precondition: a key service is registered only for hyok, with the key's id, instead of a configured provider. */
  if (req.xks !== undefined) {
    if (custody !== 'hyok') throw invalid('A key service (xks) is registered only with custody "hyok".', 'xks')
    if (req.provider !== undefined) throw invalid('Give either a configured provider or a key service (xks) to register, not both.', 'provider')
    if (req.keyId === undefined) throw invalid('hyok: give the key id at the customer\'s key service (keyproxy create-key prints it).', 'keyId')
    const x = req.xks
    if (typeof x.endpoint !== 'string' || typeof x.credentials?.accessKeyId !== 'string' || x.credentials.accessKeyId === '' ||
      typeof x.credentials.secretAccessKey !== 'string' || x.credentials.secretAccessKey === '') {
      throw invalid('xks: endpoint and credentials.accessKeyId / credentials.secretAccessKey are required (the proxy URL and its SigV4 credentials).', 'xks')
    }
    if (x.timeoutMs !== undefined && (!Number.isInteger(x.timeoutMs) || x.timeoutMs <= 0 || x.timeoutMs > 60_000)) {
      throw invalid('xks.timeoutMs: expected an integer from 1 to 60000 (milliseconds).', 'xks.timeoutMs')
    }
  }
  /* Precondition: the cache TTL override is a bounded number of milliseconds. */
  if (req.cacheTtlMs !== undefined && (!Number.isInteger(req.cacheTtlMs) || req.cacheTtlMs < 0 || req.cacheTtlMs > MAX_CACHE_TTL_MS)) {
    throw invalid(`cacheTtlMs: expected an integer from 0 to ${MAX_CACHE_TTL_MS}.`, 'cacheTtlMs')
  }
  return custody
}

function registry(d: Domicile): ProviderRegistry {
  const p = internalsOf(d).providers
  if (!p) throw new DomicileError('ERR_KEY_PROVIDER_UNKNOWN', 'No key providers are configured for this instance.')
  return p
}

/** Binds a configured provider's key: generated (kms, local byok) or existing (checked by a round trip). */
async function prepareConfiguredKey(d: Domicile, tenantId: string, region: string, custody: Custody, req: KeyOptions): Promise<PreparedKey> {
  const providers = registry(d)
  const { key, keyState } = await d.keys.provision(tenantId, {
    custody,
    ...(req.provider !== undefined ? { provider: req.provider } : {}),
    ...(req.keyId !== undefined ? { keyId: req.keyId } : {}),
  })
  const runtime = await providers.runtime(key.provider)
  if (req.keyId !== undefined) {
    // The customer's existing key: prove it works for us before the tenant depends on it.
    if (keyState === 'enabled') await checkKeyRoundTrip(runtime, key.keyId, tenantId, region)
    return { key, keyState, undo: nothing }
  }
  // A key we created: destroy it again if the tenant is not written.
  const destroy = (runtime as RuntimeKeyProvider).destroyKey
  return { key, keyState, undo: async () => { await destroy?.(key.keyId).catch(() => undefined) } }
}

/** Registers the customer's key service after it passed the health check and the round trip. */
async function prepareKeyService(d: Domicile, tenantId: string, region: string, keyId: string, xks: OnboardXks, actor?: string): Promise<PreparedKey> {
  const providers = registry(d)
  const name = keyServiceProviderName(tenantId)
  const rec: KeyServiceRecord = {
    tenantId, endpoint: xks.endpoint, credentials: { accessKeyId: xks.credentials.accessKeyId, secretAccessKey: xks.credentials.secretAccessKey },
    ...(xks.uriPrefix !== undefined && xks.uriPrefix !== '' ? { uriPrefix: xks.uriPrefix } : {}),
    ...(xks.caPem !== undefined ? { caPem: xks.caPem } : {}),
    ...(xks.timeoutMs !== undefined ? { timeoutMs: xks.timeoutMs } : {}),
  }
  // 1. The service as given (nothing stored yet): health, key state, round trip.
  const raw = await keyServiceProvider(name, { ...rec, timeoutMs: CHECK_TIMEOUT_MS }) as XksKeyProvider
  const probe = new RuntimeKeyProvider(raw, { timeoutMs: CHECK_TIMEOUT_MS })
  try {
    await checkXksHealth(raw)
    await checkKeyRoundTrip(probe, keyId, tenantId, region)
  } finally {
    await probe.close().catch(() => undefined)
  }
  // 2. Seal and store it; 3. resolve it as every process will (read, unseal, ask the key's state).
  const config = internalsOf(d).config
  const store = new KeyServiceStore(internalsOf(d).controlPlane, { sealProvider: config?.keys.defaults.kms })
  const registration = await store.register(rec, async (n) => (await providers.get(n)).runtime, actor)
  const undo = async (): Promise<void> => {
    await providers.forget(name)
    await registration.remove().catch(() => undefined)
  }
  try {
    await providers.forget(name)
    const st = await (await providers.runtime(name)).keyStatus(keyId)
    if (st.state !== 'enabled') throw new DomicileError('ERR_KEY_PROVIDER_UNAVAILABLE', `The registered key service of tenant "${tenantId}" did not confirm the key (${st.state}). Check the key service and run the command again.`)
  } catch (e) {
    await undo()
    throw e
  }
  return { key: Object.freeze({ custody: 'hyok', provider: name, keyId }), keyState: 'enabled', undo }
}

async function prepareKey(d: Domicile, tenantId: string, region: string, custody: OnboardCustody, req: KeyOptions): Promise<PreparedKey> {
  if (custody === 'none') return { key: null, keyState: 'none', undo: nothing }
  if (custody === 'hyok' && req.xks !== undefined) return prepareKeyService(d, tenantId, region, req.keyId!, req.xks, req.actor)
  if (custody === 'hyok' && req.provider === undefined && internalsOf(d).config?.keys.defaults.hyok === undefined) {
    throw invalid('hyok: register the customer\'s key service with the tenant (xks: endpoint, credentials, key id; CLI: --xks-endpoint URL --xks-credentials FILE --key-id K), or name a configured xks provider.', 'xks')
  }
  return prepareConfiguredKey(d, tenantId, region, custody, req)
}

/** What is left to do after onboarding (or binding), as commands of this CLI. */
export function nextStepsFor(tenant: TenantRecord, keyState: string, providerKind?: string): string[] {
  const id = tenant.id
  if (!tenant.key) {
    return [`Tenant "${id}" has no key, so it cannot hold sensitive fields. Bind one: domicile tenant bind-key ${id} --custody kms (or byok / hyok).`]
  }
  if (keyState !== 'pending-import') return []
  if (providerKind === 'local') {
    return [
      `domicile key import-job ${id} --out ./${id}-import`,
      'openssl rand -out key.bin 32   # your 32-byte key (or use one you already hold); keep it safe',
      `openssl pkeyutl -encrypt -pubin -inkey ./${id}-import/wrapping-key.pem -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256 -in key.bin -out key.wrapped`,
      `domicile key import ${id} --material key.wrapped --token ./${id}-import/import-token`,
    ]
  }
  return [`Import the key material at provider "${tenant.key.provider}" with its own tooling, then check it: domicile key status ${id}`]
}

async function liveKeyState(d: Domicile, t: TenantRecord): Promise<string> {
  return t.key ? (await d.keys.status(t.id)).state : t.keyState
}

function providerKind(d: Domicile, t: TenantRecord): string | undefined {
  if (!t.key) return undefined
  try {
    return registry(d).config(t.key.provider).kind
  } catch {
    return undefined
  }
}

async function assertTenantFree(d: Domicile, id: string): Promise<void> {
  /* Precondition: a key is prepared only for a tenant id that is still free. */
  const existing = await internalsOf(d).directory.fresh(id).catch((e: unknown) => {
    if (isDomicileError(e, 'ERR_TENANT_UNKNOWN')) return undefined
    throw e
  })
  if (existing) throw new DomicileError('ERR_TENANT_EXISTS', `Tenant "${id}" already exists (region ${existing.region}). Use another id.`)
}

/**
 * Adds a tenant pinned to `region` and bound to its key, in one step.
 *
 * @example
 * const { tenant, nextSteps } = await onboardTenant(domicile, {
 *   id: 'acme', region: 'eu-west-1', custody: 'hyok', keyId: 'k-123',
 *   xks: { endpoint: 'https://xks.acme.example:8443', uriPrefix: '/xks', credentials: { accessKeyId, secretAccessKey }, caPem },
 * })
 */
export async function onboardTenant(d: Domicile, req: OnboardRequest): Promise<OnboardResult> {
  const custody = validate(d, req)
  await assertTenantFree(d, req.id)
  const cell = await d.placeTenant(req.region, req.cell)
  const prepared = await prepareKey(d, req.id, req.region, custody, req)
  let tenant: TenantRecord
  try {
    tenant = await internalsOf(d).directory.add({
      id: req.id, region: req.region, cell, key: prepared.key,
      ...(prepared.key ? { keyState: prepared.keyState } : {}),
      ...(req.cacheTtlMs !== undefined ? { cacheTtlMs: req.cacheTtlMs } : {}),
    }, {
      type: 'tenant.add', outcome: 'ok', ...(req.actor !== undefined ? { actor: req.actor } : {}),
      detail: { region: req.region, cell, custody, ...(prepared.key ? { provider: prepared.key.provider } : {}) },
    })
  } catch (e) {
    await prepared.undo()
    throw e
  }
  const keyState = await liveKeyState(d, tenant)
  return Object.freeze({ tenant, keyState, nextSteps: Object.freeze(nextStepsFor(tenant, keyState, providerKind(d, tenant))) })
}

/** `onboardTenant` without id and region: the key for a tenant that was added without one. */
export type BindKeyRequest = Omit<OnboardRequest, 'region' | 'cell' | 'cacheTtlMs'> & { readonly custody?: Custody }

/**
 * Binds a key to a tenant that has none (added with custody 'none'), with the same checks as
 * onboarding. Safe because such a tenant has no sealed value and no data key yet.
 *
 * @example
 * await bindTenantKey(domicile, { id: 'plain', custody: 'kms' })
 */
export async function bindTenantKey(d: Domicile, req: BindKeyRequest): Promise<OnboardResult> {
  const directory = internalsOf(d).directory
  assertTenantId(req.id)
  const current = await directory.fresh(req.id)
  const custody = validate(d, { ...req, region: current.region, custody: req.custody ?? 'kms' })
  /* Precondition: a key is bound only to a tenant without one. */
  if (custody === 'none') throw invalid('bind-key binds a key: custody "kms", "byok" or "hyok".', 'custody')
  if (current.key) throw invalid(`Tenant "${req.id}" already has a key (custody ${current.key.custody}). Rotate it with "domicile key rotate ${req.id}" instead.`, 'custody')
  const prepared = await prepareKey(d, req.id, current.region, custody, req)
  let tenant: TenantRecord
  try {
    tenant = await directory.update(req.id, { key: prepared.key, keyState: prepared.keyState }, 'key:bind', current.version, {
      type: 'key.bind', outcome: 'ok', ...(req.actor !== undefined ? { actor: req.actor } : {}),
      detail: { custody, provider: prepared.key!.provider },
    })
  } catch (e) {
    await prepared.undo()
    throw e
  }
  const keyState = await liveKeyState(d, tenant)
  return Object.freeze({ tenant, keyState, nextSteps: Object.freeze(nextStepsFor(tenant, keyState, providerKind(d, tenant))) })
}

