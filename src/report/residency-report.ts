/**
 * The residency report of one tenant, collected from the live system: where its rows are (home
 * region, jurisdiction, store address without credentials), what each table holds for it (row
 * counts read through a tenant scope, so row-level security applies), which columns are sealed and
 * how they are searched, who holds its key-encryption key and in what state, how long a revocation
 * takes to bite (the data-key cache TTL), which global tables sit in its region and how they got
 * there, and its recent key, move and reveal events. A plain JSON-able object (no Dates, no
 * undefined), so it can be signed as it is (src/report/report-signature.ts).
 *
 * It holds identifiers, counts, states and times only: never plaintext, key material, wrapped keys,
 * credentials, or the row keys of revealed rows.
 */
import { replicationStatus } from '../global/replication-status.js'
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { Domicile } from '../domicile.js'
import { internalsOf } from '../domicile-internals.js'
import { DomicileError, isDomicileError } from '../errors.js'
import { DEFAULT_CACHE_TTL_MS } from '../config/config-types.js'
import type { TenantRecord } from '../control-plane/tenant-directory.js'
import type { Custody } from '../keys/key-provider.js'
import { keyServiceTenant } from '../keys/provider-registry.js'
import { columnLayout, LAYOUT_SQL, type CatalogColumn } from '../schema/column-layout.js'
import type { ResolvedTable } from '../schema/define-schema.js'
import { tenantMatch } from '../schema/tenant-column.js'
import { tenantSweepParam } from '../ops/tenant-rows.js'
import { describeStore, endpointOrigin, type StoreLocation } from './store-location.js'

/** Events of each kind the report lists, newest first. */
export const REPORT_EVENT_LIMIT = 20

/** Who holds the tenant's key-encryption key. */
export type KeyHolder = 'operator' | 'customer-key-in-operator-kms' | 'customer-key-service' | 'none'

export interface ReportTable {
  readonly name: string
  readonly classification: 'tenant' | 'global'
  /** Tenant tables: the tenant's rows. Global tables: the rows of the copy in the tenant's home region. */
  readonly rowCount: number
  readonly sensitiveColumns: readonly string[]
}

export interface ReportSensitiveColumn {
  readonly table: string
  readonly column: string
  readonly encryption: 'AES-256-GCM'
  /** 'blind-index': equality search through an HMAC-SHA256 index (truncated); 'none': not searchable. */
  readonly search: 'blind-index' | 'none'
  readonly blindIndexBytes: number | null
  readonly normalize: readonly string[]
  /**
   * How the values are stored in the home region now: 'sealed' (ciphertext only), 'encrypting' /
   * 'decrypting' (an online migration runs: some rows may still hold plaintext), 'plaintext' (declared
   * sensitive, migration not started: values are stored in plaintext).
   */
  readonly storage: 'sealed' | 'encrypting' | 'decrypting' | 'plaintext'
}

export interface ReportOperation {
  readonly id: number
  readonly kind: string
  readonly status: string
  readonly state: string
  readonly actor: string | null
  readonly startedAt: string
  readonly finishedAt: string | null
}

export interface ReportEvent {
  readonly id: number
  readonly at: string
  readonly type: string
  readonly outcome: string
  readonly actor: string | null
  /** The record's detail, scalar fields only (identifiers: provider, key id, regions, operation). */
  readonly detail: Readonly<Record<string, string | number | boolean>>
}

export interface ReportReveal {
  readonly id: number
  readonly at: string
  readonly table: string | null
  readonly column: string | null
  readonly purpose: string | null
  readonly actor: string | null
  readonly outcome: string
  readonly code: string | null
}

export interface ResidencyReport {
  readonly reportId: string
  readonly generatedAt: string
  readonly generator: { readonly name: 'domicile'; readonly version: string }
  readonly tenant: { readonly id: string; readonly status: string; readonly createdAt: string; readonly updatedAt: string; readonly directoryVersion: number }
  readonly residency: {
    readonly region: string
    /** From the region's `jurisdiction` in the configuration; null when none is set. */
    readonly jurisdiction: string | null
    readonly description: string | null
    /** The tenant's cell in the region (its own PostgreSQL); "main" when the region has one store. */
    readonly cell: string
    readonly store: StoreLocation
  }
  /** The control plane: the tenant directory (id, region, key reference, states), never personal data. */
  readonly controlPlane: { readonly store: StoreLocation; readonly holds: string }
  readonly tables: readonly ReportTable[]
  /** How the row counts were read: through a tenant scope (row-level security), or, for a tenant that is not active, an owner session filtered on the tenant. */
  readonly rowCountsReadAs: 'tenant-scope' | 'region-owner-session'
  readonly sensitiveColumns: readonly ReportSensitiveColumn[]
  readonly key: {
    readonly custody: Custody | 'none'
    readonly provider: string | null
    /** local | pkcs11 | xks | aws-kms, or null when the provider is not known to this instance. */
    readonly providerKind: string | null
    /** The provider's key reference (a key id, label or ARN); never key material. */
    readonly keyReference: string | null
    readonly holder: KeyHolder
    /** HYOK: the origin of the customer's key service (scheme, host, port), when known. */
    readonly holderEndpoint: string | null
    /** Domicile's state in the directory (the kill switch): none, enabled, revoked, pending-import, destroyed. */
    readonly directoryState: string
    /** Combined state (`key status`): enabled, revoked, pending-import, destroyed, unavailable. */
    readonly state: string
    /** What the provider answered: enabled, disabled, deleted, pending-import, not-found, unavailable, none. */
    readonly providerState: string
    /** The tenant's data and index keys in the home region (numbers and states; wrapped bytes never). */
    readonly dataKeys: ReadonlyArray<{ readonly purpose: string; readonly keyNumber: number; readonly status: string; readonly createdAt: string }>
    readonly lastRotation: {
      readonly keyEncryptionKey: ReportOperation | null
      readonly dataKey: ReportOperation | null
      readonly indexKey: ReportOperation | null
    }
    readonly lastRevocation: ReportEvent | null
  }
  readonly revocation: {
    /** The data-key cache TTL: how long a process may keep using a data key it already unwrapped. */
    readonly cacheTtlMs: number
    readonly cacheTtlSource: 'tenant-override' | 'custody-default' | 'no-key'
    /** Domicile's own kill switch reaches every process by push at once, or at worst after one poll of the directory (ms). */
    readonly killSwitchPollMs: number
  }
  readonly globalTables: ReadonlyArray<{
    readonly name: string
    readonly rowsInRegion: number
    /** Rows of the authoritative copy in the control plane; null when it could not be read. */
    readonly rowsInControlPlane: number | null
    readonly replication: 'outbox'
    readonly howItGetsThere: string
  }>
  /** The region's copy of the global tables against the control plane's outbox; null when there are no global tables or it could not be read. */
  readonly globalReplication: {
    readonly latestVersion: number
    readonly regionVersion: number | null
    readonly lagVersions: number
    readonly lagSeconds: number
    readonly reachable: boolean
  } | null
  readonly events: {
    readonly limit: number
    readonly key: readonly ReportEvent[]
    readonly moves: readonly ReportEvent[]
    /** Tenant lifecycle in the directory: added, suspended, resumed, key bound. */
    readonly tenant: readonly ReportEvent[]
    readonly operations: readonly ReportOperation[]
    readonly reveals: readonly ReportReveal[]
    /** All reveal records of the tenant in its home region, by outcome (ok, denied, error, withheld). */
    readonly revealTotals: Readonly<Record<string, number>>
  }
}

/** How global tables reach a region (src/global/, docs/GLOBAL-TABLES.md). */
export const GLOBAL_TABLE_PROVENANCE = 'Written only to the control plane (the authoritative copy) together with a versioned outbox entry; a replicator applies the outbox to every region store in version order, idempotently, and a region that was down catches up when it returns. Tenant scopes can only read the local copy.'

/** Provider trace records (one per provider call) are not events a report lists. */
const TRACE_TYPES = new Set(['key.wrap', 'key.unwrap', 'key.status', 'key.create', 'key.destroy', 'key.delete-material'])

let versionCache: string | undefined
function packageVersion(): string {
  if (versionCache === undefined) {
    try {
      versionCache = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version
    } catch {
      versionCache = 'unknown'
    }
  }
  return versionCache
}

const iso = (v: Date | string | null | undefined): string | null => (v === null || v === undefined ? null : new Date(v).toISOString())
const q = (ident: string): string => `"${ident.replace(/"/g, '""')}"`

function scalarDetail(detail: unknown): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {}
  if (typeof detail !== 'object' || detail === null) return out
  for (const [k, v] of Object.entries(detail)) {
    if (typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))) out[k] = v
  }
  return out
}

interface AuditRow { id: string | number; at: Date | string; type: string; outcome: string; actor: string | null; detail: unknown }
const toEvent = (r: AuditRow): ReportEvent => ({ id: Number(r.id), at: iso(r.at)!, type: r.type, outcome: r.outcome, actor: r.actor, detail: scalarDetail(r.detail) })

/** What the tenant's home region holds for it, read in one transaction. */
interface RegionFacts {
  readonly counts: ReadonlyMap<string, number>
  readonly catalog: ReadonlyMap<string, readonly CatalogColumn[]>
  readonly dataKeys: ResidencyReport['key']['dataKeys']
  readonly reveals: readonly ReportReveal[]
  readonly revealTotals: Record<string, number>
}

type Query = <R>(sql: string, params: readonly unknown[]) => Promise<R[]>

async function readRegion(query: Query, tenantId: string, tables: readonly ResolvedTable[]): Promise<RegionFacts> {
  const counts = new Map<string, number>()
  const catalog = new Map<string, readonly CatalogColumn[]>()
  for (const t of tables) {
    // Tenant tables: the explicit filter uses the index; inside a tenant scope row-level security applies too.
    const sql = t.scope === 'tenant' ? `SELECT count(*)::bigint AS n FROM ${q(t.name)} WHERE ${tenantMatch(t, '$1')}` : `SELECT count(*)::bigint AS n FROM ${q(t.name)}`
    const rows = await query<{ n: string | number }>(sql, t.scope === 'tenant' ? [tenantSweepParam(t, tenantId)] : [])
    counts.set(t.name, Number(rows[0]?.n ?? 0))
    if (t.sensitiveColumns.length > 0) catalog.set(t.name, await query<CatalogColumn>(LAYOUT_SQL, [t.name]))
  }
  const keys = await query<{ purpose: string; key_number: number; status: string; created_at: Date | string }>(
    'SELECT purpose, key_number, status, created_at FROM domicile_data_keys WHERE tenant_id = $1 ORDER BY purpose, key_number', [tenantId])
  const reveals = await query<AuditRow>(
    `SELECT id, at, type, outcome, actor, detail FROM domicile_audit WHERE tenant_id = $1 AND type = 'field.reveal' ORDER BY id DESC LIMIT ${REPORT_EVENT_LIMIT}`, [tenantId])
  const totals = await query<{ outcome: string; n: string | number }>(
    `SELECT outcome, count(*)::bigint AS n FROM domicile_audit WHERE tenant_id = $1 AND type = 'field.reveal' GROUP BY outcome ORDER BY outcome`, [tenantId])
  return {
    counts, catalog,
    dataKeys: keys.map((k) => ({ purpose: k.purpose, keyNumber: Number(k.key_number), status: k.status, createdAt: iso(k.created_at)! })),
    reveals: reveals.map((r) => {
      const d = scalarDetail(r.detail)
      const s = (k: string) => (typeof d[k] === 'string' ? d[k] as string : null)
      // The row key is left out on purpose: a primary key can itself be personal (an e-mail address).
      return { id: Number(r.id), at: iso(r.at)!, table: s('table'), column: s('column'), purpose: s('purpose'), actor: r.actor, outcome: r.outcome, code: s('code') }
    }),
    revealTotals: Object.fromEntries(totals.map((t) => [t.outcome, Number(t.n)])),
  }
}

function holderOf(custody: Custody | 'none', providerKind: string | null): KeyHolder {
  if (custody === 'none') return 'none'
  if (custody === 'hyok' || providerKind === 'xks') return 'customer-key-service'
  if (custody === 'byok') return 'customer-key-in-operator-kms'
  return 'operator'
}

function storageOf(col: ResolvedTable['sensitiveColumns'][number], catalog: readonly CatalogColumn[] | undefined): ReportSensitiveColumn['storage'] {
  const l = columnLayout(col, new Map((catalog ?? []).map((c) => [c.name, c])))
  if (l.migrating) return l.write === 'plain' ? 'decrypting' : 'encrypting'
  return l.plainColumn !== undefined ? 'plaintext' : 'sealed'
}

/**
 * Collects the residency report of one tenant from the live system.
 *
 * @example
 * const report = await collectResidencyReport(domicile, 'acme')
 * report.residency.region        // 'eu-west-1'
 * report.key.holder              // 'customer-key-service' for a HYOK tenant
 */
export async function collectResidencyReport(d: Domicile, tenantId: string): Promise<ResidencyReport> {
  const parts = internalsOf(d)
  const { schema, router, controlPlane, config, journal, providers } = parts
  const tenant: TenantRecord = await d.getTenant(tenantId)
  const generatedAt = new Date().toISOString()
  const tables = [...schema.tables.values()]
  const probe = await router.probe(tenant)
  /* Precondition: the tenant's home region answers (every figure is read live; none is guessed). */
  if (!probe.reachable) {
    throw new DomicileError('ERR_REGION_UNAVAILABLE', `Region "${tenant.region}" of tenant "${tenantId}" did not answer, so its figures cannot be read live and no report is issued. Retry when "domicile region list" shows it reachable.`)
  }

  // The home region, read through a tenant scope (row-level security) while the tenant is served.
  const readAs: ResidencyReport['rowCountsReadAs'] = tenant.status === 'active' ? 'tenant-scope' : 'region-owner-session'
  const facts = readAs === 'tenant-scope'
    ? await d.withTenant(tenantId, (scope) => readRegion((sql, params) => scope.sql(sql, params), tenantId, tables))
    : await router.withRegionAdmin(tenant, (s) => readRegion(async (sql, params) => (await s.query(sql, [...params])).rows as never[], tenantId, tables))

  // Global tables: the authoritative copy in the control plane, counted with its owner session.
  const globals = tables.filter((t) => t.scope === 'global')
  const cpCounts = new Map<string, number | null>()
  for (const t of globals) {
    try {
      const r = await controlPlane.withSession((s) => s.query<{ n: string | number }>(`SELECT count(*)::bigint AS n FROM ${q(t.name)}`), { role: 'owner' })
      cpCounts.set(t.name, Number(r.rows[0]?.n ?? 0))
    } catch (e) {
      if (!isDomicileError(e)) throw e
      cpCounts.set(t.name, null)
    }
  }

  // Where the region's copy stands against the outbox (a region down elsewhere does not matter here).
  let globalReplication: ResidencyReport['globalReplication'] = null
  if (globals.length > 0) {
    try {
      const st = await replicationStatus(d)
      const mine = st.regions.find((r) => r.region === router.label(tenant))
      if (mine) globalReplication = { latestVersion: st.latestVersion, regionVersion: mine.version, lagVersions: mine.lagVersions, lagSeconds: mine.lagSeconds, reachable: mine.reachable }
    } catch (e) {
      if (!isDomicileError(e)) throw e
    }
  }

  // Control-plane audit: key and move events of the tenant.
  const audit = await controlPlane.withSession((s) => s.query<AuditRow>(
    `SELECT id, at, type, outcome, actor, detail FROM domicile_control_audit WHERE tenant_id = $1 AND (type LIKE 'key.%' OR type LIKE 'tenant.%')
       AND NOT (type = ANY($2::text[]) AND detail->'ms' IS NOT NULL)
     ORDER BY id DESC LIMIT 200`, [tenantId, [...TRACE_TYPES]]), { role: 'owner' })
  const events = audit.rows.map(toEvent)
  const keyEvents = events.filter((e) => e.type.startsWith('key.'))
  const moveEvents = events.filter((e) => e.type.startsWith('tenant.move'))
  const tenantEvents = events.filter((e) => e.type.startsWith('tenant.') && !e.type.startsWith('tenant.move'))

  // The operations journal: rotations, moves, destruction.
  const ops = journal ? await journal.list({ tenantId, limit: 200 }) : []
  const toOp = (o: (typeof ops)[number]): ReportOperation => ({ id: o.id, kind: o.kind, status: o.status, state: o.state, actor: o.actor, startedAt: iso(o.startedAt)!, finishedAt: iso(o.finishedAt) })
  const lastOf = (kind: string) => {
    const o = ops.find((x) => x.kind === kind && x.status !== 'aborted')
    return o ? toOp(o) : null
  }

  // The key binding and what the provider says now.
  const binding = tenant.key
  let providerKind: string | null = null
  let holderEndpoint: string | null = null
  if (binding && providers) {
    try {
      const cfg = providers.config(binding.provider)
      providerKind = cfg.kind
      if ('endpoint' in cfg && typeof cfg.endpoint === 'string') holderEndpoint = endpointOrigin(cfg.endpoint)
    } catch (e) {
      if (!isDomicileError(e)) throw e
    }
  }
  if (binding && keyServiceTenant(binding.provider) !== undefined) {
    // A key service registered with the tenant at onboarding: its endpoint is public (the credentials stay sealed, unread).
    try {
      const r = await controlPlane.withSession((s) => s.query<{ endpoint: string }>('SELECT endpoint FROM domicile_key_services WHERE tenant_id = $1', [keyServiceTenant(binding.provider)]), { role: 'owner' })
      holderEndpoint = endpointOrigin(r.rows[0]?.endpoint)
    } catch (e) {
      if (!isDomicileError(e)) throw e
    }
  }
  let state = 'none'
  let providerState = 'none'
  if (binding) {
    const st = await d.keys.status(tenantId)
    state = st.state
    providerState = st.providerState ?? 'unknown'
  }
  const custody: Custody | 'none' = binding?.custody ?? 'none'
  const ttlDefaults = config?.keys.cacheTtlMs ?? DEFAULT_CACHE_TTL_MS
  const cacheTtlMs = tenant.cacheTtlMs ?? (binding ? ttlDefaults[binding.custody] : 0)
  const regionCfg = config?.regions[tenant.region]
  const info = parts.regionInfo?.[tenant.region]

  return {
    reportId: randomUUID(),
    generatedAt,
    generator: { name: 'domicile', version: packageVersion() },
    tenant: { id: tenant.id, status: tenant.status, createdAt: iso(tenant.createdAt)!, updatedAt: iso(tenant.updatedAt)!, directoryVersion: tenant.version },
    residency: {
      region: tenant.region,
      jurisdiction: regionCfg?.jurisdiction ?? info?.jurisdiction ?? null,
      description: regionCfg?.description ?? null,
      cell: tenant.cell,
      store: describeStore(regionCfg?.cells[tenant.cell], process.env, router.driverKind(tenant)),
    },
    controlPlane: {
      store: describeStore(config?.controlPlane, process.env, controlPlane.kind),
      holds: 'The tenant directory: tenant id, home region, status, key binding (custody, provider, key reference) and key state, the change log, the control-plane audit and the operations journal. No personal data and no data keys.',
    },
    tables: tables.map((t) => ({ name: t.name, classification: t.scope, rowCount: facts.counts.get(t.name) ?? 0, sensitiveColumns: t.sensitiveColumns.map((c) => c.name) })),
    rowCountsReadAs: readAs,
    sensitiveColumns: tables.flatMap((t) => t.sensitiveColumns.map((c) => ({
      table: t.name, column: c.name, encryption: 'AES-256-GCM' as const,
      search: c.sensitive && c.sensitive.searchable ? 'blind-index' as const : 'none' as const,
      blindIndexBytes: c.sensitive && c.sensitive.searchable ? c.sensitive.indexBytes : null,
      normalize: c.sensitive ? [...c.sensitive.normalize] : [],
      storage: storageOf(c, facts.catalog.get(t.name)),
    }))),
    key: {
      custody,
      provider: binding?.provider ?? null,
      providerKind,
      keyReference: binding?.keyId ?? null,
      holder: holderOf(custody, providerKind),
      holderEndpoint,
      directoryState: tenant.keyState,
      state,
      providerState,
      dataKeys: facts.dataKeys,
      lastRotation: { keyEncryptionKey: lastOf('key-rotate'), dataKey: lastOf('data-key-rotate'), indexKey: lastOf('index-key-rotate') },
      lastRevocation: keyEvents.find((e) => e.type === 'key.revoke' && e.outcome === 'ok') ?? null,
    },
    revocation: {
      cacheTtlMs,
      cacheTtlSource: tenant.cacheTtlMs !== null ? 'tenant-override' : binding ? 'custody-default' : 'no-key',
      killSwitchPollMs: config?.directoryPollMs ?? 500,
    },
    globalTables: globals.map((t) => ({
      name: t.name, rowsInRegion: facts.counts.get(t.name) ?? 0, rowsInControlPlane: cpCounts.get(t.name) ?? null,
      replication: 'outbox' as const, howItGetsThere: GLOBAL_TABLE_PROVENANCE,
    })),
    globalReplication,
    events: {
      limit: REPORT_EVENT_LIMIT,
      key: keyEvents.slice(0, REPORT_EVENT_LIMIT),
      moves: moveEvents.slice(0, REPORT_EVENT_LIMIT),
      tenant: tenantEvents.slice(0, REPORT_EVENT_LIMIT),
      operations: ops.slice(0, REPORT_EVENT_LIMIT).map(toOp),
      reveals: facts.reveals,
      revealTotals: facts.revealTotals,
    },
  }
}
