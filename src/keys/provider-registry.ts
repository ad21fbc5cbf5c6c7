/**
 * Provider instances by name, created on first use from config and wrapped once in the
 * RuntimeKeyProvider (deadlines, checks, audit, circuit breaker). Vendor-backed providers are
 * imported lazily, so a deployment that never names pkcs11 or aws-kms never loads them.
 *
 * Besides the config's providers, a tenant's own key service registered at onboarding (HYOK over
 * an XKS proxy, stored sealed in the control plane) is a provider named `xks:<tenant>`: the
 * registry asks its key-service source for the record (read and unsealed on first use, in any
 * process wired to the control plane) and builds the same runtime-wrapped XKS provider as for a
 * configured one. Config names are `[a-z0-9-]`, so the two never collide.
 *
 * A registered key service can change while processes run (`domicile tenant update-key-service`
 * re-seals new SigV4 credentials and changes the tenant's directory entry in the same
 * transaction). The registry follows the directory (`followDirectory`): an `xks:<tenant>` provider
 * is dropped when the tenant's entry changes (the change feed of a watched process), and one
 * resolved under another entry version than the directory now holds is resolved again (an
 * unwatched process re-reads the entry at least every second before it uses a key, so it picks up
 * the new credentials at its next key call). A dropped provider is closed after a grace period, so
 * calls already under way finish with it.
 */
import type { ProviderConfig } from '../config/config-types.js'
import type { AuditSink } from '../audit/audit-sink.js'
import { DomicileError } from '../errors.js'
import type { KeyProvider } from './key-provider.js'
import { RuntimeKeyProvider } from './runtime-key-provider.js'

/** Provider names of key services registered per tenant: `xks:<tenant id>`. */
export const KEY_SERVICE_PREFIX = 'xks:'

/** The provider name of the key service registered for `tenantId`. */
export function keyServiceProviderName(tenantId: string): string {
  return `${KEY_SERVICE_PREFIX}${tenantId}`
}

/** The tenant a registered key service's provider name stands for; undefined for any other name. */
export function keyServiceTenant(name: string): string | undefined {
  return name.startsWith(KEY_SERVICE_PREFIX) && name.length > KEY_SERVICE_PREFIX.length ? name.slice(KEY_SERVICE_PREFIX.length) : undefined
}

/** A customer's XKS proxy as registered for one tenant, credentials unsealed (held in memory only). */
export interface KeyServiceRecord {
  readonly tenantId: string
  readonly endpoint: string
  readonly uriPrefix?: string
  /** PEM certificate(s) to trust for the proxy (self-signed or private CA). */
  readonly caPem?: string
  /** Per-call deadline (ms); default 250, the XKS budget. */
  readonly timeoutMs?: number
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string }
}

/**
 * Where registered key services come from (the control plane: src/control-plane/key-services.ts).
 * `open` reads the tenant's record and unseals its credentials with `sealer` (the registry's own
 * providers, so the sealing key is used through the runtime wrapper).
 */
export interface KeyServiceSource {
  open(tenantId: string, sealer: (name: string) => Promise<RuntimeKeyProvider>): Promise<KeyServiceRecord>
}

/** The config-like description of a registered key service (no endpoint secrets; kind for callers). */
export interface RegisteredServiceConfig {
  readonly kind: 'xks'
  /** The tenant the service was registered for (its record lives in the control plane). */
  readonly registeredFor: string
}

/** The tenant directory as the registry follows it (TenantDirectory). */
export interface ProviderDirectory {
  /** Called with a tenant id whenever its entry changes (any process, when the change feed is on). */
  onChange(listener: (tenantId: string) => void): unknown
  /** The entry this process holds now (no I/O), for its version. */
  peek(tenantId: string): { readonly version: number } | undefined
}

/** How long a dropped key-service provider stays open for calls already under way (ms). */
export const RETIRED_PROVIDER_GRACE_MS = 30_000

export interface RegisteredProvider {
  /** The provider as the rest of Domicile uses it. */
  readonly runtime: RuntimeKeyProvider
  /** The provider itself, for provider-specific administration (BYOK import, disable). */
  readonly raw: KeyProvider
  readonly config: ProviderConfig | RegisteredServiceConfig
}

/** An XKS provider for a registered key service (the same code as a configured one). */
export async function keyServiceProvider(name: string, rec: KeyServiceRecord): Promise<KeyProvider> {
  const { createXksKeyProvider } = await import('./providers/xks/xks-key-provider.js')
  return createXksKeyProvider({
    name, endpoint: rec.endpoint, credentials: rec.credentials,
    ...(rec.uriPrefix !== undefined ? { uriPrefix: rec.uriPrefix } : {}),
    ...(rec.caPem !== undefined ? { ca: rec.caPem } : {}),
    ...(rec.timeoutMs !== undefined ? { timeoutMs: rec.timeoutMs } : {}),
  })
}

async function instantiate(name: string, cfg: ProviderConfig): Promise<KeyProvider> {
  switch (cfg.kind) {
    case 'local': {
      const { createLocalKeyProvider } = await import('./providers/local/index.js')
      if (!cfg.dir) throw new DomicileError('ERR_CONFIG_INVALID', `keys.providers.${name}.dir: expected the keystore directory`, { path: `keys.providers.${name}.dir` })
      return createLocalKeyProvider({ name, dir: cfg.dir, ...(cfg.rootKeyFile ? { rootKeyFile: cfg.rootKeyFile } : {}) })
    }
    case 'pkcs11': {
      const pin = process.env[cfg.pinEnv]
      if (!pin) throw new DomicileError('ERR_CONFIG_INVALID', `keys.providers.${name}.pinEnv: the environment variable ${cfg.pinEnv} is not set. Export the HSM user PIN in it.`, { path: `keys.providers.${name}.pinEnv` })
      const { createPkcs11KeyProvider } = await import('./providers/pkcs11/index.js')
      return createPkcs11KeyProvider({ name, tokenLabel: cfg.tokenLabel, pin, ...(cfg.library ? { library: cfg.library } : {}) })
    }
    case 'xks': {
      // The provider reads the credentials file itself (the format `keyproxy init` writes, or the flat
      // {"accessKeyId","secretAccessKey"}), and re-reads it when the customer rotates credentials.
      const { createXksKeyProvider } = await import('./providers/xks/xks-key-provider.js')
      const opt = <K extends keyof typeof cfg>(k: K) => (cfg[k] === undefined ? {} : { [k]: cfg[k] })
      return createXksKeyProvider({
        name, endpoint: cfg.endpoint, credentialsFile: cfg.credentialsFile,
        ...opt('uriPrefix'), ...opt('timeoutMs'), ...opt('allowInsecureHttp'), ...opt('caFile'), ...opt('clientCertFile'),
        ...opt('clientKeyFile'), ...opt('region'), ...opt('awsPrincipalArn'), ...opt('kmsKeyArn'),
      })
    }
    case 'aws-kms': {
      const { createAwsKmsKeyProvider } = await import('./providers/aws-kms.js')
      return createAwsKmsKeyProvider({ name, region: cfg.region, ...(cfg.endpoint ? { endpoint: cfg.endpoint } : {}) })
    }
  }
}

export class ProviderRegistry {
  readonly #configs: Readonly<Record<string, ProviderConfig>>
  readonly #audit: AuditSink | undefined
  readonly #made = new Map<string, Promise<RegisteredProvider>>()
  /** Providers whose creation finished, for metrics (a scrape never creates one). */
  readonly #ready = new Map<string, RegisteredProvider>()
  #services: KeyServiceSource | undefined
  #directory: ProviderDirectory | undefined
  /** The directory entry version each `xks:<tenant>` provider was resolved under. */
  readonly #resolvedAt = new Map<string, number | undefined>()
  /** Dropped providers still open for calls under way, closed after the grace period (or by close()). */
  readonly #retired = new Map<Promise<RegisteredProvider>, NodeJS.Timeout>()

  constructor(configs: Readonly<Record<string, ProviderConfig>>, opts: { audit?: AuditSink } = {}) {
    this.#configs = configs
    this.#audit = opts.audit
  }

  /**
   * Resolves `xks:<tenant>` names through `source` from now on. Wiring calls it once, at start-up
   * (src/index.ts); a second call is refused so the source cannot be swapped under running code.
   */
  useKeyServices(source: KeyServiceSource): void {
    /* Precondition: the key-service source is set once. */
    if (this.#services) throw new DomicileError('ERR_CONFIG_INVALID', 'The provider registry already has a key-service source; it is wired once at start-up.')
    this.#services = source
  }

  /**
   * Follows the tenant directory from now on: a tenant's registered key service is resolved again
   * after its entry changed. Wiring calls it once, at start-up (src/wire-custody.ts).
   */
  followDirectory(directory: ProviderDirectory): void {
    /* Precondition: the directory is followed once. */
    if (this.#directory) throw new DomicileError('ERR_CONFIG_INVALID', 'The provider registry already follows a directory; it is wired once at start-up.')
    this.#directory = directory
    directory.onChange((tenantId) => this.keyServiceChanged(tenantId))
  }

  /**
   * Drops the tenant's cached `xks:<tenant>` provider (its record changed): the next use reads and
   * unseals the record again. The dropped provider is closed after RETIRED_PROVIDER_GRACE_MS.
   */
  keyServiceChanged(tenantId: string): void {
    this.#retire(keyServiceProviderName(tenantId))
  }

  #retire(name: string): void {
    const p = this.#made.get(name)
    this.#made.delete(name)
    this.#ready.delete(name)
    this.#resolvedAt.delete(name)
    if (!p) return
    const timer = setTimeout(() => {
      this.#retired.delete(p)
      void closeMade(p)
    }, RETIRED_PROVIDER_GRACE_MS)
    timer.unref()
    this.#retired.set(p, timer)
  }

  names(): string[] {
    return Object.keys(this.#configs)
  }

  config(name: string): ProviderConfig | RegisteredServiceConfig {
    const cfg = this.#configs[name]
    if (cfg) return cfg
    const tenant = keyServiceTenant(name)
    if (tenant !== undefined && this.#services) return Object.freeze({ kind: 'xks', registeredFor: tenant })
    throw new DomicileError('ERR_KEY_PROVIDER_UNKNOWN', `No key provider named "${name}" in keys.providers (configured: ${this.names().join(', ')}).`)
  }

  get(name: string): Promise<RegisteredProvider> {
    const tenant = keyServiceTenant(name)
    // A key service resolved under another entry version than this process now holds may have new settings.
    if (tenant !== undefined && this.#directory && this.#made.has(name) && this.#directory.peek(tenant)?.version !== this.#resolvedAt.get(name)) {
      this.#retire(name)
    }
    let p = this.#made.get(name)
    if (!p) {
      const cfg = this.config(name)
      const audit = this.#audit ? { audit: this.#audit } : {}
      if ('registeredFor' in cfg) {
        // The version is taken before the record is read, so a change committed meanwhile is seen as one.
        this.#resolvedAt.set(name, this.#directory?.peek(cfg.registeredFor)?.version)
        p = this.#services!.open(cfg.registeredFor, async (n) => (await this.get(n)).runtime).then(async (rec) => {
          const raw = await keyServiceProvider(name, rec)
          return { raw, config: cfg, runtime: new RuntimeKeyProvider(raw, { ...audit, ...(rec.timeoutMs ? { timeoutMs: rec.timeoutMs } : {}) }) }
        })
      } else {
        const timeoutMs = cfg.kind === 'xks' ? cfg.timeoutMs : undefined
        p = instantiate(name, cfg).then((raw) => ({
          raw,
          config: cfg,
          runtime: new RuntimeKeyProvider(raw, { ...audit, ...(timeoutMs ? { timeoutMs } : {}) }),
        }))
      }
      const made = p
      made.then((r) => { if (this.#made.get(name) === made) this.#ready.set(name, r) }, () => {
        if (this.#made.get(name) === made) this.#made.delete(name)
      })
      this.#made.set(name, p)
    }
    return p
  }

  async runtime(name: string): Promise<KeyProvider> {
    return (await this.get(name)).runtime
  }

  /** The providers created so far (none is created by asking), for metrics. */
  ready(): RegisteredProvider[] {
    return [...this.#ready.values()]
  }

  /** Closes and drops a provider made earlier (a registered key service that was removed or re-registered). */
  async forget(name: string): Promise<void> {
    const p = this.#made.get(name)
    if (!p) return
    this.#made.delete(name)
    this.#ready.delete(name)
    this.#resolvedAt.delete(name)
    await closeMade(p)
  }

  async close(): Promise<void> {
    for (const p of this.#made.values()) await closeMade(p)
    for (const [p, timer] of this.#retired) {
      clearTimeout(timer)
      await closeMade(p)
    }
    this.#made.clear()
    this.#ready.clear()
    this.#resolvedAt.clear()
    this.#retired.clear()
  }
}

async function closeMade(p: Promise<RegisteredProvider>): Promise<void> {
  const r = await p.catch(() => undefined)
  await r?.runtime.close().catch(() => undefined)
  await r?.raw.close?.().catch(() => undefined)
}
