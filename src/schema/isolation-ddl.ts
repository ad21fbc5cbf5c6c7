/**
 * Tenant isolation that SQL inside a tenant scope cannot undo (issue #9, docs/ARCHITECTURE.md
 * "Tenant isolation inside a region").
 *
 * - Every connection of the data plane gets a capability when it is opened, before any scope SQL
 *   runs on it: `domicile_session_open()` draws a 256-bit secret, stores it in
 *   `domicile_sessions` (owner-only: the data-plane role cannot read or write it) under the
 *   backend's pid and start time, and returns it once. Asking again on the same backend is refused.
 * - A tenant transaction is opened with `domicile_enter(capability, tenant)`, which sets the
 *   transaction-local settings `domicile.tenant_id` and `domicile.tenant_proof` =
 *   hex(sha256(secret || sha256(tenant || '|' || transaction start in µs))).
 * - Row-level security policies compare `tenant_id` with `(SELECT domicile_tenant())` (evaluated once
 *   per statement), a SECURITY DEFINER function that recomputes the proof. SQL in a scope can change
 *   `domicile.tenant_id` (or commit and begin again), but cannot produce a proof for another tenant
 *   or another transaction without the secret: the statement then fails with SQLSTATE 42501.
 * - Key and audit records are written only through definer functions that demand the capability
 *   (src/regions/tenant-records.ts); the data-plane role has SELECT only on those tables.
 *
 * Every function is owned by the role that runs `migrate` (the owner), has a fixed search_path, and
 * is executable only by `domicile_app`.
 */
import { APP_ROLE, FROZEN_SQLSTATE, TENANT_PROOF_SETTING, TENANT_SETTING } from '../regions/tenant-context.js'

/** proof(secret, tenant) for the current transaction, as SQL over `s` (bytea) and `t` (text). */
const proofSql = (s: string, t: string) =>
  `encode(sha256(${s} || sha256(convert_to(${t} || '|' || ((date_part('epoch', now()) * 1000000)::bigint)::text, 'UTF8'))), 'hex')`

const FUNCTIONS: ReadonlyArray<readonly [signature: string, body: string]> = [
  ['domicile_session_open()', `CREATE OR REPLACE FUNCTION domicile_session_open() RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
DECLARE started timestamptz; s bytea;
BEGIN
  SELECT a.backend_start INTO started FROM pg_stat_get_activity(pg_backend_pid()) a;
  started := coalesce(started, pg_postmaster_start_time());
  PERFORM 1 FROM public.domicile_sessions WHERE pid = pg_backend_pid() AND backend_start = started;
  IF FOUND THEN
    RAISE EXCEPTION 'domicile: this connection already has its session capability' USING ERRCODE = '42501';
  END IF;
  s := sha256(convert_to(gen_random_uuid()::text || gen_random_uuid()::text || gen_random_uuid()::text || clock_timestamp()::text, 'UTF8'));
  INSERT INTO public.domicile_sessions AS d (pid, backend_start, secret) VALUES (pg_backend_pid(), started, s)
    ON CONFLICT (pid) DO UPDATE SET backend_start = EXCLUDED.backend_start, secret = EXCLUDED.secret;
  RETURN encode(s, 'hex');
END $f$`],
  ['domicile_enter(text, text)', `CREATE OR REPLACE FUNCTION domicile_enter(cap text, tenant text) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
DECLARE s bytea;
BEGIN
  SELECT d.secret INTO s FROM public.domicile_sessions d WHERE d.pid = pg_backend_pid();
  IF s IS NULL OR cap IS NULL OR encode(s, 'hex') <> cap OR tenant IS NULL OR tenant = '' THEN
    RAISE EXCEPTION 'domicile: tenant context refused: only Domicile opens tenant transactions' USING ERRCODE = '42501';
  END IF;
  -- A tenant in the last step of a move out of this store (src/ops/tenant-move.ts) is refused here,
  -- in every process, whatever its directory cache says: no write reaches the source after the freeze.
  PERFORM 1 FROM public.domicile_frozen f WHERE f.tenant_id = tenant;
  IF FOUND THEN
    RAISE EXCEPTION 'domicile: the tenant is moving between regions' USING ERRCODE = '${FROZEN_SQLSTATE}';
  END IF;
  PERFORM set_config('${TENANT_SETTING}', tenant, true);
  PERFORM set_config('${TENANT_PROOF_SETTING}', ${proofSql('s', 'tenant')}, true);
  RETURN tenant;
END $f$`],
  // Called once per statement by every policy: one query, no search_path switch (names qualified).
  ['domicile_tenant()', `CREATE OR REPLACE FUNCTION domicile_tenant() RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER AS $f$
DECLARE t text;
BEGIN
  SELECT CASE WHEN pg_catalog.current_setting('${TENANT_PROOF_SETTING}', true) OPERATOR(pg_catalog.=) pg_catalog.encode(pg_catalog.sha256(d.secret OPERATOR(pg_catalog.||) pg_catalog.sha256(pg_catalog.convert_to(x.t OPERATOR(pg_catalog.||) '|' OPERATOR(pg_catalog.||) ((pg_catalog.date_part('epoch', pg_catalog.now()) OPERATOR(pg_catalog.*) 1000000)::bigint)::text, 'UTF8'))), 'hex')
              THEN x.t ELSE '' END INTO t
  FROM (SELECT pg_catalog.current_setting('${TENANT_SETTING}', true) AS t) x
  LEFT JOIN public.domicile_sessions d ON d.pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid()
  WHERE x.t IS NOT NULL AND x.t OPERATOR(pg_catalog.<>) '';
  IF t OPERATOR(pg_catalog.=) '' THEN
    RAISE EXCEPTION 'domicile: the tenant context of this transaction was changed by SQL inside the scope; refused' USING ERRCODE = '42501';
  END IF;
  RETURN t;
END $f$`],
  // The verified tenant of this transaction, for a caller that also proved the capability.
  ['domicile_check(text)', `CREATE OR REPLACE FUNCTION domicile_check(cap text) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
DECLARE s bytea; t text;
BEGIN
  SELECT d.secret INTO s FROM public.domicile_sessions d WHERE d.pid = pg_backend_pid();
  IF s IS NULL OR cap IS NULL OR encode(s, 'hex') <> cap THEN
    RAISE EXCEPTION 'domicile: key and audit records are written only by Domicile' USING ERRCODE = '42501';
  END IF;
  t := public.domicile_tenant();
  IF t IS NULL THEN
    RAISE EXCEPTION 'domicile: no tenant context in this transaction' USING ERRCODE = '42501';
  END IF;
  RETURN t;
END $f$`],
  ['domicile_audit_append(text, jsonb)', `CREATE OR REPLACE FUNCTION domicile_audit_append(cap text, records jsonb) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
DECLARE t text := public.domicile_check(cap);
BEGIN
  INSERT INTO public.domicile_audit (tenant_id, type, outcome, actor, detail)
  SELECT t, r->>'type', r->>'outcome', r->>'actor', coalesce(r->'detail', '{}'::jsonb)
  FROM jsonb_array_elements(records) AS r;
END $f$`],
  ['domicile_key_insert(text, text, integer, bytea, text, text, bigint, bigint)', `CREATE OR REPLACE FUNCTION domicile_key_insert(cap text, purpose text, key_number integer, wrapped bytea, provider text, key_id text, reserved bigint, max_encryptions bigint) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
DECLARE t text := public.domicile_check(cap); n integer;
BEGIN
  INSERT INTO public.domicile_data_keys AS k (tenant_id, purpose, key_number, wrapped, provider, key_id, encryptions_reserved, max_encryptions)
  VALUES (t, purpose, key_number, wrapped, provider, key_id, reserved, max_encryptions)
  ON CONFLICT DO NOTHING RETURNING k.key_number INTO n;
  RETURN n IS NOT NULL;
END $f$`],
  ['domicile_key_reserve(text, bigint)', `CREATE OR REPLACE FUNCTION domicile_key_reserve(cap text, block bigint)
RETURNS TABLE (key_number integer, start_at bigint, granted bigint, next_key_number integer)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
DECLARE t text := public.domicile_check(cap); k record; g bigint;
BEGIN
  IF block IS NULL OR block < 1 THEN
    RAISE EXCEPTION 'domicile: a reservation block is at least 1' USING ERRCODE = '22023';
  END IF;
  SELECT d.key_number AS n, d.encryptions_reserved AS reserved, d.max_encryptions AS max INTO k
  FROM public.domicile_data_keys d
  WHERE d.tenant_id = t AND d.purpose = 'data' AND d.status = 'active'
  ORDER BY d.key_number DESC LIMIT 1 FOR UPDATE;
  IF FOUND THEN
    IF k.reserved < k.max THEN
      g := least(block, k.max - k.reserved);
      UPDATE public.domicile_data_keys d SET encryptions_reserved = d.encryptions_reserved + g
      WHERE d.tenant_id = t AND d.purpose = 'data' AND d.key_number = k.n;
      RETURN QUERY SELECT k.n::integer, k.reserved::bigint, g, NULL::integer;
      RETURN;
    END IF;
    UPDATE public.domicile_data_keys d SET status = 'retired' WHERE d.tenant_id = t AND d.purpose = 'data' AND d.key_number = k.n;
  END IF;
  RETURN QUERY SELECT NULL::integer, NULL::bigint, NULL::bigint,
    (coalesce((SELECT max(d.key_number) FROM public.domicile_data_keys d WHERE d.tenant_id = t AND d.purpose = 'data'), 0) + 1)::integer;
END $f$`],
]

/** The definer functions' signatures, for grants and for tests. */
export const ISOLATION_FUNCTIONS: readonly string[] = FUNCTIONS.map(([sig]) => sig)

/** Functions the data-plane role may execute (domicile_check is internal to the others). */
const CALLABLE = ISOLATION_FUNCTIONS.filter((sig) => !sig.startsWith('domicile_check('))

/**
 * The session table and the definer functions. Run after `domicile_data_keys` and
 * `domicile_audit` exist (the functions are plpgsql: names are resolved when they run).
 */
export function isolationDdl(): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS domicile_sessions (pid integer PRIMARY KEY, backend_start timestamptz NOT NULL, secret bytea NOT NULL)`,
    // Tenants frozen in this store by a move (owner-only; domicile_enter reads it).
    `CREATE TABLE IF NOT EXISTS domicile_frozen (tenant_id text PRIMARY KEY, operation bigint, at timestamptz NOT NULL DEFAULT now())`,
    `REVOKE ALL ON domicile_frozen FROM PUBLIC`,
    `REVOKE ALL ON domicile_frozen FROM ${APP_ROLE}`,
    `REVOKE ALL ON domicile_sessions FROM PUBLIC`,
    `REVOKE ALL ON domicile_sessions FROM ${APP_ROLE}`,
    ...FUNCTIONS.map(([, body]) => body),
    ...ISOLATION_FUNCTIONS.map((sig) => `REVOKE ALL ON FUNCTION ${sig} FROM PUBLIC`),
    ...CALLABLE.map((sig) => `GRANT EXECUTE ON FUNCTION ${sig} TO ${APP_ROLE}`),
  ]
}
