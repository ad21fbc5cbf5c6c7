/**
 * Domicile: data residency and customer-held keys for multi-tenant SaaS.
 *
 * This entry point re-exports the public API by name and is, with the CLI, the only place where
 * defaults are wired: config -> store drivers -> router, control plane -> directory, providers ->
 * keyring -> field encryption.
 *
 * @example
 * ```ts
 * import { createDomicile } from 'domicile'
 * const domicile = await createDomicile({ configPath: 'domicile.config.json' })
 * await domicile.withTenant('acme', (scope) => scope.table('customers').insert({ id: 'c1', name: 'Ada' }))
 * ```
 */
import { pathToFileURL } from 'node:url'
import { loadConfig } from './config/load-config.js'
import type { DomicileConfig, StoreConfig } from './config/config-types.js'
import { TenantDirectory } from './control-plane/tenant-directory.js'
import { Domicile } from './domicile.js'
import { DomicileError } from './errors.js'
import { createPGliteDriver } from './regions/drivers/pglite-driver.js'
import { createPostgresDriver } from './regions/drivers/postgres-driver.js'
import { DEFAULT_CELL } from './regions/placement.js'
import { regionMap, type RegionSupplier } from './regions/region-supplier.js'
import { RegionRouter } from './regions/router.js'
import type { StoreDriver } from './regions/store-driver.js'
import { defineSchema, isSchema, type Schema, type TableDef } from './schema/define-schema.js'
import { wireCustody } from './wire-custody.js'
import { OperationJournal } from './ops/operation-journal.js'

export { Domicile } from './domicile.js'
export type { AddTenantOptions, DomicileParts, TenantTables } from './domicile.js'
export { DomicileError, DecryptionFailedError, isDomicileError } from './errors.js'
export type { DomicileErrorCode } from './errors.js'
export { defineSchema, isSchema } from './schema/define-schema.js'
export type { ColumnDef, ColumnType, Schema, SensitiveOptions, TableDef } from './schema/define-schema.js'
export { loadConfig, parseConfig } from './config/load-config.js'
export type { DomicileConfig, ProviderConfig, RegionConfig, StoreConfig } from './config/config-types.js'
export { limitRegions, excludeRegions, regionMap } from './regions/region-supplier.js'
export type { RegionSupplier } from './regions/region-supplier.js'
export type { Placement } from './regions/placement.js'
export type { StoreDriver, StoreSession } from './regions/store-driver.js'
export type { TenantScope, RevealOptions } from './data/tenant-scope.js'
export type { Repository, Page, ListOptions, Row } from './data/repository.js'
export type { TenantRecord, KeyBinding, TenantStatus } from './control-plane/tenant-directory.js'
export type { KeyProvider, Custody, WrapContext, KeyStatus, KeyState } from './keys/key-provider.js'
export type { KeyAdmin, TenantKeyStatus } from './keys/key-admin.js'
export type { AuditSink, AuditEvent } from './audit/audit-sink.js'
export { collectResidencyReport, type ResidencyReport } from './report/residency-report.js'
export { generateReport, verifyReportFile, type GeneratedReport, type ReportFormat, type ReportVerification } from './report/report-output.js'
export { onboardTenant, bindTenantKey } from './onboarding/onboard-tenant.js'
export type { OnboardCustody, OnboardRequest, OnboardResult, OnboardXks, BindKeyRequest } from './onboarding/onboard-tenant.js'
export { updateKeyService, type UpdateKeyServiceRequest, type UpdateKeyServiceResult } from './onboarding/update-key-service.js'
export { lintResidency, type LintFinding, type LintOptions, type LintResult } from './lint/lint-residency.js'
export { runAnalytics, type AnalyticsQuery, type AnalyticsResult, type AnalyticsGroup, type FilterRange, type FilterValue } from './analytics/run-analytics.js'
export { upsertGlobal, deleteGlobal, listGlobal, replicationStatus, replicateOnce, startGlobalReplication, type GlobalWriteResult, type GlobalWriteOptions, type ListGlobalOptions, type RegionReplication, type ReplicationStatus, type RegionReplicationStatus, type GlobalReplicationOptions, type StopGlobalReplication } from './global/index.js'
export { verifyAuditChains, auditTail, type AuditVerification, type ChainVerification, type ChainBreak, type ChainProblem, type AuditTail, type AuditTailRecord } from './audit/audit-log.js'

export interface CreateDomicileOptions {
  /** A loaded config, or a path (default: $DOMICILE_CONFIG, else ./domicile.config.json). */
  readonly config?: DomicileConfig
  readonly configPath?: string
  /** The schema; default: the config's schema module's default export. */
  readonly schema?: Schema
  /** Decorates the region supplier, e.g. `(s) => limitRegions(s, ['eu-west-1'])`. */
  readonly regionPolicy?: (supplier: RegionSupplier) => RegionSupplier
  /**
   * false for a short-lived process (a CLI command, a script): the tenant directory is read on demand
   * and each entry trusted for at most 1 s, instead of following the control plane's change feed
   * (which costs a LISTEN connection and a change-log read at start). Default true.
   */
  readonly changeFeed?: boolean
}

/** Builds a store driver from its config entry. */
export function storeFromConfig(cfg: StoreConfig, name: string): StoreDriver {
  if (cfg.driver === 'pglite') return createPGliteDriver({ dataDir: cfg.dataDir, name })
  const url = cfg.url ?? (cfg.urlEnv ? process.env[cfg.urlEnv] : undefined)
  if (!url) throw new DomicileError('ERR_CONFIG_INVALID', `Store "${name}": the environment variable ${cfg.urlEnv} is not set. Export it with the store's postgres:// URL.`)
  const ownerUrl = cfg.ownerUrl ?? (cfg.ownerUrlEnv ? process.env[cfg.ownerUrlEnv] : undefined)
  if (cfg.ownerUrlEnv && !ownerUrl) throw new DomicileError('ERR_CONFIG_INVALID', `Store "${name}": the environment variable ${cfg.ownerUrlEnv} is not set. Export it with the owner's postgres:// URL.`)
  return createPostgresDriver({ url, name, ...(ownerUrl ? { ownerUrl } : {}), ...(cfg.connectTimeoutMs ? { connectTimeoutMs: cfg.connectTimeoutMs } : {}), ...(cfg.poolSize ? { poolSize: cfg.poolSize } : {}) })
}

/** Imports the schema module named in the config (its default export, or `schema`). */
export async function loadSchema(path: string): Promise<Schema> {
  let mod: Record<string, unknown>
  try {
    mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>
  } catch (e) {
    throw new DomicileError('ERR_CONFIG_INVALID', `schema: cannot import ${path}. Check the path in the config file.`, { path: 'schema', cause: e })
  }
  const s = mod.default ?? mod.schema
  if (isSchema(s)) return s
  // A plain object of table definitions works too, so a schema file needs no import.
  if (typeof s === 'object' && s !== null) return defineSchema(s as Record<string, TableDef>)
  throw new DomicileError('ERR_CONFIG_INVALID', `schema: ${path} must export default an object of table definitions (or defineSchema({...})).`, { path: 'schema' })
}

/** Wires a Domicile instance from config. */
export async function createDomicile(opts: CreateDomicileOptions = {}): Promise<Domicile> {
  const config = opts.config ?? loadConfig(opts.configPath)
  const schema = opts.schema ?? (await loadSchema(config.schema))
  const drivers = new Map<string, StoreDriver>()
  for (const [name, r] of Object.entries(config.regions)) {
    for (const [cell, store] of Object.entries(r.cells)) drivers.set(`${name}/${cell}`, storeFromConfig(store, cell === DEFAULT_CELL ? name : `${name}/${cell}`))
  }
  let supplier = regionMap(drivers)
  if (opts.regionPolicy) supplier = opts.regionPolicy(supplier)
  const router = new RegionRouter(new Map(Object.entries(config.regions).map(([n, r]) => [n, Object.keys(r.cells)])), supplier)
  const controlPlane = storeFromConfig(config.controlPlane, 'control-plane')
  const directory = new TenantDirectory(controlPlane, { pollMs: config.directoryPollMs, watch: opts.changeFeed ?? true })
  const { keys, fields, keyring, providers } = wireCustody(config, directory, controlPlane)
  const journal = new OperationJournal(controlPlane)
  const regionInfo = Object.fromEntries(Object.entries(config.regions).map(([n, r]) => [n, {
    drivers: Object.fromEntries(Object.entries(r.cells).map(([c, st]) => [c, st.driver])), ...(r.jurisdiction ? { jurisdiction: r.jurisdiction } : {}),
  }]))
  return new Domicile({ schema, router, controlPlane, directory, keys, fields, regionInfo, keyring, providers, journal, config })
}
