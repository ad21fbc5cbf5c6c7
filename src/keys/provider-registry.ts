/**
 * Provider instances by name, created on first use from config and wrapped once in the
 * RuntimeKeyProvider (deadlines, checks, audit, circuit breaker). Vendor-backed providers are
 * imported lazily, so a deployment that never names pkcs11 or aws-kms never loads them.
 */
import type { ProviderConfig } from '../config/config-types.js'
import type { AuditSink } from '../audit/audit-sink.js'
import { DomicileError } from '../errors.js'
import type { KeyProvider } from './key-provider.js'
import { RuntimeKeyProvider } from './runtime-key-provider.js'

export interface RegisteredProvider {
  /** The provider as the rest of Domicile uses it. */
  readonly runtime: RuntimeKeyProvider
  /** The provider itself, for provider-specific administration (BYOK import, disable). */
  readonly raw: KeyProvider
  readonly config: ProviderConfig
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

  constructor(configs: Readonly<Record<string, ProviderConfig>>, opts: { audit?: AuditSink } = {}) {
    this.#configs = configs
    this.#audit = opts.audit
  }

  names(): string[] {
    return Object.keys(this.#configs)
  }

  config(name: string): ProviderConfig {
    const cfg = this.#configs[name]
    if (!cfg) throw new DomicileError('ERR_KEY_PROVIDER_UNKNOWN', `No key provider named "${name}" in keys.providers (configured: ${this.names().join(', ')}).`)
    return cfg
  }

  get(name: string): Promise<RegisteredProvider> {
    let p = this.#made.get(name)
    if (!p) {
      const cfg = this.config(name)
      const timeoutMs = cfg.kind === 'xks' ? cfg.timeoutMs : undefined
      p = instantiate(name, cfg).then((raw) => ({
        raw,
        config: cfg,
        runtime: new RuntimeKeyProvider(raw, { ...(this.#audit ? { audit: this.#audit } : {}), ...(timeoutMs ? { timeoutMs } : {}) }),
      }))
      p.catch(() => this.#made.delete(name))
      this.#made.set(name, p)
    }
    return p
  }

  async runtime(name: string): Promise<KeyProvider> {
    return (await this.get(name)).runtime
  }

  async close(): Promise<void> {
    for (const p of this.#made.values()) {
      const r = await p.catch(() => undefined)
      await r?.runtime.close().catch(() => undefined)
      await r?.raw.close?.().catch(() => undefined)
    }
    this.#made.clear()
  }
}
