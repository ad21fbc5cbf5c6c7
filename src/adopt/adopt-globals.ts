/**
 * `domicile adopt globals --region R`: the application's existing reference data (its adopted
 * global tables, such as `plans`) becomes Domicile's replicated global data. Each row is read from
 * the region's database (as the owner) and written through the control plane, the authoritative
 * copy (`upsertGlobal`: validated, versioned in the outbox), then replicated to every region. A new
 * region then holds the rows its tenants' foreign keys point to (`companies.plan_id` → `plans`)
 * before tenants move there. Idempotent: a row the control plane already holds with the same
 * values is not written again, so a rerun writes only what changed.
 *
 * Global data is copied to every region, so it must not be personal: a table with a column whose
 * name looks personal (the residency linter's check, unless waived with `residency: { notPersonal }`;
 * a column called just `name` is left to the linter)
 * or whose text values look personal (e-mails, IBANs, phone numbers) is refused and nothing of it is
 * copied (`refused`, with the reason; never a value). `adopt inspect` flags such tables: make them
 * tenant tables, or leave them out of the schema.
 */
import type { Domicile } from '../domicile.js'
import { internalsOf } from '../domicile-internals.js'
import { canonicalRow } from '../global/global-row.js'
import { upsertGlobal } from '../global/global-write.js'
import { replicateOnce, type RegionReplication } from '../global/global-replicator.js'
import { silentProgress, type Progress } from '../ops/progress.js'
import { resolveCell } from './adopt-tenants.js'
import type { ResolvedTable } from '../schema/define-schema.js'
import { q } from '../schema/sql-ident.js'
import { personalNameCategory } from '../lint/personal-names.js'
import { personalValueKinds } from '../lint/personal-values.js'

export interface AdoptGlobalsOptions {
  /** The region whose store holds the application's database. */
  readonly region: string
  /** The region's cell; required only when the region has several. */
  readonly cell?: string
  /** Recorded with each outbox entry. */
  readonly actor?: string
  /** 'read', then 'write' (unit 'rows'). */
  readonly progress?: Progress
}

export interface AdoptGlobalsResult {
  readonly region: string
  readonly cell: string
  /** Per adopted global table: rows read, rows written to the control plane (new or changed). */
  readonly tables: ReadonlyArray<{ readonly table: string; readonly rows: number; readonly written: number }>
  /** Adopted global tables not copied because they look personal (column and kind only, never a value). */
  readonly refused: ReadonlyArray<{ readonly table: string; readonly reason: string }>
  /** The replication pass that followed, per region store. */
  readonly replicated: readonly RegionReplication[]
}

/**
 * @example
 * const r = await adoptGlobals(domicile, { region: 'us-east-1' })
 * r.tables // [{ table: 'plans', rows: 3, written: 3 }]
 */
export async function adoptGlobals(d: Domicile, opts: AdoptGlobalsOptions): Promise<AdoptGlobalsResult> {
  const { router, controlPlane } = internalsOf(d)
  const cell = resolveCell(d, opts.region, opts.cell)
  const progress = opts.progress ?? silentProgress
  const tables = [...d.schema.tables.values()].filter((t) => t.adopted && t.scope === 'global')
  const out: Array<{ table: string; rows: number; written: number }> = []
  const refused: Array<{ table: string; reason: string }> = []
  let done = 0
  for (const t of tables) {
    const cols = [...t.columns.keys()]
    const select = `SELECT ${cols.map(q).join(', ')} FROM ${q(t.name)} ORDER BY ${q(t.primaryKey)}`
    progress.update({ state: 'read', done, unit: 'rows' })
    const rows = (await router.withRegionAdmin({ region: opts.region, cell }, (s) => s.query<Record<string, unknown>>(select))).rows
    const personal = personalReason(t, rows)
    if (personal !== undefined) {
      refused.push({ table: t.name, reason: personal })
      continue
    }
    const held = new Map((await controlPlane.withSession((s) => s.query<Record<string, unknown>>(select), { role: 'owner' })).rows
      .map((r) => { const c = canonicalRow(t, r); return [JSON.stringify(c[t.primaryKey]), JSON.stringify(c)] as const }))
    let written = 0
    for (const r of rows) {
      // Validated as any global write (a value that does not fit the schema is refused here).
      const c = canonicalRow(t, r)
      if (held.get(JSON.stringify(c[t.primaryKey])) !== JSON.stringify(c)) {
        await upsertGlobal(d, t.name, c, opts.actor !== undefined ? { actor: opts.actor } : {})
        written++
      }
      progress.update({ state: 'write', done: ++done, unit: 'rows' })
    }
    out.push({ table: t.name, rows: rows.length, written })
  }
  // Replication is idempotent: a store that did not answer gets two more passes (a cold connection
  // under load), then is reported; it catches up by itself later (`domicile replicate status`).
  let replicated = await replicateOnce(d)
  for (let pass = 0; pass < 2 && replicated.some((r) => !r.ok); pass++) {
    const again = new Map((await replicateOnce(d, { regions: [...new Set(replicated.filter((r) => !r.ok).map((r) => router.resolve(r.region).region))] })).map((r) => [r.region, r]))
    replicated = replicated.map((r) => again.get(r.region) ?? r)
  }
  return { region: opts.region, cell, tables: out, refused, replicated }
}

/** Why a global table's rows must not be replicated (they look personal), or undefined. */
function personalReason(t: ResolvedTable, rows: readonly Record<string, unknown>[]): string | undefined {
  for (const c of t.columns.values()) {
    // A column called just `name` names the row's thing (a plan, a country) unless the table is of
    // people; that is for `domicile lint` and a waiver to settle, and its values are checked below.
    const category = c.notPersonal === undefined && c.name !== 'name' ? personalNameCategory(c.name) : undefined
    if (category !== undefined) return `column ${c.name}: its name looks like ${category} (waive with residency: { notPersonal: 'why' } if it holds no personal data)`
  }
  for (const c of t.columns.values()) {
    if (c.type !== 'text' && c.type !== 'jsonb') continue
    let hits = 0
    let kind: string | undefined
    for (const r of rows) {
      const v = r[c.name]
      if (v === null || v === undefined) continue
      const kinds = personalValueKinds(typeof v === 'string' ? v : JSON.stringify(v))
      if (kinds.length > 0) {
        hits++
        kind ??= kinds[0]
      }
    }
    if (hits > 0) return `column ${c.name}: ${hits} of ${rows.length} values look like ${kind === 'email' ? 'e-mail addresses' : kind === 'iban' ? 'IBANs' : 'phone numbers'}`
  }
  return undefined
}
