/**
 * Loading and validating `domicile.config.json`. Every problem is reported as ERR_CONFIG_INVALID
 * with the path inside the file and what is expected, e.g.
 * `regions.eu-west-1.driver: expected "pglite" | "postgres"`. Values are never echoed.
 */
import { readFileSync } from 'node:fs'
import { dirname, isAbsolute, resolve } from 'node:path'
import { DomicileError } from '../errors.js'
import type { Custody } from '../keys/key-provider.js'
import { CELL_NAME, DEFAULT_CACHE_TTL_MS, DEFAULT_CELL, NONCE_BOUND, type DomicileConfig, type LintConfig, type ProviderConfig, type RegionConfig, type StoreConfig } from './config-types.js'

export const DEFAULT_CONFIG_FILE = 'domicile.config.json'
export const REGION_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/
const PROVIDER_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/

type Json = Record<string, unknown>

function bad(path: string, expected: string): DomicileError {
  return new DomicileError('ERR_CONFIG_INVALID', `${path}: expected ${expected}`, { path })
}
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v)

function str(o: Json, key: string, path: string, optional = false): string | undefined {
  const v = o[key]
  if (v === undefined && optional) return undefined
  if (typeof v !== 'string' || v.length === 0) throw bad(`${path}.${key}`, 'a non-empty string')
  return v
}
function int(o: Json, key: string, path: string, min: number, max: number): number | undefined {
  const v = o[key]
  if (v === undefined) return undefined
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw bad(`${path}.${key}`, `an integer from ${min} to ${max}`)
  return v
}
function onlyKeys(o: Json, allowed: readonly string[], path: string): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) throw bad(`${path}.${k}`, `no such setting (allowed: ${allowed.join(', ')})`)
}

function store(v: unknown, path: string, baseDir: string, extra: readonly string[] = []): StoreConfig {
  if (!isObj(v)) throw bad(path, 'an object with "driver"')
  if (v.driver === 'pglite') {
    onlyKeys(v, ['driver', 'dataDir', ...extra], path)
    return { driver: 'pglite', dataDir: absOrMemory(str(v, 'dataDir', path)!, baseDir) }
  }
  if (v.driver === 'postgres') {
    onlyKeys(v, ['driver', 'url', 'urlEnv', 'ownerUrl', 'ownerUrlEnv', 'connectTimeoutMs', 'poolSize', ...extra], path)
    const url = str(v, 'url', path, true)
    const urlEnv = str(v, 'urlEnv', path, true)
    if ((url === undefined) === (urlEnv === undefined)) throw bad(path, 'exactly one of "url" or "urlEnv"')
    if (url !== undefined && !/^postgres(ql)?:\/\//.test(url)) throw bad(`${path}.url`, 'a postgres:// URL')
    const ownerUrl = str(v, 'ownerUrl', path, true)
    const ownerUrlEnv = str(v, 'ownerUrlEnv', path, true)
    if (ownerUrl !== undefined && ownerUrlEnv !== undefined) throw bad(path, 'at most one of "ownerUrl" or "ownerUrlEnv"')
    if (ownerUrl !== undefined && !/^postgres(ql)?:\/\//.test(ownerUrl)) throw bad(`${path}.ownerUrl`, 'a postgres:// URL')
    const connectTimeoutMs = int(v, 'connectTimeoutMs', path, 50, 60_000)
    const poolSize = int(v, 'poolSize', path, 1, 1000)
    return {
      driver: 'postgres',
      ...(url !== undefined ? { url } : {}),
      ...(urlEnv !== undefined ? { urlEnv } : {}),
      ...(ownerUrl !== undefined ? { ownerUrl } : {}),
      ...(ownerUrlEnv !== undefined ? { ownerUrlEnv } : {}),
      ...(connectTimeoutMs !== undefined ? { connectTimeoutMs } : {}),
      ...(poolSize !== undefined ? { poolSize } : {}),
    }
  }
  throw bad(`${path}.driver`, '"pglite" | "postgres"')
}

/** A region: one store (the plain form, cell "main") or `cells: { name: store, ... }`. */
function region(r: unknown, path: string, baseDir: string): RegionConfig {
  if (!isObj(r)) throw bad(path, 'an object with "driver", or with "cells"')
  const jurisdiction = str(r, 'jurisdiction', path, true)
  const description = str(r, 'description', path, true)
  const meta = { ...(jurisdiction ? { jurisdiction } : {}), ...(description ? { description } : {}) }
  if (r.cells === undefined) {
    const { jurisdiction: _j, description: _d, ...s } = store(r, path, baseDir, ['jurisdiction', 'description']) as StoreConfig & Json
    return Object.freeze({ ...meta, cells: Object.freeze({ [DEFAULT_CELL]: s as StoreConfig }) })
  }
  onlyKeys(r, ['cells', 'jurisdiction', 'description'], path)
  if (!isObj(r.cells) || Object.keys(r.cells).length === 0) throw bad(`${path}.cells`, 'an object of cell name to store settings, with at least one cell')
  const cells: Record<string, StoreConfig> = {}
  for (const [c, s] of Object.entries(r.cells)) {
    if (!CELL_NAME.test(c)) throw bad(`${path}.cells.${c}`, 'a cell name of lower-case letters, digits and dashes')
    cells[c] = store(s, `${path}.cells.${c}`, baseDir)
  }
  return Object.freeze({ ...meta, cells: Object.freeze(cells) })
}

function absOrMemory(p: string, baseDir: string): string {
  return p.startsWith('memory://') || isAbsolute(p) ? p : resolve(baseDir, p)
}

function provider(v: unknown, path: string, baseDir: string): ProviderConfig {
  if (!isObj(v)) throw bad(path, 'an object with "kind"')
  switch (v.kind) {
    case 'local': {
      onlyKeys(v, ['kind', 'dir', 'rootKeyFile'], path)
      const dir = str(v, 'dir', path, true)
      const rootKeyFile = str(v, 'rootKeyFile', path, true)
      return { kind: 'local', ...(dir ? { dir: resolve(baseDir, dir) } : {}), ...(rootKeyFile ? { rootKeyFile: resolve(baseDir, rootKeyFile) } : {}) }
    }
    case 'pkcs11': {
      onlyKeys(v, ['kind', 'library', 'tokenLabel', 'pinEnv'], path)
      const library = str(v, 'library', path, true)
      return { kind: 'pkcs11', ...(library ? { library } : {}), tokenLabel: str(v, 'tokenLabel', path)!, pinEnv: str(v, 'pinEnv', path)! }
    }
    case 'xks': {
      onlyKeys(v, ['kind', 'endpoint', 'uriPrefix', 'credentialsFile', 'timeoutMs', 'allowInsecureHttp', 'caFile', 'clientCertFile', 'clientKeyFile', 'region', 'awsPrincipalArn', 'kmsKeyArn'], path)
      const endpoint = str(v, 'endpoint', path)!
      if (v.allowInsecureHttp !== undefined && typeof v.allowInsecureHttp !== 'boolean') throw bad(`${path}.allowInsecureHttp`, 'true or false')
      const allowInsecureHttp = v.allowInsecureHttp === true
      if (!/^https:\/\//.test(endpoint) && !(allowInsecureHttp && /^http:\/\//.test(endpoint))) {
        throw bad(`${path}.endpoint`, 'an https:// URL (http:// only with "allowInsecureHttp": true, for development)')
      }
      const uriPrefix = str(v, 'uriPrefix', path, true)
      const timeoutMs = int(v, 'timeoutMs', path, 10, 60_000)
      const file = (key: string): Record<string, string> => {
        const f = str(v, key, path, true)
        return f === undefined ? {} : { [key]: resolve(baseDir, f) }
      }
      const text = (key: string): Record<string, string> => {
        const t = str(v, key, path, true)
        return t === undefined ? {} : { [key]: t }
      }
      if ((v.clientCertFile === undefined) !== (v.clientKeyFile === undefined)) throw bad(path, 'both "clientCertFile" and "clientKeyFile" (mutual TLS), or neither')
      return {
        kind: 'xks', endpoint, ...(uriPrefix ? { uriPrefix } : {}), credentialsFile: resolve(baseDir, str(v, 'credentialsFile', path)!), ...(timeoutMs ? { timeoutMs } : {}),
        ...(allowInsecureHttp ? { allowInsecureHttp } : {}), ...file('caFile'), ...file('clientCertFile'), ...file('clientKeyFile'),
        ...text('region'), ...text('awsPrincipalArn'), ...text('kmsKeyArn'),
      }
    }
    case 'aws-kms': {
      onlyKeys(v, ['kind', 'region', 'endpoint'], path)
      const endpoint = str(v, 'endpoint', path, true)
      return { kind: 'aws-kms', region: str(v, 'region', path)!, ...(endpoint ? { endpoint } : {}) }
    }
    default:
      throw bad(`${path}.kind`, '"local" | "pkcs11" | "xks" | "aws-kms"')
  }
}

/** The optional "lint" key: `{ sources: ['src', ...], sampleRows?: N }` (source paths relative to the config file). */
function lintSettings(v: unknown, baseDir: string): LintConfig {
  if (!isObj(v)) throw bad('lint', 'an object like { "sources": ["src"] }')
  onlyKeys(v, ['sources', 'sampleRows'], 'lint')
  const raw = v.sources ?? []
  if (!Array.isArray(raw)) throw bad('lint.sources', 'a list of source directories, e.g. ["src"]')
  const sources = raw.map((s, i) => {
    if (typeof s !== 'string' || s.length === 0) throw bad(`lint.sources[${i}]`, 'a non-empty directory path')
    return resolve(baseDir, s)
  })
  const sampleRows = int(v, 'sampleRows', 'lint', 1, 100_000)
  return Object.freeze({ sources: Object.freeze(sources), ...(sampleRows !== undefined ? { sampleRows } : {}) })
}

/** Validates a parsed config object. `baseDir` resolves relative paths. */
export function parseConfig(raw: unknown, baseDir: string): DomicileConfig {
  if (!isObj(raw)) throw bad('(root)', 'a JSON object')
  onlyKeys(raw, ['$schema', 'regions', 'controlPlane', 'schema', 'keys', 'directoryPollMs', 'lint'], '(root)')
  if (!isObj(raw.regions) || Object.keys(raw.regions).length === 0) throw bad('regions', 'an object with at least one region')
  const regions: Record<string, RegionConfig> = {}
  for (const [name, r] of Object.entries(raw.regions)) {
    if (!REGION_NAME.test(name)) throw bad(`regions.${name}`, 'a region name of lower-case letters, digits and dashes')
    regions[name] = region(r, `regions.${name}`, baseDir)
  }
  const controlPlane = store(raw.controlPlane, 'controlPlane', baseDir)
  /* Precondition: no two stores share an embedded data directory (two stores on one database would mix regions). */
  const dirs = new Map<string, string>()
  const stores = Object.entries(regions).flatMap(([n, r]) =>
    Object.entries(r.cells).map(([c, s]) => [r.cells[DEFAULT_CELL] && Object.keys(r.cells).length === 1 ? `regions.${n}` : `regions.${n}.cells.${c}`, s] as const))
  for (const [path, s] of [...stores, ['controlPlane', controlPlane] as const]) {
    if (s.driver !== 'pglite' || s.dataDir.startsWith('memory://')) continue
    const other = dirs.get(s.dataDir)
    if (other) throw bad(`${path}.dataDir`, `a data directory of its own (${other} uses the same one)`)
    dirs.set(s.dataDir, path)
  }
  const schema = resolve(baseDir, str(raw, 'schema', '(root)')!)

  const keysRaw = raw.keys === undefined ? {} : raw.keys
  if (!isObj(keysRaw)) throw bad('keys', 'an object')
  onlyKeys(keysRaw, ['providers', 'defaults', 'cacheTtlMs', 'maxEncryptionsPerKey', 'reservationBlock', 'dir'], 'keys')
  const providers: Record<string, ProviderConfig> = {}
  const provRaw = keysRaw.providers ?? {}
  if (!isObj(provRaw)) throw bad('keys.providers', 'an object of provider name to provider settings')
  for (const [name, p] of Object.entries(provRaw)) {
    if (!PROVIDER_NAME.test(name)) throw bad(`keys.providers.${name}`, 'a provider name of lower-case letters, digits and dashes')
    providers[name] = provider(p, `keys.providers.${name}`, baseDir)
  }
  const keysDir = keysRaw.dir === undefined ? resolve(baseDir, '.domicile/keys') : resolve(baseDir, str(keysRaw, 'dir', 'keys')!)
  providers.local ??= { kind: 'local', dir: keysDir }
  const defaultsRaw = keysRaw.defaults ?? {}
  if (!isObj(defaultsRaw)) throw bad('keys.defaults', 'an object of custody level to provider name')
  onlyKeys(defaultsRaw, ['kms', 'byok', 'hyok'], 'keys.defaults')
  const defaults: Record<Custody, string | undefined> = { kms: 'local', byok: 'local', hyok: undefined }
  for (const c of ['kms', 'byok', 'hyok'] as const) {
    const v = str(defaultsRaw, c, 'keys.defaults', true)
    if (v !== undefined) {
      if (!providers[v]) throw bad(`keys.defaults.${c}`, `the name of a provider in keys.providers (${Object.keys(providers).join(', ')})`)
      defaults[c] = v
    }
  }
  if (defaults.hyok === undefined) defaults.hyok = Object.entries(providers).find(([, p]) => p.kind === 'xks')?.[0]
  const ttlRaw = keysRaw.cacheTtlMs ?? {}
  if (!isObj(ttlRaw)) throw bad('keys.cacheTtlMs', 'an object of custody level to milliseconds')
  onlyKeys(ttlRaw, ['kms', 'byok', 'hyok'], 'keys.cacheTtlMs')
  const cacheTtlMs = { ...DEFAULT_CACHE_TTL_MS }
  for (const c of ['kms', 'byok', 'hyok'] as const) {
    const v = int(ttlRaw, c, 'keys.cacheTtlMs', 0, 86_400_000)
    if (v !== undefined) cacheTtlMs[c] = v
  }
  const maxEncryptionsPerKey = int(keysRaw, 'maxEncryptionsPerKey', 'keys', 1, NONCE_BOUND) ?? NONCE_BOUND
  const reservationBlock = int(keysRaw, 'reservationBlock', 'keys', 1, 2 ** 24) ?? 65_536
  const directoryPollMs = int(raw, 'directoryPollMs', '(root)', 50, 60_000) ?? 500
  const lint = raw.lint === undefined ? undefined : lintSettings(raw.lint, baseDir)
  return Object.freeze({
    baseDir,
    regions: Object.freeze(regions),
    controlPlane,
    schema,
    keys: Object.freeze({ providers: Object.freeze(providers), defaults: Object.freeze(defaults), cacheTtlMs: Object.freeze(cacheTtlMs), maxEncryptionsPerKey, reservationBlock }),
    directoryPollMs,
    ...(lint ? { lint } : {}),
  })
}

/**
 * Finds and loads the config: explicit path, else $DOMICILE_CONFIG, else ./domicile.config.json.
 */
export function loadConfig(path?: string): DomicileConfig {
  const file = resolve(path ?? process.env.DOMICILE_CONFIG ?? DEFAULT_CONFIG_FILE)
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch {
    throw new DomicileError('ERR_CONFIG_INVALID', `Cannot read config file ${file}. Run "domicile init" to create one, or pass --config PATH.`, { path: file })
  }
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (e) {
    throw new DomicileError('ERR_CONFIG_INVALID', `${file} is not valid JSON (${(e as Error).message.replace(/"[^"]*"/g, '…')}).`, { path: file })
  }
  return parseConfig(raw, dirname(file))
}
