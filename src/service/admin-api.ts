/**
 * The admin API (`/admin/api/...`): regions, tenants, onboarding, the kill switch (revoke/restore),
 * the signed residency report and tenant API keys. Bearer token from `DOMICILE_ADMIN_TOKEN` (or
 * the service option), compared in constant time. Without a configured token the admin API is off
 * (403 ERR_ADMIN_DISABLED), never open. Tenant API keys are not admin credentials.
 */
import { Hono } from 'hono'
import type { TenantRecord } from '../control-plane/tenant-directory.js'
import type { Domicile } from '../domicile.js'
import { DomicileError, isDomicileError } from '../errors.js'
import { API_KEY_PERMISSIONS, type ApiKeyPermission, type ApiKeyStore } from './api-keys.js'
import { bearerToken, tokenMatches } from './bearer-token.js'
import { serviceError } from './error-response.js'
import { json, jsonObjectBody } from './json-body.js'
import type { ServiceEnv } from './service-env.js'

/** The actor recorded for admin API actions in the control-plane audit. */
export const ADMIN_ACTOR = 'admin-api'

export interface AdminApiOptions {
  /** The admin bearer token; undefined = admin API disabled. */
  readonly token: string | undefined
  readonly keys: ApiKeyStore
  /** Called after a revoke or restore went through (metrics). */
  readonly onKillSwitch?: (action: 'revoke' | 'restore') => void
}

export interface TenantJson {
  readonly id: string
  readonly region: string
  readonly cell: string
  readonly status: string
  readonly custody: string | null
  readonly provider: string | null
  readonly keyId: string | null
  readonly keyState: string
}

export function tenantJson(t: TenantRecord, keyState: string = t.keyState): TenantJson {
  return { id: t.id, region: t.region, cell: t.cell, status: t.status, custody: t.key?.custody ?? null, provider: t.key?.provider ?? null, keyId: t.key?.keyId ?? null, keyState }
}

/** Our state and the provider's combined (as `domicile key status`); the directory's when the provider cannot say. */
async function liveKeyState(d: Domicile, t: TenantRecord): Promise<string> {
  if (!t.key) return t.keyState
  try {
    return (await d.keys.status(t.id)).state
  } catch (e) {
    if (isDomicileError(e)) return t.keyState === 'enabled' ? 'unavailable' : t.keyState
    throw e
  }
}

async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    for (let i = next++; i < items.length; i = next++) out[i] = await fn(items[i]!)
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return out
}

function optString(body: Record<string, unknown>, name: string): string | undefined {
  const v = body[name]
  if (v === undefined || v === null) return undefined
  /* Precondition: text fields of a request are strings. */
  if (typeof v !== 'string') throw new DomicileError('ERR_INPUT_INVALID', `${name}: expected a string.`, { path: name })
  return v
}

const FORMATS = ['json', 'md', 'html'] as const

export function adminApi(d: Domicile, opts: AdminApiOptions): Hono<ServiceEnv> {
  const api = new Hono<ServiceEnv>()

  api.use('*', async (c, next) => {
    /* Precondition: the admin API is off unless a token is configured. */
    if (opts.token === undefined) throw serviceError('ERR_ADMIN_DISABLED', 'The admin API is disabled: start the service with DOMICILE_ADMIN_TOKEN set (at least 16 characters, e.g. "openssl rand -hex 32").')
    const given = bearerToken(c.req.header('Authorization'))
    /* Precondition: the request carries the admin token (constant-time comparison). */
    if (!tokenMatches(given, opts.token)) throw serviceError('ERR_UNAUTHORIZED', 'The admin API needs "Authorization: Bearer <admin token>" (the value of DOMICILE_ADMIN_TOKEN).')
    await next()
  })

  api.get('/regions', async (c) => {
    const regions = await d.listRegions()
    return json(c, { regions: regions.map((r) => ({ name: r.name, region: r.region, cell: r.cell, driver: r.driver, ...(r.jurisdiction ? { jurisdiction: r.jurisdiction } : {}), reachable: r.reachable })) })
  })

  api.get('/tenants', async (c) => {
    const ts = await d.listTenants()
    const states = await mapLimited(ts, 8, (t) => liveKeyState(d, t))
    return json(c, { tenants: ts.map((t, i) => tenantJson(t, states[i])) })
  })

  api.post('/tenants', async (c) => {
    const body = await jsonObjectBody(c)
    const id = optString(body, 'id')
    const region = optString(body, 'region')
    if (id === undefined || region === undefined) throw new DomicileError('ERR_INPUT_INVALID', 'Onboarding needs "id" and "region".', { path: id === undefined ? 'id' : 'region' })
    const cell = optString(body, 'cell')
    const custody = optString(body, 'custody')
    if (custody !== undefined && !['kms', 'byok', 'hyok', 'none'].includes(custody)) {
      throw new DomicileError('ERR_INPUT_INVALID', 'custody: one of kms, byok, hyok, none.', { path: 'custody' })
    }
    const provider = optString(body, 'provider')
    const keyId = optString(body, 'keyId')
    const xks = body.xks === undefined || body.xks === null ? undefined : xksOf(body.xks)
    const { onboardTenant } = await import('../onboarding/onboard-tenant.js')
    const r = await onboardTenant(d, {
      id, region, actor: ADMIN_ACTOR,
      ...(cell !== undefined ? { cell } : {}),
      ...(custody !== undefined ? { custody: custody as 'kms' | 'byok' | 'hyok' | 'none' } : {}),
      ...(provider !== undefined ? { provider } : {}),
      ...(keyId !== undefined ? { keyId } : {}),
      ...(xks !== undefined ? { xks } : {}),
    })
    return json(c, { tenant: tenantJson(r.tenant, r.keyState), nextSteps: r.nextSteps }, 201)
  })

  api.post('/tenants/:id/revoke', async (c) => {
    const t = await d.keys.revoke(c.req.param('id'), ADMIN_ACTOR)
    opts.onKillSwitch?.('revoke')
    return json(c, { tenant: tenantJson(t) })
  })

  api.post('/tenants/:id/restore', async (c) => {
    const t = await d.keys.restore(c.req.param('id'), ADMIN_ACTOR)
    opts.onKillSwitch?.('restore')
    return json(c, { tenant: tenantJson(t) })
  })

  api.get('/tenants/:id/report', async (c) => {
    const format = c.req.query('format') ?? 'json'
    if (!(FORMATS as readonly string[]).includes(format)) throw new DomicileError('ERR_INPUT_INVALID', 'format: one of json, md, html.', { path: 'format' })
    const { generateReport } = await import('../report/report-output.js')
    const r = await generateReport(d, c.req.param('id'), format as (typeof FORMATS)[number])
    const fileName = r.fileName.replace(/[^A-Za-z0-9._-]/g, '_')
    return c.body(r.body, 200, { 'Content-Type': r.contentType, 'Content-Disposition': `attachment; filename="${fileName}"` })
  })

  api.get('/tenants/:id/api-keys', async (c) => json(c, { apiKeys: await opts.keys.list(c.req.param('id')) }))

  api.post('/tenants/:id/api-keys', async (c) => {
    const body = await jsonObjectBody(c)
    let permissions: ApiKeyPermission[] = ['read', 'write']
    if (body.reveal !== undefined && typeof body.reveal !== 'boolean') throw new DomicileError('ERR_INPUT_INVALID', 'reveal: expected true or false.', { path: 'reveal' })
    if (body.reveal === true) permissions.push('reveal')
    if (body.permissions !== undefined) {
      const ps = body.permissions
      if (!Array.isArray(ps) || ps.some((p) => typeof p !== 'string' || !(API_KEY_PERMISSIONS as readonly string[]).includes(p))) {
        throw new DomicileError('ERR_INPUT_INVALID', `permissions: a list of ${API_KEY_PERMISSIONS.join(', ')}.`, { path: 'permissions' })
      }
      permissions = ps as ApiKeyPermission[]
    }
    const label = optString(body, 'label')
    const r = await opts.keys.issue(c.req.param('id'), { permissions, actor: ADMIN_ACTOR, ...(label !== undefined ? { label } : {}) })
    return json(c, r, 201)
  })

  api.post('/tenants/:id/api-keys/:keyId/revoke', async (c) => json(c, { apiKey: await opts.keys.revoke(c.req.param('id'), c.req.param('keyId'), ADMIN_ACTOR) }))

  return api
}

/** The `xks` object of an onboarding request (HYOK at the customer's proxy). */
function xksOf(v: unknown): { endpoint: string; uriPrefix?: string; credentials: { accessKeyId: string; secretAccessKey: string }; caPem?: string } {
  const bad = (path: string) => new DomicileError('ERR_INPUT_INVALID', `${path}: expected ${path === 'xks' ? 'an object { endpoint, uriPrefix?, credentials: { accessKeyId, secretAccessKey }, caPem? }' : 'a string'}.`, { path })
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad('xks')
  const o = v as Record<string, unknown>
  const cred = o.credentials as Record<string, unknown> | undefined
  if (typeof o.endpoint !== 'string') throw bad('xks.endpoint')
  if (typeof cred !== 'object' || cred === null || typeof cred.accessKeyId !== 'string' || typeof cred.secretAccessKey !== 'string') throw bad('xks.credentials')
  if (o.uriPrefix !== undefined && typeof o.uriPrefix !== 'string') throw bad('xks.uriPrefix')
  if (o.caPem !== undefined && typeof o.caPem !== 'string') throw bad('xks.caPem')
  return {
    endpoint: o.endpoint, credentials: { accessKeyId: cred.accessKeyId, secretAccessKey: cred.secretAccessKey },
    ...(typeof o.uriPrefix === 'string' ? { uriPrefix: o.uriPrefix } : {}),
    ...(typeof o.caPem === 'string' ? { caPem: o.caPem } : {}),
  }
}
