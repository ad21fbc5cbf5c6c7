/**
 * The example multi-tenant API: create, list, get and find rows of any tenant-scoped table of the
 * schema, for the tenant its API key is bound to (`Authorization: Bearer dk_...`). There is no
 * tenant in the URL: the key decides, and every call runs through the library's tenant path (home
 * region, row-level security, field encryption).
 *
 * Sensitive fields come back sealed ("[sealed]"). `?reveal=col1,col2` opens them only when the key
 * has the `reveal` permission and the request states why in `X-Domicile-Purpose`; each opened field
 * is audited in the tenant's region with actor `api-key:<key id>`.
 */
import { Hono, type Context } from 'hono'
import type { Domicile } from '../domicile.js'
import { DomicileError } from '../errors.js'
import type { Row } from '../data/repository.js'
import type { ResolvedTable } from '../schema/define-schema.js'
import { tenantTable } from '../data/tenant-scope.js'
import { bearerToken } from './bearer-token.js'
import type { ApiKeyPermission, ApiKeyPrincipal, ApiKeyStore } from './api-keys.js'
import { serviceError } from './error-response.js'
import { json, jsonObjectBody } from './json-body.js'
import type { ServiceEnv } from './service-env.js'

export const PURPOSE_HEADER = 'X-Domicile-Purpose'
const MAX_PURPOSE = 200

function need(p: ApiKeyPrincipal, perm: ApiKeyPermission): void {
  /* Precondition: the key has the permission the call needs. */
  if (!p.permissions.has(perm)) throw serviceError('ERR_FORBIDDEN', `This API key lacks the "${perm}" permission. Issue a key with it through the admin API.`)
}

function rowId(t: ResolvedTable, id: string): string | number {
  return t.columns.get(t.primaryKey)?.type === 'integer' && /^-?\d{1,10}$/.test(id) ? Number(id) : id
}

function notFound(table: string): DomicileError {
  return new DomicileError('ERR_ROW_NOT_FOUND', `No row with that id in table "${table}".`)
}

/** A query-string value typed for its column (the repository checks it further). */
function queryValue(t: ResolvedTable, column: string, v: string): unknown {
  const col = t.columns.get(column)
  if (col?.type === 'integer' && /^-?\d{1,10}$/.test(v)) return Number(v)
  if (col?.type === 'boolean' && (v === 'true' || v === 'false')) return v === 'true'
  return v
}

function intParam(v: string | undefined, name: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined
  if (!/^\d{1,7}$/.test(v) || Number(v) < min || Number(v) > max) {
    throw new DomicileError('ERR_INPUT_INVALID', `${name}: expected an integer from ${min} to ${max}.`, { path: name })
  }
  return Number(v)
}

interface RevealRequest {
  readonly columns: readonly string[]
  readonly purpose: string
  readonly actor: string
}

/** `?reveal=` with its purpose, checked; undefined when the request reveals nothing. */
function revealRequest(c: Context<ServiceEnv>, t: ResolvedTable): RevealRequest | undefined {
  const raw = c.req.query('reveal')
  if (raw === undefined || raw === '') return undefined
  const p = c.get('principal')
  need(p, 'reveal')
  const sensitive = [...t.columns.values()].filter((col) => col.sensitive).map((col) => col.name)
  const columns = [...new Set(raw.split(','))]
  /* Precondition: only sensitive columns of the table are revealed (the names are not echoed). */
  if (columns.some((col) => !sensitive.includes(col))) {
    throw new DomicileError('ERR_INPUT_INVALID', `reveal: list sensitive columns of table "${t.name}" separated by commas (${sensitive.join(', ') || 'it has none'}).`, { path: 'reveal' })
  }
  const purpose = c.req.header(PURPOSE_HEADER)?.trim()
  /* Precondition: every reveal states its purpose (audited). */
  if (!purpose || purpose.length > MAX_PURPOSE || /[\u0000-\u001f\u007f]/.test(purpose)) {
    throw new DomicileError('ERR_INPUT_INVALID', `reveal needs the header ${PURPOSE_HEADER}: why the plaintext is needed, 1-${MAX_PURPOSE} characters, recorded in the audit log.`, { path: PURPOSE_HEADER })
  }
  return { columns, purpose, actor: `api-key:${p.id}` }
}

/**
 * The tenant API as a Hono app, mounted at `/api`.
 *
 * @example
 * app.route('/api', tenantApi(domicile, new ApiKeyStore(domicile)))
 */
export function tenantApi(d: Domicile, keys: ApiKeyStore): Hono<ServiceEnv> {
  const api = new Hono<ServiceEnv>()

  api.use('*', async (c, next) => {
    const token = bearerToken(c.req.header('Authorization'))
    if (token === undefined) throw serviceError('ERR_UNAUTHORIZED', 'The tenant API needs "Authorization: Bearer dk_..." with an API key issued by the admin API.')
    const p = await keys.verify(token)
    c.set('principal', p)
    c.set('region', d.directory.cached(p.tenantId)?.region ?? (await d.directory.get(p.tenantId)).region)
    await next()
  })

  const table = (c: Context<ServiceEnv>): ResolvedTable => tenantTable(d.schema, c.req.param('table')!)

  api.post('/tables/:table/rows', async (c) => {
    const p = c.get('principal')
    need(p, 'write')
    const t = table(c)
    const row = await d.tenant(p.tenantId).table(t.name).insert(await jsonObjectBody(c))
    return json(c, { row }, 201)
  })

  api.get('/tables/:table/rows', async (c) => {
    const p = c.get('principal')
    need(p, 'read')
    const t = table(c)
    const reveal = revealRequest(c, t)
    const limit = intParam(c.req.query('limit'), 'limit', 1, 1000)
    const where: Row = {}
    for (const [k, vs] of Object.entries(c.req.queries())) {
      if (!k.startsWith('where.')) continue
      /* Precondition: one value per column in a find. */
      if (vs.length !== 1) throw new DomicileError('ERR_INPUT_INVALID', 'find: give each where.<column> once.', { path: k })
      where[k.slice(6)] = queryValue(t, k.slice(6), vs[0]!)
    }
    if (Object.keys(where).length > 0) {
      const opts = limit === undefined ? {} : { limit }
      const rows = reveal
        ? await d.withTenant(p.tenantId, async (s) => s.revealRows(await s.table(t.name).find(where, opts), reveal))
        : await d.tenant(p.tenantId).table(t.name).find(where, opts)
      return json(c, { rows })
    }
    const cursor = c.req.query('cursor')
    const listOpts = { ...(limit === undefined ? {} : { limit }), ...(cursor === undefined ? {} : { cursor }) }
    const page = reveal
      ? await d.withTenant(p.tenantId, async (s) => {
        const pg = await s.table(t.name).list(listOpts)
        return { rows: await s.revealRows(pg.rows, reveal), nextCursor: pg.nextCursor }
      })
      : await d.tenant(p.tenantId).table(t.name).list(listOpts)
    return json(c, page.nextCursor === undefined ? { rows: page.rows } : { rows: page.rows, nextCursor: page.nextCursor })
  })

  api.get('/tables/:table/rows/:id', async (c) => {
    const p = c.get('principal')
    need(p, 'read')
    const t = table(c)
    const reveal = revealRequest(c, t)
    const id = rowId(t, c.req.param('id'))
    const row = reveal
      ? await d.withTenant(p.tenantId, async (s) => {
        const r = await s.table(t.name).get(id)
        return r && (await s.revealRows([r], reveal))[0]
      })
      : await d.tenant(p.tenantId).table(t.name).get(id)
    if (!row) throw notFound(t.name)
    return json(c, { row })
  })

  return api
}
