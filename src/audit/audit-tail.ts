/**
 * A tenant's recent audit records, newest first: from its home region's `domicile_audit`
 * (reveals, key-provider calls, operations) and the control plane's `domicile_control_audit`
 * (provisioning, key state changes, moves), each with its chain position and hash.
 *
 * Audit records hold identifiers, outcomes and error codes, never plaintext of sensitive fields
 * nor key material (every writer is Domicile's own code; docs/ARCHITECTURE.md "Audit"); this reads
 * the stored columns as they are and adds nothing.
 *
 * Sits on top of the Domicile instance (uses its internal owner sessions), with report/.
 */
import type { Domicile } from '../domicile.js'
import { internalsOf } from '../domicile-internals.js'
import { DomicileError } from '../errors.js'
import type { StoreSession } from '../regions/store-driver.js'

export interface AuditTailRecord {
  /** `region` (the tenant's home region's store) or `control-plane`. */
  readonly store: 'region' | 'control-plane'
  /** The region's name, or `control-plane`. */
  readonly storeName: string
  readonly position: number | null
  readonly id: number
  readonly at: string
  readonly type: string
  readonly outcome: string
  readonly actor: string | null
  readonly detail: Record<string, unknown>
  /** The record's chain hash (hex). */
  readonly hash: string | null
}

export interface AuditTail {
  readonly tenant: string
  readonly region: string
  readonly records: readonly AuditTailRecord[]
}

export const AUDIT_TAIL_MAX = 10_000

interface Row {
  pos: string | null
  id: string
  at: Date | string
  type: string
  outcome: string
  actor: string | null
  detail: Record<string, unknown> | string
  hash: Uint8Array | null
}

async function recent(s: StoreSession, table: string, tenant: string, limit: number): Promise<Row[]> {
  const r = await s.query<Row>(`SELECT chain_pos::text AS pos, id::text AS id, at, type, outcome, actor, detail, hash
    FROM ${table} WHERE tenant_id = $1 ORDER BY id DESC LIMIT ${limit}`, [tenant])
  return r.rows
}

function toRecord(store: AuditTailRecord['store'], storeName: string, r: Row): AuditTailRecord {
  return {
    store, storeName,
    position: r.pos === null ? null : Number(r.pos),
    id: Number(r.id),
    at: (r.at instanceof Date ? r.at : new Date(r.at)).toISOString(),
    type: r.type, outcome: r.outcome, actor: r.actor,
    detail: typeof r.detail === 'string' ? JSON.parse(r.detail) as Record<string, unknown> : r.detail,
    hash: r.hash == null ? null : Buffer.from(r.hash).toString('hex'),
  }
}

/** The tenant's `limit` most recent audit records (default 50), newest first. */
export async function auditTail(d: Domicile, tenant: string, opts: { limit?: number } = {}): Promise<AuditTail> {
  const limit = opts.limit ?? 50
  /* Precondition: the limit is a whole number from 1 to AUDIT_TAIL_MAX. */
  if (!Number.isInteger(limit) || limit < 1 || limit > AUDIT_TAIL_MAX) {
    throw new DomicileError('ERR_INPUT_INVALID', `limit: expected an integer from 1 to ${AUDIT_TAIL_MAX}.`, { path: 'limit' })
  }
  const p = internalsOf(d)
  const t = await p.directory.get(tenant)
  const regional = await p.router.withRegionAdmin(t, (s) => recent(s, 'domicile_audit', tenant, limit))
  const control = await p.controlPlane.withSession((s) => recent(s, 'domicile_control_audit', tenant, limit), { role: 'owner' })
  const records = [
    ...regional.map((r) => toRecord('region', p.router.label(t), r)),
    ...control.map((r) => toRecord('control-plane', 'control-plane', r)),
  ].sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : b.id - a.id)).slice(0, limit)
  return { tenant, region: t.region, records }
}
