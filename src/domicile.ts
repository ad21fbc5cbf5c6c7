/**
 * The Domicile instance: the one data layer. `withTenant` resolves tenant -> region -> store,
 * opens a tenant transaction and hands out a scope. Everything reaches storage through here.
 * Built from ready parts by `createDomicile` (src/index.ts), which does the wiring of defaults.
 */
import type { AuditSink } from './audit/audit-sink.js'
import { DomicileError } from './errors.js'
import { assertTenantId, type KeyBinding, type TenantDirectory, type TenantRecord } from './control-plane/tenant-directory.js'
import { Scope, tenantTable, type Revealer, type TenantScope } from './data/tenant-scope.js'
import { OneShotRepository, type TenantTransactionRunner } from './data/one-shot-repository.js'
import type { FieldProtection } from './data/field-protection.js'
import type { Repository, Row } from './data/repository.js'
import type { RegionRouter, TenantTransaction } from './regions/router.js'
import type { StoreDriver } from './regions/store-driver.js'
import { registerParts } from './domicile-internals.js'
import { chooseCell } from './regions/placement.js'
import { migrateAll, type MigrateResult } from './schema/migrate.js'
import type { Schema } from './schema/define-schema.js'
import type { ScopeFieldsFactory } from './fields/scope-fields-factory.js'
import type { KeyAdmin } from './keys/key-admin.js'
import type { Keyring } from './keys/keyring.js'
import type { ProviderRegistry } from './keys/provider-registry.js'
import type { OperationJournal } from './ops/operation-journal.js'
import type { DomicileConfig } from './config/config-types.js'

export interface DomicileParts {
  readonly schema: Schema
  readonly router: RegionRouter
  readonly controlPlane: StoreDriver
  readonly directory: TenantDirectory
  /** Field encryption for tenant scopes; absent = no key custody configured. */
  readonly fields?: ScopeFieldsFactory
  /** Key provisioning and the kill switch. */
  readonly keys?: KeyAdmin
  readonly audit?: AuditSink
  /** Per-tenant key custody and the provider registry, for online operations (rotation, moves, shredding). */
  readonly keyring?: Keyring
  readonly providers?: ProviderRegistry
  /** The operations journal in the control plane. */
  readonly journal?: OperationJournal
  /** The configuration the instance was built from (paths for evidence keys and the like). */
  readonly config?: DomicileConfig
  /** Region metadata for listings and reports. */
  readonly regionInfo?: Readonly<Record<string, { drivers: Readonly<Record<string, string>>; jurisdiction?: string }>>
}

/** A tenant's tables, one transaction per repository call (see `Domicile.tenant`). */
export interface TenantTables {
  readonly tenantId: string
  /** The repository of a tenant-scoped table; every call is its own transaction. */
  table<R extends Row = Row>(name: string): Repository<R>
}

export interface AddTenantOptions {
  readonly region: string
  /** The cell in the region; default: the region's cell with the fewest tenants. */
  readonly cell?: string
  readonly key?: KeyBinding | null
  /** Initial key state; 'pending-import' for a BYOK key awaiting the customer's material. */
  readonly keyState?: 'enabled' | 'pending-import'
  readonly cacheTtlMs?: number | null
}

export class Domicile {
  readonly schema: Schema
  readonly #p: DomicileParts
  #closed = false

  constructor(parts: DomicileParts) {
    this.#p = parts
    this.schema = parts.schema
    registerParts(this, parts)
  }

  get regions(): readonly string[] {
    return this.#p.router.regionNames
  }

  get directory(): TenantDirectory {
    return this.#p.directory
  }

  get keys(): KeyAdmin {
    if (!this.#p.keys) throw new DomicileError('ERR_KEY_PROVIDER_UNKNOWN', 'No key providers are configured for this instance.')
    return this.#p.keys
  }

  /**
   * Runs `fn` in a transaction on the tenant's home region with row-level security bound to the
   * tenant. Fails closed: unknown tenant, suspended tenant, unknown or unreachable region.
   *
   * @example
   * ```ts
   * const row = await domicile.withTenant('acme', (scope) => scope.table('customers').get('c1'))
   * ```
   */
  async withTenant<T>(tenantId: string, fn: (scope: TenantScope) => Promise<T>): Promise<T> {
    return this.#inTenant(tenantId, async (tx, fields) => fn(new Scope(tx, this.#p.schema, fields)))
  }

  /**
   * A tenant's tables with one transaction per call, for single-statement reads and writes. Same
   * guarantees as `withTenant`; a `find` also filters and wraps its rows while the COMMIT is in
   * flight. Use `withTenant` for several statements in one transaction.
   *
   * @example
   * ```ts
   * const [c] = await domicile.tenant('acme').table('customers').find({ email: 'ada@example.com' })
   * ```
   */
  tenant(tenantId: string): TenantTables {
    this.#assertOpen()
    const run: TenantTransactionRunner = (fn) => this.#inTenant(tenantId, fn)
    const schema = this.#p.schema
    return {
      tenantId,
      table: <R extends Row = Row>(name: string): Repository<R> => new OneShotRepository<R>(tenantTable(schema, name), run),
    }
  }

  async #inTenant<T>(tenantId: string, fn: (tx: TenantTransaction, fields: (FieldProtection & Revealer) | undefined) => Promise<T>): Promise<T> {
    this.#assertOpen()
    const tenant = this.#p.directory.cached(tenantId) ?? (await this.#p.directory.get(tenantId))
    /* Precondition: only active tenants are served. */
    if (tenant.status === 'moving') {
      throw new DomicileError('ERR_TENANT_MOVING', `Tenant "${tenantId}" is in the final step of a move between regions (a write freeze of well under a second). Retry the request.`)
    }
    if (tenant.status !== 'active') {
      throw new DomicileError('ERR_TENANT_SUSPENDED', `Tenant "${tenantId}" is ${tenant.status}; requests are refused until it is active again.`)
    }
    return this.#p.router.withTenantTransaction(tenant.id, tenant, (tx) => fn(tx, this.#p.fields?.forTransaction(tenant, tx)))
  }

  /** Adds a tenant to the directory, pinned to a configured region. */
  async addTenant(id: string, opts: AddTenantOptions): Promise<TenantRecord> {
    this.#assertOpen()
    assertTenantId(id)
    const cell = await this.placeTenant(opts.region, opts.cell)
    return this.#p.directory.add({
      id, region: opts.region, cell, key: opts.key ?? null,
      ...(opts.key && opts.keyState ? { keyState: opts.keyState } : {}),
      ...(opts.cacheTtlMs !== undefined ? { cacheTtlMs: opts.cacheTtlMs } : {}),
    }, { type: 'tenant.add', outcome: 'ok', detail: { region: opts.region, cell, custody: opts.key?.custody ?? 'none' } })
  }

  /**
   * The cell a new tenant of `region` goes to: `cell` when given (it must be one of the region's),
   * else the one with the fewest tenants. Throws ERR_REGION_UNKNOWN / ERR_CELL_UNKNOWN.
   */
  async placeTenant(region: string, cell?: string): Promise<string> {
    this.#assertOpen()
    const router = this.#p.router
    // Counts only when there is a choice to make (several cells, none named).
    const counts = cell === undefined && router.cellsOf(region).length > 1 ? await this.#p.directory.tenantsPerCell(region) : new Map<string, number>()
    // A listed region has at least one cell, so a cell is always chosen.
    return chooseCell(region, router.cellMap, counts, cell === undefined ? {} : { requested: cell })!
  }

  async getTenant(id: string): Promise<TenantRecord> {
    return this.#p.directory.get(id)
  }

  async listTenants(): Promise<TenantRecord[]> {
    return this.#p.directory.list()
  }

  async setTenantStatus(id: string, status: 'active' | 'suspended'): Promise<TenantRecord> {
    return this.#p.directory.update(id, { status }, `status:${status}`, undefined, { type: `tenant.${status === 'active' ? 'resume' : 'suspend'}`, outcome: 'ok' })
  }

  /** Applies internal tables, the schema and RLS to the control plane and every region. */
  async migrate(): Promise<MigrateResult[]> {
    this.#assertOpen()
    return migrateAll({ controlPlane: this.#p.controlPlane, router: this.#p.router, schema: this.#p.schema })
  }

  /**
   * Each configured store (one per cell; a region with one store is one entry named after it), its
   * driver and whether it answers with the right stamp.
   */
  async listRegions(): Promise<Array<{ name: string; region: string; cell: string; driver: string; jurisdiction?: string; reachable: boolean; code?: string }>> {
    const router = this.#p.router
    return Promise.all(router.stores.map(async (where) => {
      const info = this.#p.regionInfo?.[where.region]
      const p = await router.probe(where)
      return { name: router.label(where), region: where.region, cell: where.cell, driver: info?.drivers?.[where.cell] ?? router.driverKind(where), ...(info?.jurisdiction ? { jurisdiction: info.jurisdiction } : {}), ...p }
    }))
  }

  #assertOpen(): void {
    if (this.#closed) throw new DomicileError('ERR_CLOSED', 'This Domicile instance was closed.')
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#p.keys?.close().catch(() => undefined)
    await this.#p.directory.close()
    // The stores are independent: close them at once (each waits for its server to hang up).
    await Promise.all([this.#p.router.close(), this.#p.controlPlane.close().catch(() => undefined)])
  }
}
