/**
 * `replicate status`: per region, the outbox version its copy of the global tables reflects, the
 * control plane's latest version, and the lag in entries and seconds (the age of the oldest entry
 * the region has not applied). A region that cannot be reached is reported with the version it had
 * at its last successful pass (`domicile_global_replicas`), so its lag stays visible while it is down.
 */
import type { Domicile } from '../domicile.js'
import { internalsOf } from '../domicile-internals.js'
import { isDomicileError } from '../errors.js'
import { replicaNames } from './global-replicator.js'

export interface RegionReplicationStatus {
  /** The region, or `region/cell` for each cell of a region with several (each cell keeps a replica). */
  readonly region: string
  readonly reachable: boolean
  /** The version the region has applied: read from the region, or (unreachable) its last report; null if never seen. */
  readonly version: number | null
  /** Where `version` comes from. */
  readonly versionSource: 'region' | 'last-report' | 'unknown'
  /** When the region's version was last recorded in the control plane (ISO 8601; on change, else at most once a minute), if ever. */
  readonly lastReportAt: string | null
  /** Outbox entries the region has not applied. */
  readonly lagVersions: number
  /** Age in seconds of the oldest entry the region has not applied; 0 when caught up. */
  readonly lagSeconds: number
  readonly code?: string
}

export interface ReplicationStatus {
  /** The control plane's latest outbox version (0: no global write yet). */
  readonly latestVersion: number
  /** When that version was written (ISO 8601), or null. */
  readonly latestAt: string | null
  readonly regions: readonly RegionReplicationStatus[]
}

const iso = (v: unknown): string | null => (v === null || v === undefined ? null : new Date(v as string).toISOString())

async function regionVersion(d: Domicile, region: string): Promise<{ reachable: true; version: number } | { reachable: false; code?: string }> {
  try {
    const { router } = internalsOf(d)
    const v = await router.withRegionAdmin(router.resolve(region), (s) => s.query<{ version: string | number }>('SELECT version FROM domicile_global_applied WHERE singleton'))
    return { reachable: true, version: Number(v.rows[0]?.version ?? 0) }
  } catch (e) {
    if (!isDomicileError(e)) throw e
    return { reachable: false, code: e.code }
  }
}

/**
 * The replication state of every region this process serves.
 *
 * @example
 * ```ts
 * const { latestVersion, regions } = await replicationStatus(domicile)
 * const behind = regions.filter((r) => r.lagVersions > 0).map((r) => r.region)
 * ```
 */
export async function replicationStatus(d: Domicile): Promise<ReplicationStatus> {
  const cp = internalsOf(d).controlPlane
  const [head, reports] = await cp.withSession(async (s) => [
    (await s.query<{ version: string | number; at: unknown }>('SELECT version, at FROM domicile_global_outbox ORDER BY version DESC LIMIT 1')).rows[0],
    (await s.query<{ region: string; version: string | number; reported_at: unknown }>('SELECT region, version, reported_at FROM domicile_global_replicas')).rows,
  ] as const)
  const latestVersion = Number(head?.version ?? 0)
  const lastReport = new Map(reports.map((r) => [r.region, r]))
  const names = replicaNames(d)
  const live = await Promise.all(names.map((r) => regionVersion(d, r)))
  const regions: RegionReplicationStatus[] = []
  for (const [i, region] of names.entries()) {
    const l = live[i]!
    const rep = lastReport.get(region)
    const version = l.reachable ? l.version : rep ? Number(rep.version) : null
    const lag = await cp.withSession((s) => s.query<{ n: string | number; age: string | number | null }>(
      'SELECT count(*) AS n, extract(epoch FROM now() - min(at)) AS age FROM domicile_global_outbox WHERE version > $1', [version ?? 0]))
    regions.push({
      region, reachable: l.reachable, version,
      versionSource: l.reachable ? 'region' : rep ? 'last-report' : 'unknown',
      lastReportAt: iso(rep?.reported_at),
      lagVersions: Number(lag.rows[0]?.n ?? 0),
      lagSeconds: Math.max(0, Math.round(Number(lag.rows[0]?.age ?? 0) * 10) / 10),
      ...(!l.reachable && l.code ? { code: l.code } : {}),
    })
  }
  return { latestVersion, latestAt: iso(head?.at), regions }
}
