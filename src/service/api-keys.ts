/**
 * Per-tenant API keys of the HTTP service. A key is `dk_<id>_<secret>`: `id` names the record
 * (16 hex digits), `secret` is 256 bits from the CSPRNG (base64url). Only SHA-256(secret) is stored,
 * in the control plane's `domicile_api_keys`; the key itself is shown once, when issued.
 *
 * Issuing and revoking are admin work: one owner transaction on the control plane, with a
 * control-plane audit record in the same transaction. Checking a key is a data-plane read, cached
 * briefly per process (`cacheTtlMs`, default 5 s: the bound for a revoke made by another process),
 * with a constant-time comparison of the hashes. A key is bound to one tenant; requests never name
 * the tenant themselves.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { Domicile } from '../domicile.js'
import { internalsOf } from '../domicile-internals.js'
import { DomicileError } from '../errors.js'
import { ownerTransaction } from '../regions/owner-transaction.js'
import type { StoreDriver, StoreSession } from '../regions/store-driver.js'
import { serviceError } from './error-response.js'

export type ApiKeyPermission = 'read' | 'write' | 'reveal'
export const API_KEY_PERMISSIONS: readonly ApiKeyPermission[] = ['read', 'write', 'reveal']

/** A verified key: who is calling and what it may do. */
export interface ApiKeyPrincipal {
  readonly id: string
  readonly tenantId: string
  readonly permissions: ReadonlySet<ApiKeyPermission>
}

export interface ApiKeyInfo {
  readonly id: string
  readonly tenantId: string
  readonly permissions: readonly ApiKeyPermission[]
  readonly label: string | null
  readonly createdAt: string
  readonly revokedAt: string | null
}

const TOKEN = /^dk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/
const MAX_CACHE = 10_000

interface Row {
  id: string; tenant_id: string; secret_hash: Uint8Array; permissions: string[] | string; label: string | null
  created_at: Date | string; revoked_at: Date | string | null
}

interface Cached {
  readonly row: Row | undefined
  readonly until: number
}

const sha256 = (b: Uint8Array | string): Buffer => createHash('sha256').update(b).digest()

/** PGlite and pg both return text[]; an older pg without the array parser returns '{a,b}'. */
function permissionsOf(v: string[] | string): ApiKeyPermission[] {
  const list = Array.isArray(v) ? v : v.replace(/^\{|\}$/g, '').split(',').filter(Boolean)
  return list.filter((p): p is ApiKeyPermission => (API_KEY_PERMISSIONS as readonly string[]).includes(p))
}

function infoOf(r: Row): ApiKeyInfo {
  return {
    id: r.id, tenantId: r.tenant_id, permissions: permissionsOf(r.permissions), label: r.label,
    createdAt: new Date(r.created_at).toISOString(), revokedAt: r.revoked_at === null ? null : new Date(r.revoked_at).toISOString(),
  }
}

export class ApiKeyStore {
  readonly #d: Domicile
  readonly #store: StoreDriver
  readonly #ttlMs: number
  readonly #cache = new Map<string, Cached>()

  constructor(d: Domicile, opts: { cacheTtlMs?: number } = {}) {
    this.#d = d
    this.#store = internalsOf(d).controlPlane
    this.#ttlMs = opts.cacheTtlMs ?? 5000
  }

  /**
   * Issues a key for an existing tenant. The returned `apiKey` is the only copy of the secret.
   *
   * @example
   * const { id, apiKey } = await keys.issue('acme', { permissions: ['read', 'write'], actor: 'admin-api' })
   */
  async issue(tenantId: string, opts: { permissions: readonly ApiKeyPermission[]; label?: string; actor: string }): Promise<{ id: string; apiKey: string; permissions: ApiKeyPermission[] }> {
    await this.#d.directory.fresh(tenantId) // ERR_TENANT_UNKNOWN / ERR_TENANT_INVALID before anything is written
    /* Precondition: permissions are from the known set. */
    const permissions = [...new Set(opts.permissions)]
    if (permissions.some((p) => !API_KEY_PERMISSIONS.includes(p))) {
      throw new DomicileError('ERR_INPUT_INVALID', `API key permissions are ${API_KEY_PERMISSIONS.join(', ')}.`, { path: 'permissions' })
    }
    /* Precondition: a label is short text. */
    if (opts.label !== undefined && (typeof opts.label !== 'string' || opts.label.length > 200 || /[\u0000-\u001f]/.test(opts.label))) {
      throw new DomicileError('ERR_INPUT_INVALID', 'label: at most 200 characters of text without control characters.', { path: 'label' })
    }
    const id = randomBytes(8).toString('hex')
    const secret = randomBytes(32)
    const apiKey = `dk_${id}_${secret.toString('base64url')}`
    const hash = sha256(secret.toString('base64url'))
    secret.fill(0)
    await ownerTransaction(this.#store, async (s) => {
      await s.query('INSERT INTO domicile_api_keys (id, tenant_id, secret_hash, permissions, label) VALUES ($1, $2, $3, $4::text[], $5)',
        [id, tenantId, hash, permissions, opts.label ?? null])
      await audit(s, tenantId, 'api-key.issue', opts.actor, { keyId: id, permissions: permissions.join(',') })
    })
    return { id, apiKey, permissions }
  }

  /** Revokes a key of `tenantId` (idempotent); effective at once here, within `cacheTtlMs` elsewhere. */
  async revoke(tenantId: string, keyId: string, actor: string): Promise<ApiKeyInfo> {
    if (!/^[0-9a-f]{16}$/.test(keyId)) throw new DomicileError('ERR_INPUT_INVALID', 'API key ids are 16 hex digits.', { path: 'keyId' })
    const row = await ownerTransaction(this.#store, async (s) => {
      const r = await s.query<Row>('UPDATE domicile_api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 AND tenant_id = $2 RETURNING *', [keyId, tenantId])
      if (!r.rows[0]) throw new DomicileError('ERR_ROW_NOT_FOUND', `Tenant "${tenantId}" has no API key with that id.`)
      await audit(s, tenantId, 'api-key.revoke', actor, { keyId })
      return r.rows[0]
    })
    this.#cache.delete(keyId)
    return infoOf(row)
  }

  async list(tenantId: string): Promise<ApiKeyInfo[]> {
    await this.#d.directory.fresh(tenantId)
    const r = await this.#store.withSession((s) => s.query<Row>('SELECT * FROM domicile_api_keys WHERE tenant_id = $1 ORDER BY created_at, id', [tenantId]))
    return r.rows.map(infoOf)
  }

  /**
   * The principal of a bearer token, or ERR_UNAUTHORIZED. Malformed, unknown, wrong and revoked keys
   * all get the same answer.
   */
  async verify(token: string): Promise<ApiKeyPrincipal> {
    const m = TOKEN.exec(token)
    const row = m ? await this.#row(m[1]!) : undefined
    // Always one hash and one comparison, also for an unknown id (the time does not say which).
    const given = sha256(m ? m[2]! : token)
    const stored = row ? Buffer.from(row.secret_hash) : Buffer.alloc(32)
    const same = stored.length === 32 && timingSafeEqual(given, stored)
    if (!row || !same || row.revoked_at !== null) {
      throw serviceError('ERR_UNAUTHORIZED', 'The API key is missing, malformed, unknown or revoked. Send "Authorization: Bearer dk_..." with a key issued by the admin API.')
    }
    return { id: row.id, tenantId: row.tenant_id, permissions: new Set(permissionsOf(row.permissions)) }
  }

  async #row(id: string): Promise<Row | undefined> {
    const now = Date.now()
    const hit = this.#cache.get(id)
    if (hit && hit.until > now) return hit.row
    const r = await this.#store.withSession((s) => s.query<Row>('SELECT * FROM domicile_api_keys WHERE id = $1', [id]))
    if (this.#cache.size >= MAX_CACHE) this.#cache.delete(this.#cache.keys().next().value!)
    this.#cache.set(id, { row: r.rows[0], until: now + this.#ttlMs })
    return r.rows[0]
  }
}

/** A control-plane audit record: identifiers only, never the key or its hash. */
async function audit(s: StoreSession, tenantId: string, type: string, actor: string, detail: Record<string, string>): Promise<void> {
  await s.query('INSERT INTO domicile_control_audit (tenant_id, type, outcome, actor, detail) VALUES ($1, $2, $3, $4, $5::jsonb)',
    [tenantId, type, 'ok', actor, JSON.stringify(detail)])
}
