/**
 * `migrate`: applies Domicile's internal tables, the application schema and row-level security
 * to the control plane and every configured region, each in one transaction, idempotently.
 * A new store is stamped with the region it is configured as; an existing store whose stamp
 * differs is refused (ERR_REGION_MISMATCH) before anything is written to it.
 */
import { isDomicileError } from '../errors.js'
import { CONTROL_PLANE_STAMP, ensureStamp } from '../regions/region-stamp.js'
import type { RegionRouter } from '../regions/router.js'
import type { StoreDriver, StoreSession } from '../regions/store-driver.js'
import { controlPlaneInternalDdl, regionInternalDdl, schemaDdl } from './ddl.js'
import type { Schema } from './define-schema.js'

export interface MigrateResult {
  readonly store: string
  readonly ok: boolean
  readonly statements: number
  readonly code?: string
  readonly message?: string
}

async function apply(session: StoreSession, statements: readonly string[], stamp: () => Promise<void>): Promise<void> {
  await session.exec('BEGIN')
  try {
    for (const s of statements) await session.query(s)
    await stamp()
    await session.exec('COMMIT')
  } catch (e) {
    await session.exec('ROLLBACK').catch(() => undefined)
    throw e
  }
}

/** Refuses a store stamped as something else before writing anything to it. */
async function checkExistingStamp(session: StoreSession, kind: 'region' | 'control-plane', region: string): Promise<void> {
  const exists = await session.query<{ t: string | null }>(`SELECT to_regclass('domicile_stamp')::text AS t`)
  if (exists.rows[0]?.t) await ensureStamp(session, { kind, region }, { write: false })
}

export async function migrateControlPlane(store: StoreDriver, schema: Schema): Promise<MigrateResult> {
  const statements = [...controlPlaneInternalDdl(), ...schemaDdl(schema, 'control-plane')]
  await store.init()
  await store.withSession(async (s) => {
    await checkExistingStamp(s, 'control-plane', CONTROL_PLANE_STAMP)
    await apply(s, statements, () => ensureStamp(s, { kind: 'control-plane', region: CONTROL_PLANE_STAMP }, { write: true }))
  })
  return { store: 'control-plane', ok: true, statements: statements.length }
}

export async function migrateRegion(router: RegionRouter, region: string, schema: Schema): Promise<MigrateResult> {
  const statements = [...regionInternalDdl(), ...schemaDdl(schema, 'region')]
  await router.withRegionAdmin(region, async (s) => {
    await checkExistingStamp(s, 'region', region)
    await apply(s, statements, () => ensureStamp(s, { kind: 'region', region }, { write: true }))
  }, { verifyStamp: false })
  return { store: region, ok: true, statements: statements.length }
}

/** Migrates the control plane and every region; one region failing does not stop the others. */
export async function migrateAll(opts: { controlPlane: StoreDriver; router: RegionRouter; schema: Schema }): Promise<MigrateResult[]> {
  const results: MigrateResult[] = [await migrateControlPlane(opts.controlPlane, opts.schema)]
  for (const region of opts.router.regionNames) {
    try {
      results.push(await migrateRegion(opts.router, region, opts.schema))
    } catch (e) {
      if (!isDomicileError(e)) throw e
      results.push({ store: region, ok: false, statements: 0, code: e.code, message: e.message })
    }
  }
  return results
}
