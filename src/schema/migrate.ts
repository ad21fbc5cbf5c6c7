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

/** Each lock migrate waits for is given up after this (then the whole attempt is retried). */
const LOCK_TIMEOUT_MS = 100
const ATTEMPTS = 40

/** Lock waits given up (55P03) or a deadlock (40P01): another transaction held what migrate needed. */
const LOCK_CONTENTION = /SQLSTATE (55P03|40P01)\b/

/**
 * Applies the statements in one transaction. On a live database (an adopted application's, or a
 * region serving tenants) the application's transactions hold locks on the same tables in their
 * own order (an insert into `contacts` locks it, then `companies` for its foreign key): migrate
 * takes every lock it will need up front, waits at most LOCK_TIMEOUT_MS for each (well under the
 * server's deadlock_timeout, so it is migrate that gives up, never the application's transaction),
 * and on contention rolls back and tries again after a short, jittered pause.
 */
async function apply(session: StoreSession, statements: readonly string[], stamp: () => Promise<void>, store: Logins, lockTables: readonly string[] = []): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    await session.exec('BEGIN')
    try {
      await session.query(`SET LOCAL lock_timeout = '${LOCK_TIMEOUT_MS}ms'`)
      if (lockTables.length > 0) {
        const existing = (await session.query<{ t: string }>('SELECT t FROM unnest($1::text[]) WITH ORDINALITY u(t, i) WHERE to_regclass(t) IS NOT NULL ORDER BY i', [lockTables.map(q)])).rows.map((r) => r.t)
        if (existing.length > 0) await session.query(`LOCK TABLE ${existing.join(', ')} IN ACCESS EXCLUSIVE MODE`)
      }
      for (const s of statements) await session.query(s)
      await provisionDataLogin(session, store)
      await stamp()
      await session.exec('COMMIT')
      return
    } catch (e) {
      await session.exec('ROLLBACK').catch(() => undefined)
      if (attempt < ATTEMPTS && e instanceof Error && LOCK_CONTENTION.test(e.message)) {
        await new Promise((r) => setTimeout(r, Math.min(1000, 50 * attempt) * (0.5 + Math.random())))
        continue
      }
      throw e
    }
  }
}

/** The tables a region's migrate alters, children (the schema's later tables) first; Domicile's own last. */
function regionLockTables(schema: Schema): string[] {
  return [...[...schema.tables.keys()].reverse(), 'domicile_data_keys', 'domicile_audit']
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
    await apply(s, statements, () => ensureStamp(s, stamp, { write: true }), store, regionLockTables(schema))
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
