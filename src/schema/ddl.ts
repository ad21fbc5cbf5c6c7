/**
 * DDL for the application's tables and Domicile's internal tables, with row-level security.
 * Every statement is idempotent (IF NOT EXISTS / ADD COLUMN IF NOT EXISTS / policies replaced), so
 * `migrate` can run any number of times and brings a new region up.
 */
import { DEFAULT_CELL } from '../regions/placement.js'
import { APP_ROLE } from '../regions/tenant-context.js'
import { DIRECTION_MARK, shadowName } from './column-layout.js'
import type { ColumnType, ResolvedColumn, ResolvedTable, Schema } from './define-schema.js'
import { isolationDdl } from './isolation-ddl.js'
import { q } from './sql-ident.js'
import { tenantColumnSql, tenantPolicyPredicate } from './tenant-column.js'

export { APP_ROLE }

export { q }

const SQL_TYPES: Record<ColumnType, string> = {
  text: 'text', integer: 'integer', bigint: 'bigint', boolean: 'boolean', numeric: 'numeric',
  timestamptz: 'timestamptz', jsonb: 'jsonb', uuid: 'uuid', bytea: 'bytea',
}

const createRole = `DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${APP_ROLE}') THEN
    CREATE ROLE ${APP_ROLE} NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
  END IF;
END $$;`

/**
 * Row-level security on a tenant table: rows of the transaction's verified tenant only
 * (`domicile_tenant()`, src/schema/isolation-ddl.ts, evaluated once per statement). Not FORCEd: the
 * owner (migrate, admin work, moves) works across tenants; scopes never run as the owner. The
 * comparison is on the table's tenant column (src/schema/tenant-column.ts); Domicile's own tables
 * and the tables it creates use `tenant_id`.
 */
function tenantPolicy(table: string, predicate = 'tenant_id = (SELECT domicile_tenant())'): string[] {
  const t = q(table)
  return [
    `ALTER TABLE ${t} ENABLE ROW LEVEL SECURITY`,
    `ALTER TABLE ${t} NO FORCE ROW LEVEL SECURITY`,
    `DROP POLICY IF EXISTS domicile_tenant_isolation ON ${t}`,
    `CREATE POLICY domicile_tenant_isolation ON ${t} USING (${predicate}) WITH CHECK (${predicate})`,
  ]
}

/** Statements for one application table in a region store (or the control plane for globals). */
export function tableDdl(t: ResolvedTable, target: 'region' | 'control-plane'): string[] {
  if (t.adopted && (target === 'region' || t.scope === 'tenant')) return adoptedTableDdl(t)
  const name = q(t.name)
  const cols: string[] = []
  if (t.scope === 'tenant') cols.push('tenant_id text NOT NULL')
  for (const c of t.columns.values()) {
    const type = c.sensitive ? 'bytea' : SQL_TYPES[c.type]
    // NOT NULL is set when a table is created; a column added later to an existing table is
    // checked by the repository only (existing rows would not satisfy the constraint).
    cols.push(`${q(c.name)} ${type}${c.nullable ? '' : ' NOT NULL'}`)
    if (c.indexColumn) cols.push(`${q(c.indexColumn)} bytea`)
  }
  const pk = t.scope === 'tenant' ? `PRIMARY KEY (tenant_id, ${q(t.primaryKey)})` : `PRIMARY KEY (${q(t.primaryKey)})`
  const out = [`CREATE TABLE IF NOT EXISTS ${name} (${cols.join(', ')}, ${pk})`]
  // Columns added to the schema later arrive through ADD COLUMN IF NOT EXISTS.
  for (const c of t.columns.values()) {
    if (c.name === t.primaryKey) continue
    out.push(`ALTER TABLE ${name} ADD COLUMN IF NOT EXISTS ${q(c.name)} ${c.sensitive ? 'bytea' : SQL_TYPES[c.type]}`)
    if (c.indexColumn) {
      out.push(`ALTER TABLE ${name} ADD COLUMN IF NOT EXISTS ${q(c.indexColumn)} bytea`)
      out.push(`CREATE INDEX IF NOT EXISTS ${q(`${t.name}_${c.indexColumn}`)} ON ${name} (${t.scope === 'tenant' ? 'tenant_id, ' : ''}${q(c.indexColumn)})`)
    }
  }
  for (const c of t.sensitiveColumns) if (c.type === 'text') out.push(prepareEncryptInPlace(t, c))
  for (const ix of t.indexes) {
    out.push(`CREATE INDEX IF NOT EXISTS ${q(`${t.name}_${ix}_idx`)} ON ${name} (${t.scope === 'tenant' ? 'tenant_id, ' : ''}${q(ix)})`)
  }
  if (t.scope === 'tenant') {
    out.push(...tenantPolicy(t.name))
    out.push(`GRANT SELECT, INSERT, UPDATE, DELETE ON ${name} TO ${APP_ROLE}`)
  } else if (target === 'region') {
    // Replicas of reference data are read-only for tenant scopes.
    out.push(`GRANT SELECT ON ${name} TO ${APP_ROLE}`)
  }
  return out
}

/**
 * Attaching to an application's existing table (`adopted: true`, docs/ADOPTING.md): nothing is
 * created, dropped or rewritten. A tenant table gets row-level security on its tenant column, the
 * scope role's grants (the table, and the sequences its columns draw defaults from), each
 * searchable column's blind-index column and index, and a text sensitive column's shadow for its
 * encryption. A global table gets read access for scopes. `migrate` checks first that the table is as
 * the schema describes it (src/schema/adopted-tables.ts). Every statement is catalog-only except the
 * blind-index indexes, built on a column that is NULL in every row until encryption fills it.
 */
function adoptedTableDdl(t: ResolvedTable): string[] {
  const name = q(t.name)
  if (t.scope === 'global') return [`GRANT SELECT ON ${name} TO ${APP_ROLE}`]
  const tc = tenantColumnSql(t)
  const out: string[] = []
  for (const c of t.sensitiveColumns) {
    if (!c.indexColumn) continue
    out.push(`ALTER TABLE ${name} ADD COLUMN IF NOT EXISTS ${q(c.indexColumn)} bytea`)
    out.push(`CREATE INDEX IF NOT EXISTS ${q(`${t.name}_${c.indexColumn}`)} ON ${name} (${tc}, ${q(c.indexColumn)})`)
  }
  for (const c of t.sensitiveColumns) if (c.type === 'text') out.push(prepareEncryptInPlace(t, c))
  for (const ix of t.indexes) out.push(`CREATE INDEX IF NOT EXISTS ${q(`${t.name}_${ix}_idx`)} ON ${name} (${tc}, ${q(ix)})`)
  out.push(...tenantPolicy(t.name, tenantPolicyPredicate(t)))
  out.push(`GRANT SELECT, INSERT, UPDATE, DELETE ON ${name} TO ${APP_ROLE}`)
  // Inserts through Domicile draw keys from the table's own sequences (bigserial, identity).
  out.push(`DO $domicile$ DECLARE s regclass; BEGIN
  FOR s IN SELECT d.objid::regclass FROM pg_depend d JOIN pg_class c ON c.oid = d.objid AND c.relkind = 'S'
           WHERE d.refobjid = to_regclass('${name}') AND d.deptype IN ('a', 'i') LOOP
    EXECUTE format('GRANT USAGE, SELECT ON SEQUENCE %s TO ${APP_ROLE}', s);
  END LOOP;
END $domicile$`)
  return out
}

/**
 * A column declared sensitive that still holds plaintext (SQL type `text`, a populated table made
 * before the column became sensitive): `migrate` adds the shadow column for its encryption
 * (src/schema/column-layout.ts), marked for the encrypt direction, and lets the plaintext column
 * hold NULL (rows move to the shadow one by one). Catalog-only: no table rewrite, no scan. A column
 * already migrating (either direction) is left as it is; `domicile migrate encrypt` does the rest.
 * Names are schema identifiers ([a-z0-9_]), safe inside the literals.
 */
function prepareEncryptInPlace(t: ResolvedTable, c: ResolvedColumn): string {
  const table = q(t.name)
  const shadow = shadowName(c.name)
  return `DO $domicile$ BEGIN
  IF EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('${table}') AND attname = '${c.name}' AND NOT attisdropped AND atttypid = 'text'::regtype)
     AND NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('${table}') AND attname = '${shadow}' AND NOT attisdropped) THEN
    ALTER TABLE ${table} ADD COLUMN ${q(shadow)} bytea;
    COMMENT ON COLUMN ${table}.${q(shadow)} IS '${DIRECTION_MARK.encrypt}';
    ALTER TABLE ${table} ALTER COLUMN ${q(c.name)} DROP NOT NULL;
  END IF;
END $domicile$`
}

/** Domicile's own tables in every region store. */
export function regionInternalDdl(): string[] {
  return [
    createRole,
    `CREATE TABLE IF NOT EXISTS domicile_stamp (singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton), kind text NOT NULL, region text NOT NULL, stamped_at timestamptz NOT NULL DEFAULT now())`,
    // The cell of the region this store is (src/regions/placement.ts); stores stamped before cells are "main".
    `ALTER TABLE domicile_stamp ADD COLUMN IF NOT EXISTS cell text NOT NULL DEFAULT '${DEFAULT_CELL}'`,
    `GRANT SELECT ON domicile_stamp TO ${APP_ROLE}`,
    // Before any policy: the policies call domicile_tenant().
    ...isolationDdl(),
    `CREATE TABLE IF NOT EXISTS domicile_data_keys (
      tenant_id text NOT NULL, purpose text NOT NULL CHECK (purpose IN ('data','index')), key_number integer NOT NULL,
      wrapped bytea NOT NULL, provider text NOT NULL, key_id text NOT NULL,
      status text NOT NULL DEFAULT 'active' CHECK (status IN ('active','retired')),
      encryptions_reserved bigint NOT NULL DEFAULT 0, max_encryptions bigint NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (tenant_id, purpose, key_number),
      CHECK (encryptions_reserved <= max_encryptions))`,
    ...tenantPolicy('domicile_data_keys'),
    // Scopes read their tenant's wrapped keys; only Domicile's definer functions write them.
    `REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON domicile_data_keys FROM ${APP_ROLE}`,
    `GRANT SELECT ON domicile_data_keys TO ${APP_ROLE}`,
    `CREATE TABLE IF NOT EXISTS domicile_audit (
      id bigserial PRIMARY KEY, tenant_id text NOT NULL, at timestamptz NOT NULL DEFAULT now(),
      type text NOT NULL, outcome text NOT NULL, actor text, detail jsonb NOT NULL DEFAULT '{}'::jsonb)`,
    `CREATE INDEX IF NOT EXISTS domicile_audit_tenant_idx ON domicile_audit (tenant_id, id)`,
    ...tenantPolicy('domicile_audit'),
    // Scopes read their tenant's audit records; only Domicile's definer functions append.
    `REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON domicile_audit FROM ${APP_ROLE}`,
    `REVOKE ALL ON SEQUENCE domicile_audit_id_seq FROM ${APP_ROLE}`,
    `GRANT SELECT ON domicile_audit TO ${APP_ROLE}`,
  ]
}

/** Domicile's own tables in the control plane. Non-personal metadata only. */
export function controlPlaneInternalDdl(): string[] {
  return [
    createRole,
    `CREATE TABLE IF NOT EXISTS domicile_stamp (singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton), kind text NOT NULL, region text NOT NULL, stamped_at timestamptz NOT NULL DEFAULT now())`,
    // The cell of the region this store is (src/regions/placement.ts); stores stamped before cells are "main".
    `ALTER TABLE domicile_stamp ADD COLUMN IF NOT EXISTS cell text NOT NULL DEFAULT '${DEFAULT_CELL}'`,
    `CREATE TABLE IF NOT EXISTS domicile_tenants (
      id text PRIMARY KEY, region text NOT NULL,
      status text NOT NULL CHECK (status IN ('active','suspended','moving')),
      custody text CHECK (custody IN ('kms','byok','hyok')), provider text, key_id text,
      key_state text NOT NULL DEFAULT 'none' CHECK (key_state IN ('none','enabled','revoked','pending-import','destroyed')),
      cache_ttl_ms integer CHECK (cache_ttl_ms IS NULL OR cache_ttl_ms >= 0),
      version bigint NOT NULL DEFAULT 1,
      created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now())`,
    // The tenant's cell in its home region; tenants added before cells are in "main".
    `ALTER TABLE domicile_tenants ADD COLUMN IF NOT EXISTS cell text NOT NULL DEFAULT '${DEFAULT_CELL}'`,
    `CREATE TABLE IF NOT EXISTS domicile_directory_log (seq bigserial PRIMARY KEY, tenant_id text NOT NULL, change text NOT NULL, at timestamptz NOT NULL DEFAULT now())`,
    `CREATE TABLE IF NOT EXISTS domicile_control_audit (
      id bigserial PRIMARY KEY, tenant_id text, at timestamptz NOT NULL DEFAULT now(),
      type text NOT NULL, outcome text NOT NULL, actor text, detail jsonb NOT NULL DEFAULT '{}'::jsonb)`,
    // Existing control planes: widen the key-state check (CREATE TABLE IF NOT EXISTS keeps the old one).
    `ALTER TABLE domicile_tenants DROP CONSTRAINT IF EXISTS domicile_tenants_key_state_check`,
    `ALTER TABLE domicile_tenants ADD CONSTRAINT domicile_tenants_key_state_check CHECK (key_state IN ('none','enabled','revoked','pending-import','destroyed'))`,
    // The operations journal: online lifecycle operations (moves, rotations, migrations, destruction),
    // their state machine position and checkpoint, so a killed operation resumes or aborts.
    `CREATE TABLE IF NOT EXISTS domicile_operations (
      id bigserial PRIMARY KEY, kind text NOT NULL, tenant_id text, target text NOT NULL,
      state text NOT NULL, status text NOT NULL DEFAULT 'running' CHECK (status IN ('running','done','aborted','failed')),
      checkpoint jsonb NOT NULL DEFAULT '{}'::jsonb, actor text,
      started_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(), finished_at timestamptz)`,
    // One running operation per target (a tenant, or a table column): operations never overlap.
    `CREATE UNIQUE INDEX IF NOT EXISTS domicile_operations_one_running ON domicile_operations (target) WHERE status = 'running'`,
    // Per-tenant API keys of the HTTP service (src/service/): only a SHA-256 hash of each 256-bit secret is
    // stored; the service checks keys as the data plane, issuing and revoking them is admin work (owner).
    `CREATE TABLE IF NOT EXISTS domicile_api_keys (
      id text PRIMARY KEY, tenant_id text NOT NULL, secret_hash bytea NOT NULL,
      permissions text[] NOT NULL DEFAULT '{}', label text,
      created_at timestamptz NOT NULL DEFAULT now(), revoked_at timestamptz)`,
    `CREATE INDEX IF NOT EXISTS domicile_api_keys_tenant ON domicile_api_keys (tenant_id)`,
    // A tenant's own key service (HYOK: the customer's XKS proxy), registered at onboarding
    // (src/control-plane/key-services.ts). The SigV4 credentials are sealed: AES-256-GCM under a
    // fresh data key wrapped by a key at the provider-managed (kms) default provider, AAD binding
    // the tenant, endpoint, prefix and CA, so an edited row does not open. Never plaintext at rest.
    `CREATE TABLE IF NOT EXISTS domicile_key_services (
      tenant_id text PRIMARY KEY, kind text NOT NULL CHECK (kind IN ('xks')),
      endpoint text NOT NULL, uri_prefix text NOT NULL DEFAULT '', ca_pem text,
      timeout_ms integer CHECK (timeout_ms IS NULL OR timeout_ms > 0),
      seal_version integer NOT NULL, seal_provider text NOT NULL, seal_key_id text NOT NULL,
      wrapped_key bytea NOT NULL, sealed_credentials bytea NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now())`,
    // The data plane reads the directory and its change feed, and the sealed key-service records
    // it must use for HYOK tenants; writes are admin work (owner).
    `GRANT SELECT ON domicile_stamp, domicile_tenants, domicile_directory_log, domicile_api_keys, domicile_key_services TO ${APP_ROLE}`,
  ]
}

export function schemaDdl(schema: Schema, target: 'region' | 'control-plane'): string[] {
  const out: string[] = []
  for (const t of schema.tables.values()) {
    if (target === 'control-plane' && t.scope !== 'global') continue
    out.push(...tableDdl(t, target))
  }
  return out
}
