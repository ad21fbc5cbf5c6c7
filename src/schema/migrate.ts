/**
 * `migrate`: applies Domicile's internal tables, the application schema and row-level security
 * to the control plane and every configured region, each in one transaction, idempotently, as the
 * owner (`ownerUrl`). A new store is stamped with the region it is configured as; an existing store
 * whose stamp differs is refused (ERR_REGION_MISMATCH) before anything is written to it.
 *
 * With a separate owner login, `migrate` also creates the data plane's login role named in `url`
 * (with the password given there, sent as a SCRAM verifier) when it does not exist, and grants it
 * exactly what the data plane needs: CONNECT and membership in `domicile_app`. A data-plane role
 * that is privileged (superuser, BYPASSRLS, CREATEROLE, or a member of the owner) is refused.
 */
import { DomicileError, isDomicileError } from '../errors.js'
import type { Placement } from '../regions/placement.js'
import { CONTROL_PLANE_STAMP, ensureStamp, type Stamp } from '../regions/region-stamp.js'
import type { RegionRouter } from '../regions/router.js'
import type { StoreDriver, StoreSession } from '../regions/store-driver.js'
import { APP_ROLE, controlPlaneInternalDdl, q, regionInternalDdl, schemaDdl } from './ddl.js'
import { controlPlaneAuditChainDdl, regionAuditChainDdl } from './audit-chain-ddl.js'
import type { Schema } from './define-schema.js'
import { globalControlPlaneDdl, globalRegionDdl } from './global-table-ddl.js'
import { checkAdoptedTables, pendingEncryption, type PendingEncryption } from './adopted-tables.js'

type Logins = Pick<StoreDriver, 'separateOwner' | 'dataLogin'>

export interface MigrateResult {
  readonly store: string
  readonly ok: boolean
  readonly statements: number
  readonly code?: string
  readonly message?: string
  /** Sensitive columns of this store that still hold plaintext, each with the command that seals it online. */
  readonly pending?: readonly PendingEncryption[]
}

async function apply(session: StoreSession, statements: readonly string[], stamp: () => Promise<void>, store: Logins): Promise<void> {
  await session.exec('BEGIN')
  try {
    for (const s of statements) await session.query(s)
    await provisionDataLogin(session, store)
    await stamp()
    await session.exec('COMMIT')
  } catch (e) {
    await session.exec('ROLLBACK').catch(() => undefined)
    throw e
  }
}

/** Refuses a store stamped as something else before writing anything to it. */
async function checkExistingStamp(session: StoreSession, expected: Stamp): Promise<void> {
  const exists = await session.query<{ t: string | null }>(`SELECT to_regclass('domicile_stamp')::text AS t`)
  if (exists.rows[0]?.t) await ensureStamp(session, expected, { write: false })
}

export async function migrateControlPlane(store: StoreDriver, schema: Schema): Promise<MigrateResult> {
  const statements = [...controlPlaneInternalDdl(), ...controlPlaneAuditChainDdl(), ...globalControlPlaneDdl(), ...schemaDdl(schema, 'control-plane')]
  // Owner session only: the data plane's login may not exist before this migrate creates it.
  await store.withSession(async (s) => {
    await checkExistingStamp(s, { kind: 'control-plane', region: CONTROL_PLANE_STAMP })
    await apply(s, statements, () => ensureStamp(s, { kind: 'control-plane', region: CONTROL_PLANE_STAMP }, { write: true }), store)
  }, { role: 'owner' })
  return { store: 'control-plane', ok: true, statements: statements.length }
}

/** Migrates one region store (a cell of a region); it is stamped with both names. */
export async function migrateRegion(router: RegionRouter, where: Placement, schema: Schema): Promise<MigrateResult> {
  const statements = [...regionInternalDdl(), ...regionAuditChainDdl(), ...globalRegionDdl(), ...schemaDdl(schema, 'region')]
  const store = router.loginsOf(where)
  const stamp: Stamp = { kind: 'region', region: where.region, cell: where.cell }
  const pending = await router.withRegionAdmin(where, async (s) => {
    await checkExistingStamp(s, stamp)
    await checkAdoptedTables(s, schema, `region ${router.label(where)}`)
    await apply(s, statements, () => ensureStamp(s, stamp, { write: true }), store)
    return pendingEncryption(s, schema)
  }, { verifyStamp: false })
  return { store: router.label(where), ok: true, statements: statements.length, pending }
}

/** Migrates the control plane and every region store (each cell); one failing does not stop the others. */
export async function migrateAll(opts: { controlPlane: StoreDriver; router: RegionRouter; schema: Schema }): Promise<MigrateResult[]> {
  await checkAdoptedEverywhere(opts.router, opts.schema)
  const results: MigrateResult[] = [await migrateControlPlane(opts.controlPlane, opts.schema)]
  for (const where of opts.router.stores) {
    try {
      results.push(await migrateRegion(opts.router, where, opts.schema))
    } catch (e) {
      if (!isDomicileError(e)) throw e
      results.push({ store: opts.router.label(where), ok: false, statements: 0, code: e.code, message: e.message })
    }
  }
  return results
}

/** Creates (if missing) and grants the data plane's login role; refuses a privileged one. */
async function provisionDataLogin(session: StoreSession, store: Logins): Promise<void> {
  const login = store.dataLogin
  if (!store.separateOwner || !login) return
  /* Precondition: the data plane's login is not the owner's. */
  const me = await session.query<{ u: string }>('SELECT current_user AS u')
  if (me.rows[0]?.u === login.user) {
    throw new DomicileError('ERR_CONFIG_INVALID', 'The data plane\'s login ("url") and the owner\'s ("ownerUrl") are the same role. Give the data plane a role of its own; migrate creates it.')
  }
  const role = q(login.user)
  const existing = await session.query<{ privileged: boolean }>(
    `SELECT (r.rolsuper OR r.rolbypassrls OR r.rolcreaterole OR pg_has_role(r.oid, current_user, 'MEMBER')) AS privileged FROM pg_roles r WHERE r.rolname = $1`, [login.user])
  if (existing.rows.length === 0) {
    const verifier = login.scramVerifier()
    // A SCRAM verifier is base64, digits, '$' and ':' only: safe inside a literal.
    await session.query(`CREATE ROLE ${role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS INHERIT${verifier ? ` PASSWORD '${verifier}'` : ''}`)
  } else if (existing.rows[0]!.privileged) {
    throw new DomicileError('ERR_CONFIG_INVALID',
      'The data plane\'s login role ("url") is privileged (superuser, BYPASSRLS, CREATEROLE, or a member of the owner). It must own nothing and be unable to change role: use another role name, and migrate creates it.')
  }
  await session.query(`GRANT ${APP_ROLE} TO ${role}`)
  const db = await session.query<{ d: string }>('SELECT current_database() AS d')
  await session.query(`GRANT CONNECT ON DATABASE ${q(db.rows[0]!.d)} TO ${role}`)
}

/**
 * Tables described with `adopted: true` (written by `domicile adopt inspect`) are the
 * application's own: `migrate` attaches to them (src/schema/ddl.ts) only where each is as the schema
 * describes it. Every reachable region store is checked before anything is written to any store; a
 * store that cannot be reached is checked (and reported failed) by its own migrate below.
 */
async function checkAdoptedEverywhere(router: RegionRouter, schema: Schema): Promise<void> {
  if (![...schema.tables.values()].some((t) => t.adopted)) return
  for (const where of router.stores) {
    try {
      await router.withRegionAdmin(where, (s) => checkAdoptedTables(s, schema, `region ${router.label(where)}`), { verifyStamp: false })
    } catch (e) {
      if (isDomicileError(e) && e.code === 'ERR_SCHEMA_INVALID') throw e
    }
  }
}
