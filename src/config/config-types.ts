/**
 * The shape of `domicile.config.json`. Paths are relative to the config file's directory.
 */
import type { Custody } from '../keys/key-provider.js'

/** The cell of a region configured with one store (the plain `regions.NAME: { driver, ... }` form). */
export const DEFAULT_CELL = 'main'
/** Cell names: like region names. */
export const CELL_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/

export type StoreConfig =
  | { readonly driver: 'pglite'; readonly dataDir: string }
  | {
      readonly driver: 'postgres'
      /** The data plane's login (a role that owns nothing); exactly one of url / urlEnv. */
      readonly url?: string
      readonly urlEnv?: string
      /** The owner's login for migrate and admin work; without one, the data login serves both (with a warning). */
      readonly ownerUrl?: string
      readonly ownerUrlEnv?: string
      readonly connectTimeoutMs?: number
      readonly poolSize?: number
    }

/**
 * A region is one store or several (cells, each its own PostgreSQL), plus what we tell auditors
 * about it. The plain form `{ driver, ... }` is a region with one cell named "main"; the form
 * `{ cells: { a: { driver, ... }, b: { ... } } }` lists several. Cells never serve each other's tenants.
 */
export interface RegionConfig {
  readonly jurisdiction?: string
  readonly description?: string
  /** The region's stores by cell name, in configuration order (placement ties go to the first). */
  readonly cells: Readonly<Record<string, StoreConfig>>
}

export type ProviderConfig =
  | {
      readonly kind: 'local'
      readonly dir?: string
      /** Root key file when DOMICILE_ROOT_KEY is unset; default `<dir>.root.key`, beside (never inside) the keystore. */
      readonly rootKeyFile?: string
    }
  | { readonly kind: 'pkcs11'; readonly library?: string; readonly tokenLabel: string; readonly pinEnv: string }
  | {
    readonly kind: 'xks'
    /** https://host:port of the customer's XKS proxy (http:// only with allowInsecureHttp). */
    readonly endpoint: string
    readonly uriPrefix?: string
    /** The proxy's credentials file as `domicile keyproxy init` writes it, or {"accessKeyId","secretAccessKey"}. */
    readonly credentialsFile: string
    readonly timeoutMs?: number
    /** Allow a plain http:// endpoint (development only). */
    readonly allowInsecureHttp?: boolean
    /** CA certificate (PEM) to trust for the proxy, e.g. the self-signed DIR/tls/cert.pem of `keyproxy init`. */
    readonly caFile?: string
    /** Client certificate and key (PEM) for a proxy that requires mutual TLS. */
    readonly clientCertFile?: string
    readonly clientKeyFile?: string
    /** SigV4 region. Default us-east-1. */
    readonly region?: string
    /** requestMetadata.awsPrincipalArn (an ARN). */
    readonly awsPrincipalArn?: string
    /** requestMetadata.kmsKeyArn template, `{keyId}` stands for the external key id. */
    readonly kmsKeyArn?: string
  }
  | { readonly kind: 'aws-kms'; readonly region: string; readonly endpoint?: string }

export interface KeysConfig {
  /** Provider instances by name. A `local` provider named "local" always exists. */
  readonly providers: Readonly<Record<string, ProviderConfig>>
  /** Which provider a custody level uses when `tenant add` names none. */
  readonly defaults: Readonly<Record<Custody, string | undefined>>
  /** Data-key cache TTL per custody level (ms). */
  readonly cacheTtlMs: Readonly<Record<Custody, number>>
  /** AES-GCM random-nonce bound per data key (NIST SP 800-38D): at most 2^32. */
  readonly maxEncryptionsPerKey: number
  /** Encryptions a process reserves from a data key's budget at a time. */
  readonly reservationBlock: number
}

export interface DomicileConfig {
  /** Absolute directory of the config file; relative paths were resolved against it. */
  readonly baseDir: string
  readonly regions: Readonly<Record<string, RegionConfig>>
  readonly controlPlane: StoreConfig
  /** Absolute path of the schema module (default export: a Schema from defineSchema). */
  readonly schema: string
  readonly keys: KeysConfig
  /** Polling interval (ms) for directory/revocation changes, the fallback behind LISTEN/NOTIFY. */
  readonly directoryPollMs: number
  /** `domicile lint` settings (docs/LINT.md); absent when the file has no "lint" key. */
  readonly lint?: LintConfig
}

/** The residency linter's settings. */
export interface LintConfig {
  /** Absolute directories of application source scanned for direct store-driver imports. */
  readonly sources: readonly string[]
  /** Rows sampled per global table per store (default 1000). */
  readonly sampleRows?: number
}

export const DEFAULT_CACHE_TTL_MS: Readonly<Record<Custody, number>> = Object.freeze({ kms: 300_000, byok: 60_000, hyok: 60_000 })
export const NONCE_BOUND = 2 ** 32
