/**
 * Where a store is, as a residency report may say it: driver, host, port, database and TLS mode of a
 * PostgreSQL store, or "embedded PGlite" with its data directory's last path segment. Never a
 * credential: the connection URL is parsed and only those parts are kept (no user name, password or
 * query parameters other than a known `sslmode`); a URL that does not parse is not echoed.
 */
import { basename } from 'node:path'
import type { StoreConfig } from '../config/config-types.js'

export interface StoreLocation {
  /** 'postgres' | 'pglite', or the driver kind the router reports. */
  readonly driver: string
  /** One line for people, e.g. "PostgreSQL at db.eu.example:5432, database app" or "embedded PGlite (data directory eu-west-1)". */
  readonly location: string
  readonly host: string | null
  readonly port: number | null
  readonly database: string | null
  /** The `sslmode` of the URL when it names a known mode, else null (the driver's default). */
  readonly sslmode: string | null
  /** PGlite: the data directory's last segment, or "memory" for an in-memory store. */
  readonly dataDir: string | null
  /** PostgreSQL: whether migrate/admin work uses a login of its own (README "two roles"). */
  readonly separateOwnerLogin: boolean | null
}

const SSL_MODES = new Set(['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full', 'no-verify'])

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s)
  } catch {
    return s
  }
}

/** The host part of a URL without credentials, or null when it does not parse. */
function parseUrl(text: string | undefined): { host: string; port: number | null; database: string | null; sslmode: string | null } | null {
  if (text === undefined) return null
  let u: URL
  try {
    // An empty host (postgres://u:p@/db?host=/socket/dir) is valid for libpq, not for WHATWG URL.
    u = new URL(text.replace(/^(postgres(?:ql)?:\/\/(?:[^@/]*@)?)(?=[/?]|$)/, '$1localhost'))
  } catch {
    return null
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') return null
  const host = u.searchParams.get('host') ?? u.hostname
  // A host given as a socket directory (?host=/var/run/postgresql) is a path on this machine: say so, no more.
  const safeHost = host.startsWith('/') ? 'local socket' : host
  const db = safeDecode(u.pathname.replace(/^\//, ''))
  const mode = u.searchParams.get('sslmode')
  return {
    host: safeHost === '' ? 'localhost' : safeHost,
    port: u.port === '' ? 5432 : Number(u.port),
    database: db === '' ? null : db,
    sslmode: mode !== null && SSL_MODES.has(mode) ? mode : null,
  }
}

/**
 * Describes a configured store without credentials.
 *
 * @example
 * describeStore({ driver: 'postgres', url: 'postgres://app:secret@db.eu.example:5432/app' })
 * // { driver: 'postgres', host: 'db.eu.example', port: 5432, database: 'app', location: 'PostgreSQL at db.eu.example:5432, database app', ... }
 */
export function describeStore(cfg: StoreConfig | undefined, env: NodeJS.ProcessEnv = process.env, fallbackDriver = 'unknown'): StoreLocation {
  if (cfg === undefined) {
    return { driver: fallbackDriver, location: `${fallbackDriver} store (the instance was built without a configuration, so its address is not known)`, host: null, port: null, database: null, sslmode: null, dataDir: null, separateOwnerLogin: null }
  }
  if (cfg.driver === 'pglite') {
    const memory = cfg.dataDir.startsWith('memory://')
    const dir = memory ? 'memory' : basename(cfg.dataDir)
    return {
      driver: 'pglite', location: memory ? 'embedded PGlite, in memory (this process only)' : `embedded PGlite (data directory "${dir}" on this machine)`,
      host: null, port: null, database: null, sslmode: null, dataDir: dir, separateOwnerLogin: null,
    }
  }
  const url = cfg.url ?? (cfg.urlEnv ? env[cfg.urlEnv] : undefined)
  const p = parseUrl(url)
  const separateOwnerLogin = cfg.ownerUrl !== undefined || cfg.ownerUrlEnv !== undefined
  if (p === null) {
    return { driver: 'postgres', location: 'PostgreSQL (address not readable from the configuration)', host: null, port: null, database: null, sslmode: null, dataDir: null, separateOwnerLogin }
  }
  return {
    driver: 'postgres',
    location: `PostgreSQL at ${p.host}${p.port === null ? '' : `:${p.port}`}${p.database ? `, database ${p.database}` : ''}`,
    host: p.host, port: p.port, database: p.database, sslmode: p.sslmode, dataDir: null, separateOwnerLogin,
  }
}

/** The origin (scheme, host, port) of a key service endpoint; null when it does not parse. No path, no credentials. */
export function endpointOrigin(text: string | undefined): string | null {
  if (text === undefined) return null
  try {
    const u = new URL(text)
    return u.protocol === 'https:' || u.protocol === 'http:' ? `${u.protocol}//${u.host}` : null
  } catch {
    return null
  }
}
