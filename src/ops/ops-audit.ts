/**
 * Audit records of online operations, in the region they concern (`domicile_audit`, written with
 * the owner's login: operations run as admin work, not in a tenant scope). Identifiers and counts
 * only, never plaintext or key material.
 */
import type { Placement } from '../regions/placement.js'
import type { RegionRouter } from '../regions/router.js'
import type { AuditRecord } from '../regions/tenant-records.js'

/** Appends records for one tenant in one region store (start, checkpoints, end, who). */
export async function appendOperationAudit(router: RegionRouter, region: Placement, tenantId: string, records: readonly AuditRecord[]): Promise<void> {
  if (records.length === 0) return
  const params: unknown[] = [tenantId]
  const values = records.map((r) => {
    params.push(r.type, r.outcome, r.actor, JSON.stringify(r.detail))
    const n = params.length
    return `($1, $${n - 3}, $${n - 2}, $${n - 1}, $${n}::jsonb)`
  })
  await router.withRegionAdmin(region, (s) => s.query(`INSERT INTO domicile_audit (tenant_id, type, outcome, actor, detail) VALUES ${values.join(', ')}`, params))
}
