/**
 * The SHA-256 hash chain over each audit table (issue #12 item 4; docs/ARCHITECTURE.md "Audit"):
 * every region's `domicile_audit` and the control plane's `domicile_control_audit`.
 *
 * Each record carries `chain_pos` (1, 2, 3, ... without gaps), `prev_hash` (the hash of the record
 * at chain_pos - 1; 32 zero bytes for the first) and
 *
 *   hash = SHA-256(prev_hash || F(label) || int8(chain_pos) || int8(id) || F(tenant_id) || F(at)
 *                  || F(type) || F(outcome) || F(actor) || F(detail))
 *
 * where int8 is 8 bytes big-endian, F(NULL) = ff ff ff ff, F(s) = int4(length of UTF-8(s)) ||
 * UTF-8(s) (4 bytes big-endian), `at` is written `YYYY-MM-DDTHH:MM:SS.ffffffZ` in UTC, `detail` is
 * jsonb's normalised text form (`detail::text`), and the label names the table
 * (`domicile.audit.v1` / `domicile.control-audit.v1`). src/audit/audit-chain-hash.ts computes the
 * same bytes in Node for verification.
 *
 * The database computes it, so every writer gets it right (the capability-checked definer
 * function, the owner's inserts of operations and control-plane events): a deferred constraint
 * trigger runs at COMMIT, takes the row lock of the one-row chain head (so concurrent appends
 * cannot fork the chain; the lock is held from the trigger to the end of the commit only, not
 * while application code in a tenant transaction runs), gives the record the next position and
 * its hashes, and moves the head. A transaction that rolls back leaves no position behind.
 *
 * Records stored before the chain existed are chained once, in id order, by the migrate that
 * creates the chain head; later migrates never chain a record (an unchained record found later was
 * not written through the trigger, and verification reports it).
 *
 * The data-plane role keeps SELECT on `domicile_audit` and nothing on the chain head; the trigger
 * function is SECURITY DEFINER (owner), fixed search_path, executable by no one directly.
 */
import { APP_ROLE } from '../regions/tenant-context.js'

/** One chained audit table and its chain head. */
export interface AuditChainTable {
  /** The audit table. */
  readonly table: 'domicile_audit' | 'domicile_control_audit'
  /** The one-row chain head table. */
  readonly head: string
  /** Domain-separation label inside every hash. */
  readonly label: string
  readonly fn: string
  readonly trigger: string
}

export const REGION_AUDIT_CHAIN: AuditChainTable = {
  table: 'domicile_audit', head: 'domicile_audit_chain', label: 'domicile.audit.v1',
  fn: 'domicile_audit_chain_link', trigger: 'domicile_audit_chain_link',
}

export const CONTROL_AUDIT_CHAIN: AuditChainTable = {
  table: 'domicile_control_audit', head: 'domicile_control_audit_chain', label: 'domicile.control-audit.v1',
  fn: 'domicile_control_audit_chain_link', trigger: 'domicile_control_audit_chain_link',
}

/** The format of `at` inside the hash (to_char pattern, applied to `at AT TIME ZONE 'UTC'`). */
export const CHAIN_TIME_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'

/** F(x) as SQL over a text expression. */
const field = (x: string) =>
  `(CASE WHEN (${x}) IS NULL THEN '\\xffffffff'::bytea ELSE int4send(octet_length(convert_to(${x}, 'UTF8'))) || convert_to(${x}, 'UTF8') END)`

/** The hash of row alias `a` at position `pos` after the hash `prev`, as SQL. */
function hashSql(c: AuditChainTable, pos: string, prev: string): string {
  return `sha256(${prev} || ${field(`'${c.label}'::text`)} || int8send((${pos})::bigint) || int8send(a.id)
      || ${field('a.tenant_id')} || ${field(`to_char(a.at AT TIME ZONE 'UTC', '${CHAIN_TIME_FORMAT}')`)}
      || ${field('a.type')} || ${field('a.outcome')} || ${field('a.actor')} || ${field('a.detail::text')})`
}

/** plpgsql statements that chain the record with id `idExpr` (variables p, h, nh declared). */
function linkBody(c: AuditChainTable, idExpr: string): string {
  return `SELECT c.position, c.hash INTO p, h FROM public.${c.head} c WHERE c.singleton FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'domicile: the audit chain head of ${c.table} is missing; run domicile migrate' USING ERRCODE = '55000';
  END IF;
  UPDATE public.${c.table} a SET chain_pos = p + 1, prev_hash = h, hash = ${hashSql(c, 'p + 1', 'h')}
  WHERE a.id = ${idExpr} RETURNING a.hash INTO nh;
  IF FOUND THEN
    UPDATE public.${c.head} c SET position = p + 1, hash = nh WHERE c.singleton;
  END IF;`
}

function chainDdl(c: AuditChainTable): string[] {
  const t = c.table
  return [
    `ALTER TABLE ${t} ADD COLUMN IF NOT EXISTS chain_pos bigint`,
    `ALTER TABLE ${t} ADD COLUMN IF NOT EXISTS prev_hash bytea`,
    `ALTER TABLE ${t} ADD COLUMN IF NOT EXISTS hash bytea`,
    `CREATE UNIQUE INDEX IF NOT EXISTS ${t}_chain_pos ON ${t} (chain_pos)`,
    // `domicile audit tail` reads a tenant's newest records (the region table has this index already).
    `CREATE INDEX IF NOT EXISTS ${t}_tenant_idx ON ${t} (tenant_id, id)`,
    `CREATE TABLE IF NOT EXISTS ${c.head} (
      singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
      position bigint NOT NULL CHECK (position >= 0), hash bytea NOT NULL CHECK (octet_length(hash) = 32),
      started_at timestamptz NOT NULL DEFAULT now(), backfilled bigint NOT NULL DEFAULT 0)`,
    `REVOKE ALL ON ${c.head} FROM PUBLIC`,
    `REVOKE ALL ON ${c.head} FROM ${APP_ROLE}`,
    `CREATE OR REPLACE FUNCTION ${c.fn}() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
DECLARE p bigint; h bytea; nh bytea;
BEGIN
  ${linkBody(c, 'NEW.id')}
  RETURN NULL;
END $f$`,
    `REVOKE ALL ON FUNCTION ${c.fn}() FROM PUBLIC`,
    // First migrate with the chain: the head starts at 0 and the records already stored are chained in id order.
    `DO $chain$
DECLARE r record; p bigint; h bytea; nh bytea;
BEGIN
  IF EXISTS (SELECT 1 FROM public.${c.head}) THEN RETURN; END IF;
  INSERT INTO public.${c.head} (singleton, position, hash) VALUES (true, 0, '\\x${'00'.repeat(32)}'::bytea);
  FOR r IN SELECT id FROM public.${t} ORDER BY id LOOP
    ${linkBody(c, 'r.id')}
  END LOOP;
  UPDATE public.${c.head} SET backfilled = position;
END $chain$`,
    `DO $chain$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'public.${t}'::regclass AND tgname = '${c.trigger}') THEN
    CREATE CONSTRAINT TRIGGER ${c.trigger} AFTER INSERT ON public.${t}
      DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ${c.fn}();
  END IF;
END $chain$`,
    // A trigger someone disabled is enabled again by the next migrate.
    `ALTER TABLE ${t} ENABLE TRIGGER ${c.trigger}`,
  ]
}

/** The chain over a region's `domicile_audit`. Run after regionInternalDdl(). */
export function regionAuditChainDdl(): string[] {
  return chainDdl(REGION_AUDIT_CHAIN)
}

/** The chain over the control plane's `domicile_control_audit`. Run after controlPlaneInternalDdl(). */
export function controlPlaneAuditChainDdl(): string[] {
  return chainDdl(CONTROL_AUDIT_CHAIN)
}
