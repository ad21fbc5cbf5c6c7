/**
 * Key and audit records of a tenant, which SQL running inside a tenant scope cannot write.
 *
 * The data-plane role has no INSERT/UPDATE on `domicile_data_keys` or `domicile_audit`. Domicile's
 * own code writes them through SECURITY DEFINER functions (src/schema/isolation-ddl.ts) that demand
 * this connection's capability: a secret the store handed to Domicile when the connection was
 * opened, before any scope SQL ran on it, and which SQL in a scope cannot read. The tenant is the
 * one the transaction was opened for (checked by the functions), never a parameter.
 */
import type { StoreSession } from './store-driver.js'

/** A new wrapped key (data key or index root key) of the transaction's tenant. */
export interface NewKeyRecord {
  readonly purpose: 'data' | 'index'
  readonly keyNumber: number
  readonly wrapped: Uint8Array
  readonly provider: string
  readonly keyId: string
  /** Encryptions reserved by the creating transaction (data keys), else 0. */
  readonly reserved: number
  /** The key's encryption budget (data keys), else 0. */
  readonly maxEncryptions: number
}

/** One audit record of the transaction's tenant. Never plaintext, never key material. */
export interface AuditRecord {
  readonly type: string
  readonly outcome: string
  readonly actor: string | null
  readonly detail: Readonly<Record<string, unknown>>
}

/** A block of the active data key's nonce budget, or: it is spent (retired now), create the next. */
export type BudgetGrant =
  | { readonly keyNumber: number; readonly start: number; readonly granted: number }
  | { readonly keyNumber: null; readonly nextKeyNumber: number }

export interface TenantRecords {
  /**
   * Reserves up to `block` encryptions of the tenant's active data key (row-locked until the
   * transaction ends). When that key's budget is spent it is retired in the same call and the
   * answer names the next key number to create; with no data key yet, that is 1.
   */
  reserveDataKeyBudget(block: number): Promise<BudgetGrant>
  /** Stores a new wrapped key; false when another transaction stored that number first. */
  insertKey(k: NewKeyRecord): Promise<boolean>
  /** Appends audit records in the tenant's region. */
  appendAudit(rows: readonly AuditRecord[]): Promise<void>
}

/** TenantRecords over one session, with the connection's capability. */
export function tenantRecords(session: StoreSession, capability: string): TenantRecords {
  return {
    async reserveDataKeyBudget(block: number): Promise<BudgetGrant> {
      const r = await session.query<{ key_number: number | null; start_at: string | null; granted: string | null; next_key_number: number | null }>(
        'SELECT key_number, start_at::text AS start_at, granted::text AS granted, next_key_number FROM domicile_key_reserve($1, $2)', [capability, block])
      const row = r.rows[0]
      if (row && row.key_number !== null) return { keyNumber: Number(row.key_number), start: Number(row.start_at), granted: Number(row.granted) }
      return { keyNumber: null, nextKeyNumber: Number(row?.next_key_number ?? 1) }
    },
    async insertKey(k: NewKeyRecord): Promise<boolean> {
      const r = await session.query<{ ok: boolean }>('SELECT domicile_key_insert($1, $2, $3, $4, $5, $6, $7, $8) AS ok',
        [capability, k.purpose, k.keyNumber, k.wrapped, k.provider, k.keyId, k.reserved, k.maxEncryptions])
      return r.rows[0]?.ok === true
    },
    async appendAudit(rows: readonly AuditRecord[]): Promise<void> {
      if (rows.length === 0) return
      await session.query('SELECT domicile_audit_append($1, $2::jsonb)', [capability, JSON.stringify(rows)])
    },
  }
}
