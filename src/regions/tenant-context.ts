/**
 * The SQL that opens and closes a tenant transaction on a region store, and the names it shares
 * with the DDL (src/schema/ddl.ts, src/schema/isolation-ddl.ts). The router is its only caller.
 *
 * Open (one round trip): reset everything a previous scope may have left in the session, BEGIN,
 * drop to the RLS-bound role, set the tenant context through the capability-checked definer
 * function, and read the store's stamp back. Close: COMMIT or ROLLBACK.
 */

/** The role a tenant scope runs as: no BYPASSRLS, no superuser, owns nothing. */
export const APP_ROLE = 'domicile_app'
/** The transaction-local setting RLS policies read (through `domicile_tenant()`). */
export const TENANT_SETTING = 'domicile.tenant_id'
/** The transaction-local setting proving that Domicile set the tenant context. */
export const TENANT_PROOF_SETTING = 'domicile.tenant_proof'

/** SQLSTATE of domicile_enter refusing a tenant frozen in this store by a move (ERR_TENANT_MOVING). */
export const FROZEN_SQLSTATE = 'DM001'

/** Quotes a string literal (tenant ids are validated slugs and capabilities hex; quoted anyway). */
export const literal = (s: string): string => `'${s.replace(/'/g, "''")}'`

/** The statement that draws a connection's capability; run before any scope SQL on it. */
export const SESSION_OPEN = 'SELECT domicile_session_open() AS capability'

/**
 * What a pooled connection runs before every tenant transaction, so that nothing a scope left in
 * the session reaches the next one: settings (search_path, role, session authorization, any SET),
 * prepared statements, cursors, LISTEN, temporary tables and views, advisory locks. It is DISCARD
 * ALL (which cannot share a message with other statements) spelled out. It runs at the start, in
 * the same round trip and transaction as BEGIN: whatever the previous scope did, and whether it
 * committed or rolled back, the next scope starts clean; a reset that fails fails the prelude, and
 * the connection is discarded before any scope code ran on it.
 */
export const SESSION_RESET = 'RESET ALL; RESET ROLE; RESET SESSION AUTHORIZATION; DEALLOCATE ALL; CLOSE ALL; UNLISTEN *; DISCARD TEMP; SELECT pg_advisory_unlock_all()'

/**
 * The statements that open a tenant transaction, in one round trip: reset the session (skipped
 * when no SQL of the application's ran on this connection since its last reset: Domicile's own
 * statements leave no session state), begin,
 * drop to the RLS-bound role, set the tenant context through the capability-checked definer
 * function, read the store's stamp back. Returns one row: tenant, kind, region, cell.
 */
export function tenantTransactionPrelude(tenantId: string, capability: string, reset = true): string {
  return `${reset ? `${SESSION_RESET}; ` : ''}BEGIN; SET LOCAL ROLE ${APP_ROLE}; SELECT domicile_enter(${literal(capability)}, ${literal(tenantId)}) AS tenant, kind, region, cell FROM domicile_stamp`
}

/**
 * COMMIT that cannot report success for a transaction an error aborted (one round trip): the
 * leading statement fails there, where a bare COMMIT would silently roll back and answer success.
 */
export const CHECKED_COMMIT = 'SELECT 1; COMMIT'
