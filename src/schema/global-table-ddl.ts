/**
 * DDL of the replication of global tables (src/global/): the outbox in the control plane (the
 * authoritative copy's ordered change list, and each region's last reported version), and in
 * every region the version of the outbox it has applied. Idempotent like every migrate statement.
 * Writes are the owner's; the data plane may read (SELECT only).
 */
import { APP_ROLE } from '../regions/tenant-context.js'

/** Control plane: the outbox (one entry per committed write of a global table, gapless in commit order) and the replicas' last reports. */
export function globalControlPlaneDdl(): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS domicile_global_outbox (
      version bigserial PRIMARY KEY, table_name text NOT NULL, pk text NOT NULL,
      op text NOT NULL CHECK (op IN ('upsert','delete')), row jsonb NOT NULL, actor text,
      at timestamptz NOT NULL DEFAULT now())`,
    // What each region reported applying at its last successful pass: `replicate status` shows a
    // region that is down with the lag it had when it was last seen.
    `CREATE TABLE IF NOT EXISTS domicile_global_replicas (
      region text PRIMARY KEY, version bigint NOT NULL CHECK (version >= 0), reported_at timestamptz NOT NULL DEFAULT now())`,
    `REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON domicile_global_outbox, domicile_global_replicas FROM ${APP_ROLE}`,
    `REVOKE ALL ON SEQUENCE domicile_global_outbox_version_seq FROM ${APP_ROLE}`,
    `GRANT SELECT ON domicile_global_outbox, domicile_global_replicas TO ${APP_ROLE}`,
  ]
}

/** Region: the outbox version this region's copy of the global tables reflects (one row). */
export function globalRegionDdl(): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS domicile_global_applied (
      singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
      version bigint NOT NULL DEFAULT 0 CHECK (version >= 0), applied_at timestamptz)`,
    `INSERT INTO domicile_global_applied (singleton, version) VALUES (true, 0) ON CONFLICT (singleton) DO NOTHING`,
    // Only the replicator (owner login) moves the version, in the transaction that applies the rows.
    `REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON domicile_global_applied FROM ${APP_ROLE}`,
    `GRANT SELECT ON domicile_global_applied TO ${APP_ROLE}`,
  ]
}
