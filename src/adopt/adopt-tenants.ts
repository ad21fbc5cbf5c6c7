/**
 * `domicile adopt tenants` (docs/ADOPTING.md, step 3): registers every tenant that an adopted
 * application database already holds, each homed in that database's region and cell and bound to
 * its key, in one idempotent step.
 *
 * - **Found**: the distinct tenant-column values of the schema's adopted tenant tables in the store
 *   of region R (cell C), or of one table (`fromTable`, typically the tenants table such as
 *   `companies`), read as the region's owner in one read-only snapshot, never through a tenant
 *   scope. A tenant id is the value in its canonical text form (`7` for a bigint, a lower-case
 *   uuid: PostgreSQL's own `::text`). NULLs belong to no tenant and are skipped.
 * - **Invalid**: values that are not tenant ids (slugs, TENANT_ID: a negative number, an upper-case
 *   or over-long text value) are counted, with up to 10 examples and the tables they came from, and
 *   not registered.
 * - **Registered** through `onboardTenant` (src/onboarding/onboard-tenant.ts), one tenant at a time
 *   per worker: custody `kms` (a key at the provider-managed default) or `none`. Each tenant ends up
 *   fully registered (directory row, audit record and key binding, committed together) or absent;
 *   a key made for a tenant whose registration failed is destroyed again. So a run that stops part
 *   way (a failure, a killed process) is finished by running it again.
 * - **Idempotent**: a tenant already in the directory homed in this region and cell is `existing`,
 *   one homed anywhere else is `elsewhere` (its region and cell are reported); neither is changed,
 *   and this never moves a tenant.
 *
 * byok and hyok need each customer's own key material or key service: register with `kms` or `none`
 * and bind those later, tenant by tenant (`domicile tenant bind-key`, or `tenant add` for new ones).
 */
import { TENANT_ID, type TenantRecord } from '../control-plane/tenant-directory.js'
import type { Domicile } from '../domicile.js'
import { internalsOf } from '../domicile-internals.js'
import { DomicileError, isDomicileError } from '../errors.js'
import { onboardTenant } from '../onboarding/onboard-tenant.js'
import { silentProgress, type Progress } from '../ops/progress.js'
import { checkCell, regionUnknown, shown, storeLabel } from '../regions/placement.js'
import type { StoreSession } from '../regions/store-driver.js'
import type { ResolvedTable } from '../schema/define-schema.js'
import { q } from '../schema/sql-ident.js'

/** The custody levels this command can register with: the ones that need nothing per customer. */
export type AdoptCustody = 'kms' | 'none'

export interface AdoptTenantsOptions {
  /** The region whose store holds the application's database. */
  readonly region: string
  /** The region's cell; required only when the region has several. */
  readonly cell?: string
  /** Read the tenant ids from this adopted tenant table only (e.g. the tenants table `companies`). Default: every adopted tenant table. */
  readonly fromTable?: string
  /** Default 'kms'. */
  readonly custody?: AdoptCustody
  /** Tenants registered at once (1..16, default 4). */
  readonly concurrency?: number
  /** Recorded in the control-plane audit of each registration. */
  readonly actor?: string
  /** Notes (what is read, what was found), then state 'register' in unit 'tenants'. */
  readonly progress?: Progress
}

/** Values of the tenant column that cannot be tenant ids (not slugs). */
export interface AdoptInvalidValues {
  /** How many distinct values. */
  readonly count: number
  /** Up to 10 of them, in order (ids, not personal data; values over 64 characters are cut). */
  readonly examples: readonly string[]
  /** The tables that hold them. */
  readonly tables: readonly string[]
}

export interface AdoptTenantsResult {
  readonly region: string
  readonly cell: string
  /** The store's name in listings: the region, or `region/cell` when it has several cells. */
  readonly store: string
  /** The tables read. */
  readonly tables: readonly string[]
  readonly custody: AdoptCustody
  /** Distinct tenant ids found: added + existing + elsewhere. */
  readonly found: number
  /** Registered by this run, homed in region/cell. */
  readonly added: readonly string[]
  /** Already in the directory, homed in this region and cell: unchanged. */
  readonly existing: readonly string[]
  /** Already in the directory, homed in another region or cell: unchanged, never moved. */
  readonly elsewhere: ReadonlyArray<{ readonly id: string; readonly region: string; readonly cell: string }>
  readonly invalid: AdoptInvalidValues
}

const MAX_EXAMPLES = 10
const CUSTODIES: readonly string[] = ['kms', 'none']

function invalidInput(message: string, path: string): DomicileError {
  return new DomicileError('ERR_INPUT_INVALID', message, { path })
}

/**
 * Checks a custody level for `adoptTenants` (also used by the CLI before it opens anything).
 * Throws ERR_INPUT_INVALID; for byok and hyok the message points to `domicile tenant bind-key`.
 */
export function adoptCustody(custody: string): AdoptCustody {
  /* Precondition: custody needs nothing per customer (kms or none). */
  if (CUSTODIES.includes(custody)) return custody as AdoptCustody
  const perCustomer = custody === 'byok' || custody === 'hyok'
  throw invalidInput(perCustomer
    ? `custody "${custody}" needs each customer's own key material or key service, so it cannot be given to every tenant at once. Register them with "kms" or "none", then bind each customer's key with "domicile tenant bind-key ID --custody ${custody}" (a tenant registered with "none").`
    : 'custody: expected "kms" or "none" (byok and hyok are bound tenant by tenant: "domicile tenant bind-key").', 'custody')
}

/** The cell of the region holding the application's database (`adopt tenants`, `adopt globals`). Throws ERR_REGION_UNKNOWN / ERR_CELL_UNKNOWN. */
export function resolveCell(d: Domicile, region: string, cell: string | undefined): string {
  const cells = internalsOf(d).router.cellMap
  const list = cells.get(region)
  /* Precondition: the region is configured. */
  if (!list) throw regionUnknown(region, cells)
  if (cell === undefined) {
    /* Precondition: a region with several cells names the one holding the database. */
    if (list.length > 1) throw new DomicileError('ERR_CELL_UNKNOWN', `Region ${shown(region)} has several cells (${list.join(', ')}): name the one holding the application's database with --cell NAME.`, { path: '--cell' })
    return list[0]!
  }
  checkCell(cells, region, cell)
  return cell
}

/** The adopted tenant tables to read. Throws ERR_TABLE_UNKNOWN / ERR_INPUT_INVALID. */
function tablesToRead(d: Domicile, fromTable: string | undefined): ResolvedTable[] {
  const schema = d.schema
  if (fromTable !== undefined) {
    const t = schema.tables.get(fromTable)
    /* Precondition: --from-table names a table of the schema. */
    if (!t) throw new DomicileError('ERR_TABLE_UNKNOWN', `The schema has no table ${shown(fromTable)}. Name an adopted tenant table, usually the tenants table (e.g. companies).`, { path: '--from-table' })
    /* Precondition: --from-table names an adopted tenant table. */
    if (!t.adopted || t.scope !== 'tenant' || t.tenantColumn === null) {
      throw invalidInput(`Table ${shown(fromTable)} is not an adopted tenant table (${t.scope === 'global' ? 'it is global' : 'Domicile created it'}): tenants are read from the tenant column of an adopted table ("domicile adopt inspect" describes them).`, '--from-table')
    }
    return [t]
  }
  const all = [...schema.tables.values()].filter((t) => t.adopted && t.scope === 'tenant' && t.tenantColumn !== null)
  /* Precondition: the schema has adopted tenant tables to read. */
  if (all.length === 0) throw invalidInput('The schema has no adopted tenant table. Describe the application\'s tables with "domicile adopt inspect" and attach with "domicile migrate" first (docs/ADOPTING.md).', 'schema')
  return all
}

/** Digit strings in numeric order, then everything else in code-unit order. */
function compareIds(a: string, b: string): number {
  const na = /^\d+$/.test(a)
  const nb = /^\d+$/.test(b)
  if (na && nb) return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0)
  if (na !== nb) return na ? -1 : 1
  return a < b ? -1 : a > b ? 1 : 0
}

/** Each distinct tenant-column value (canonical text) with the tables it was read from. */
async function readTenantValues(s: StoreSession, tables: readonly ResolvedTable[]): Promise<Map<string, string[]>> {
  const found = new Map<string, string[]>()
  await s.exec('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
  try {
    for (const t of tables) {
      const col = q(t.tenantColumn!.name)
      const r = await s.query<{ v: string }>(`SELECT DISTINCT ${col}::text AS v FROM ${q(t.name)} WHERE ${col} IS NOT NULL`)
      for (const { v } of r.rows) {
        const where = found.get(v)
        if (where) where.push(t.name)
        else found.set(v, [t.name])
      }
    }
    await s.exec('COMMIT')
  } catch (e) {
    await s.exec('ROLLBACK').catch(() => s.discard())
    throw e
  }
  return found
}

/**
 * Finds every tenant in the application database of `region` (and cell) and registers the new ones
 * in the directory, homed there and bound to a key. Rerunning adds only tenants that appeared since.
 *
 * @example
 * const r = await adoptTenants(domicile, { region: 'us-east-1', fromTable: 'companies' })
 * console.log(`${r.added.length} added, ${r.existing.length} already registered`)
 */
export async function adoptTenants(d: Domicile, opts: AdoptTenantsOptions): Promise<AdoptTenantsResult> {
  const progress = opts.progress ?? silentProgress
  const custody = adoptCustody(opts.custody ?? 'kms')
  const concurrency = opts.concurrency ?? 4
  /* Precondition: the number of tenants registered at once is bounded. */
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 16) throw invalidInput('concurrency: expected an integer from 1 to 16.', 'concurrency')
  const cell = resolveCell(d, opts.region, opts.cell)
  const tables = tablesToRead(d, opts.fromTable)
  const { router, directory, keys } = internalsOf(d)
  /* Precondition: a key can be bound (a kms provider is configured). */
  if (custody === 'kms' && !keys) throw new DomicileError('ERR_KEY_PROVIDER_UNKNOWN', 'No key providers are configured for this instance: register with custody "none", or configure keys (a kms default).')
  const where = { region: opts.region, cell }
  const store = storeLabel(where, router.cellMap)

  progress.note(`${store}: reading the tenant ids in ${tables.map((t) => `${t.name}.${t.tenantColumn!.name}`).join(', ')} ...`)
  const values = await router.withRegionAdmin(where, (s) => readTenantValues(s, tables))

  const valid: string[] = []
  const bad: string[] = []
  const badTables = new Set<string>()
  for (const [v, from] of values) {
    if (TENANT_ID.test(v)) valid.push(v)
    else {
      bad.push(v)
      for (const t of from) badTables.add(t)
    }
  }
  valid.sort(compareIds)
  bad.sort(compareIds)

  const known = new Map((await directory.list()).map((t) => [t.id, t]))
  const existing: string[] = []
  const elsewhere: Array<{ id: string; region: string; cell: string }> = []
  const classify = (t: TenantRecord): void => {
    if (t.region === where.region && t.cell === cell) existing.push(t.id)
    else elsewhere.push({ id: t.id, region: t.region, cell: t.cell })
  }
  const toAdd: string[] = []
  for (const id of valid) {
    const t = known.get(id)
    if (t) classify(t)
    else toAdd.push(id)
  }
  progress.note(`${store}: ${valid.length} tenant${valid.length === 1 ? '' : 's'} found in ${tables.map((t) => t.name).join(', ')}; ${toAdd.length} to register, ${existing.length} already registered here, ${elsewhere.length} homed elsewhere${bad.length > 0 ? `, ${bad.length} value${bad.length === 1 ? '' : 's'} that cannot be tenant ids` : ''}.`)

  const added: string[] = []
  let next = 0
  let done = 0
  let failure: unknown
  const register = async (id: string): Promise<void> => {
    try {
      await onboardTenant(d, { id, region: where.region, cell, custody, ...(opts.actor !== undefined ? { actor: opts.actor } : {}) })
      added.push(id)
    } catch (e) {
      // Registered meanwhile by someone else (another run): it is there now, as whatever it is.
      if (!isDomicileError(e, 'ERR_TENANT_EXISTS')) throw e
      classify(await directory.fresh(id))
    }
  }
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < toAdd.length) {
      const id = toAdd[next++]!
      try {
        await register(id)
      } catch (e) {
        failure ??= e
        return
      }
      done++
      progress.update({ state: 'register', done, total: toAdd.length, unit: 'tenants' })
    }
  }
  if (toAdd.length > 0) {
    progress.update({ state: 'register', done: 0, total: toAdd.length, unit: 'tenants' })
    await Promise.all(Array.from({ length: Math.min(concurrency, toAdd.length) }, worker))
  }
  if (failure !== undefined) {
    /* Postcondition: each tenant is registered fully or not at all; a rerun registers the rest. */
    const note = `Registered before this failure: ${added.length} of ${toAdd.length} new tenant${toAdd.length === 1 ? '' : 's'}; the rest were not registered by this run (no tenant is left half-registered). Fix the cause and run "domicile adopt tenants" again: it registers only the tenants still missing.`
    if (isDomicileError(failure)) throw new DomicileError(failure.code, `${failure.message} ${note}`, { cause: failure, ...(failure.path !== undefined ? { path: failure.path } : {}) })
    throw failure
  }

  added.sort(compareIds)
  existing.sort(compareIds)
  elsewhere.sort((a, b) => compareIds(a.id, b.id))
  return Object.freeze({
    region: where.region, cell, store, tables: Object.freeze(tables.map((t) => t.name)), custody,
    found: valid.length,
    added: Object.freeze(added), existing: Object.freeze(existing), elsewhere: Object.freeze(elsewhere.map((e) => Object.freeze(e))),
    invalid: Object.freeze({
      count: bad.length,
      examples: Object.freeze(bad.slice(0, MAX_EXAMPLES).map((v) => (v.length > 64 ? `${v.slice(0, 64)}…` : v))),
      tables: Object.freeze(tables.map((t) => t.name).filter((n) => badTables.has(n))),
    }),
  })
}
