/**
 * The HTTP service (issue #11, item 3) on a real Domicile (embedded PGlite regions, local key
 * provider), served on a loopback port and called with fetch: admin auth (missing, wrong, tenant
 * key, disabled), tenant isolation through API keys, audited reveal with permission and purpose,
 * error bodies without parameter values, the body limit, the request deadline, /metrics and
 * /healthz, the kill switch through the admin API, API-key revocation and onboarding.
 */
import { after, before, describe, test } from 'node:test'
import { strict as assert } from 'node:assert'
import { randomBytes } from 'node:crypto'
import { createDomicileFixture, type DomicileFixture } from '../support/domicile-fixture.js'
import { createService, serve } from '../../src/service/http-service.js'
import { internalsOf } from '../../src/domicile-internals.js'

const ADMIN = randomBytes(24).toString('hex')

interface Answer { status: number; body: any; text: string; headers: Headers }

describe('HTTP service', { concurrency: false }, () => {
  let fx: DomicileFixture
  let url: string
  let stop: () => Promise<void>

  async function call(path: string, init: { method?: string; token?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
    const headers: Record<string, string> = { ...(init.headers ?? {}) }
    if (init.token !== undefined) headers.Authorization = `Bearer ${init.token}`
    if (init.body !== undefined || init.raw !== undefined) headers['Content-Type'] = 'application/json'
    const res = await fetch(url + path, {
      method: init.method ?? (init.body !== undefined || init.raw !== undefined ? 'POST' : 'GET'),
      headers,
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : init.raw !== undefined ? { body: init.raw } : {}),
    })
    const text = await res.text()
    let body: unknown
    try { body = JSON.parse(text) } catch { body = undefined }
    return { status: res.status, body, text, headers: res.headers }
  }

  async function issue(tenant: string, reveal = false): Promise<{ id: string; apiKey: string }> {
    const r = await call(`/admin/api/tenants/${tenant}/api-keys`, { token: ADMIN, body: { reveal, label: 'test' } })
    assert.equal(r.status, 201, r.text)
    assert.match(r.body.apiKey, /^dk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/)
    return r.body
  }

  function assertError(r: Answer, status: number, code: string): void {
    assert.equal(r.status, status, r.text)
    assert.equal(r.body?.error?.code, code, r.text)
    assert.equal(typeof r.body.error.message, 'string')
    assert.deepEqual(Object.keys(r.body), ['error'])
    assert.deepEqual(Object.keys(r.body.error).sort(), ['code', 'message'])
    assert.doesNotMatch(r.text, /\bat .*\.(ts|js):\d+/, 'no stack trace')
  }

  before(async () => {
    fx = await createDomicileFixture()
    await fx.addTenant('acme', { region: 'eu-west-1' })
    await fx.addTenant('globex', { region: 'us-east-1' })
    const s = await serve(fx.domicile, { port: 0, adminToken: ADMIN, processMetrics: false })
    url = s.url
    stop = s.close
  })

  after(async () => {
    await stop?.()
    await fx?.close()
  })

  test('the admin API refuses a missing token, a wrong token and a tenant API key', async () => {
    assertError(await call('/admin/api/tenants'), 401, 'ERR_UNAUTHORIZED')
    assertError(await call('/admin/api/tenants', { token: ADMIN.slice(0, -1) + (ADMIN.endsWith('0') ? '1' : '0') }), 401, 'ERR_UNAUTHORIZED')
    assertError(await call('/admin/api/tenants', { token: ADMIN + 'x' }), 401, 'ERR_UNAUTHORIZED')
    assertError(await call('/admin/api/tenants', { headers: { Authorization: `Basic ${Buffer.from(`admin:${ADMIN}`).toString('base64')}` } }), 401, 'ERR_UNAUTHORIZED')
    const k = await issue('acme', true)
    assertError(await call('/admin/api/tenants', { token: k.apiKey }), 401, 'ERR_UNAUTHORIZED')
    assertError(await call('/admin/api/tenants/acme/revoke', { method: 'POST', token: k.apiKey }), 401, 'ERR_UNAUTHORIZED')
    assert.equal((await fx.domicile.getTenant('acme')).keyState, 'enabled')
    const ok = await call('/admin/api/tenants', { token: ADMIN })
    assert.equal(ok.status, 200)
    assert.deepEqual(ok.body.tenants.map((t: { id: string }) => t.id), ['acme', 'globex'])
    assert.deepEqual(Object.keys(ok.body.tenants[0]).sort(), ['cell', 'custody', 'id', 'keyId', 'keyState', 'provider', 'region', 'status'])
    const regions = await call('/admin/api/regions', { token: ADMIN })
    assert.deepEqual(regions.body.regions.map((r: { name: string; reachable: boolean; jurisdiction: string }) => [r.name, r.reachable, r.jurisdiction]).sort(),
      [['eu-west-1', true, 'EU'], ['us-east-1', true, 'US']])
  })

  test('Precondition: the admin API is off unless a token is configured.', async () => {
    const saved = process.env.DOMICILE_ADMIN_TOKEN
    delete process.env.DOMICILE_ADMIN_TOKEN
    try {
      const svc = createService(fx.domicile, { processMetrics: false })
      for (const token of [undefined, '', 'anything-at-all-1234']) {
        const res = await svc.app.request('/admin/api/tenants', token === undefined ? {} : { headers: { Authorization: `Bearer ${token}` } })
        assert.equal(res.status, 403)
        assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'ERR_ADMIN_DISABLED')
      }
      await svc.close()
    } finally {
      if (saved !== undefined) process.env.DOMICILE_ADMIN_TOKEN = saved
    }
  })

  test('Precondition: a configured bearer secret is long enough not to be guessed.', () => {
    assert.throws(() => createService(fx.domicile, { adminToken: 'short' }), (e: { code?: string }) => e.code === 'ERR_CONFIG_INVALID')
    assert.throws(() => createService(fx.domicile, { adminToken: ADMIN, metricsToken: 'has space in it 1234' }), (e: { code?: string }) => e.code === 'ERR_CONFIG_INVALID')
  })

  test('a tenant API key cannot reach another tenant\'s rows (get by id, find by email, list)', async () => {
    const a = await issue('acme')
    const g = await issue('globex')
    const created = await call('/api/tables/customers/rows', { token: a.apiKey, body: { id: 'iso-1', name: 'Ada', email: 'ada.iso@example.eu', tax_id: 'DE-ISO-1' } })
    assert.equal(created.status, 201, created.text)
    assert.equal(created.body.row.email, '[sealed]')
    assert.equal(created.body.row.tax_id, '[sealed]')
    // acme sees its row
    const own = await call('/api/tables/customers/rows/iso-1', { token: a.apiKey })
    assert.equal(own.status, 200)
    assert.equal(own.body.row.name, 'Ada')
    const ownFind = await call('/api/tables/customers/rows?where.email=ada.iso%40example.eu', { token: a.apiKey })
    assert.deepEqual(ownFind.body.rows.map((r: { id: string }) => r.id), ['iso-1'])
    // globex cannot: by id, by email, by listing
    assertError(await call('/api/tables/customers/rows/iso-1', { token: g.apiKey }), 404, 'ERR_ROW_NOT_FOUND')
    const find = await call('/api/tables/customers/rows?where.email=ada.iso%40example.eu', { token: g.apiKey })
    assert.equal(find.status, 200)
    assert.deepEqual(find.body.rows, [])
    const byName = await call('/api/tables/customers/rows?where.name=Ada', { token: g.apiKey })
    assert.deepEqual(byName.body.rows, [])
    const list = await call('/api/tables/customers/rows?limit=1000', { token: g.apiKey })
    assert.equal(list.body.rows.some((r: { id: string }) => r.id === 'iso-1'), false)
    // the same id in globex is globex's own row
    assert.equal((await call('/api/tables/customers/rows', { token: g.apiKey, body: { id: 'iso-1', name: 'Grace' } })).status, 201)
    assert.equal((await call('/api/tables/customers/rows/iso-1', { token: g.apiKey })).body.row.name, 'Grace')
    assert.equal((await call('/api/tables/customers/rows/iso-1', { token: a.apiKey })).body.row.name, 'Ada')
    // no tenant in the URL can override the key: there is no such route
    assertError(await call('/api/tenants/acme/tables/customers/rows/iso-1', { token: g.apiKey }), 404, 'ERR_NOT_FOUND')
    // missing, malformed and forged keys
    assertError(await call('/api/tables/customers/rows/iso-1'), 401, 'ERR_UNAUTHORIZED')
    assertError(await call('/api/tables/customers/rows/iso-1', { token: 'dk_nope' }), 401, 'ERR_UNAUTHORIZED')
    const forged = a.apiKey.slice(0, -4) + (a.apiKey.endsWith('AAAA') ? 'BBBB' : 'AAAA')
    assertError(await call('/api/tables/customers/rows/iso-1', { token: forged }), 401, 'ERR_UNAUTHORIZED')
    assertError(await call('/api/tables/customers/rows/iso-1', { token: ADMIN }), 401, 'ERR_UNAUTHORIZED')
  })

  test('reveal needs the reveal permission and a purpose, and is audited with the key as actor', async () => {
    const plain = await issue('acme', false)
    const revealer = await issue('acme', true)
    await call('/api/tables/customers/rows', { token: plain.apiKey, body: { id: 'rv-1', name: 'Lin', email: 'lin@example.eu', tax_id: 'DE-RV-1' } })
    const q = '/api/tables/customers/rows/rv-1?reveal=tax_id'
    assertError(await call(q, { token: plain.apiKey, headers: { 'X-Domicile-Purpose': 'support ticket 42' } }), 403, 'ERR_FORBIDDEN')
    assertError(await call(q, { token: revealer.apiKey }), 400, 'ERR_INPUT_INVALID')
    assertError(await call(q, { token: revealer.apiKey, headers: { 'X-Domicile-Purpose': '   ' } }), 400, 'ERR_INPUT_INVALID')
    assertError(await call('/api/tables/customers/rows/rv-1?reveal=name', { token: revealer.apiKey, headers: { 'X-Domicile-Purpose': 'x' } }), 400, 'ERR_INPUT_INVALID')
    const countAudit = () => fx.regionAdmin('eu-west-1', async (s) =>
      (await s.query<{ actor: string; detail: { purpose?: string; column?: string } }>("SELECT actor, detail FROM domicile_audit WHERE tenant_id = 'acme' AND type = 'field.reveal' ORDER BY id")).rows)
    assert.equal((await countAudit()).length, 0, 'refused reveals open nothing')
    const ok = await call(q, { token: revealer.apiKey, headers: { 'X-Domicile-Purpose': 'support ticket 42' } })
    assert.equal(ok.status, 200, ok.text)
    assert.equal(ok.body.row.tax_id, 'DE-RV-1')
    assert.equal(ok.body.row.email, '[sealed]', 'only the named column is opened')
    const records = await countAudit()
    assert.equal(records.length, 1)
    assert.equal(records[0]!.actor, `api-key:${revealer.id}`)
    assert.equal(JSON.stringify(records[0]!.detail).includes('support ticket 42'), true)
    assert.equal(JSON.stringify(records[0]!.detail).includes('DE-RV-1'), false, 'no plaintext in the audit record')
    // find and list reveal too
    const found = await call('/api/tables/customers/rows?where.email=LIN%40example.eu&reveal=email,tax_id', { token: revealer.apiKey, headers: { 'X-Domicile-Purpose': 'kyc check' } })
    assert.deepEqual(found.body.rows.map((r: { email: string; tax_id: string }) => [r.email, r.tax_id]), [['lin@example.eu', 'DE-RV-1']])
    assert.equal((await countAudit()).length, 3)
  })

  test('error bodies carry the stable code and no parameter values', async () => {
    const k = await issue('acme')
    const secret = 'leak-me-7f3a9c'
    const cases: Array<[Answer, number, string]> = [
      [await call('/api/tables/customers/rows', { token: k.apiKey, body: { id: 'e-1', name: { nested: secret }, email: `${secret}@example.eu` } }), 400, 'ERR_INPUT_INVALID'],
      [await call('/api/tables/customers/rows', { token: k.apiKey, raw: `{"id":"e-2","name":"${secret}"` }), 400, 'ERR_INPUT_INVALID'],
      [await call('/api/tables/customers/rows', { token: k.apiKey, raw: JSON.stringify([secret]) }), 400, 'ERR_INPUT_INVALID'],
      [await call(`/api/tables/customers/rows?where.tax_id=${secret}`, { token: k.apiKey }), 400, 'ERR_QUERY_UNSUPPORTED'],
      [await call(`/api/tables/customers/rows?limit=${secret}`, { token: k.apiKey }), 400, 'ERR_INPUT_INVALID'],
      [await call(`/api/tables/customers/rows/${secret}`, { token: k.apiKey }), 404, 'ERR_ROW_NOT_FOUND'],
      [await call(`/api/tables/customers/rows/x?reveal=${secret}`, { token: (await issue('acme', true)).apiKey, headers: { 'X-Domicile-Purpose': 'p' } }), 400, 'ERR_INPUT_INVALID'],
      [await call('/api/tables/plans/rows', { token: k.apiKey }), 400, 'ERR_QUERY_UNSUPPORTED'],
      [await call(`/admin/api/tenants/acme/report?format=${secret}`, { token: ADMIN }), 400, 'ERR_INPUT_INVALID'],
      [await call('/admin/api/tenants', { token: ADMIN, body: { id: 'new-tenant', region: 'eu-west-1', custody: secret } }), 400, 'ERR_INPUT_INVALID'],
    ]
    await call('/api/tables/customers/rows', { token: k.apiKey, body: { id: 'dup-1', name: 'A', tax_id: secret } })
    cases.push([await call('/api/tables/customers/rows', { token: k.apiKey, body: { id: 'dup-1', name: 'B', tax_id: secret } }), 409, 'ERR_CONFLICT'])
    for (const [r, status, code] of cases) {
      assertError(r, status, code)
      assert.equal(r.text.includes(secret), false, `no value in ${r.text}`)
    }
  })

  test('request bodies over the limit are refused with 413 before they are read', async () => {
    const k = await issue('acme')
    const big = await call('/api/tables/customers/rows', { token: k.apiKey, raw: JSON.stringify({ id: 'big', name: 'x'.repeat(70 * 1024) }) })
    assertError(big, 413, 'ERR_PAYLOAD_TOO_LARGE')
    // chunked (no Content-Length): counted as it streams
    const chunks = async function* () { for (let i = 0; i < 20; i++) yield new TextEncoder().encode('x'.repeat(8 * 1024)) }
    const res = await fetch(`${url}/api/tables/customers/rows`, { method: 'POST', headers: { Authorization: `Bearer ${k.apiKey}`, 'Content-Type': 'application/json' }, body: ReadableStream.from(chunks()), duplex: 'half' } as RequestInit)
    assert.equal(res.status, 413)
    assert.equal(res.headers.get('connection'), 'close', 'the unread body makes the connection unusable: the client must not reuse it')
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'ERR_PAYLOAD_TOO_LARGE')
    const rows = await fx.regionAdmin('eu-west-1', (s) => s.query("SELECT 1 FROM customers WHERE id = 'big'"))
    assert.equal(rows.rows.length, 0)
  })

  test('a request over the deadline answers 503 ERR_TIMEOUT', async () => {
    const svc = createService(fx.domicile, { adminToken: ADMIN, requestTimeoutMs: 1, processMetrics: false })
    const res = await svc.app.request('/admin/api/tenants', { headers: { Authorization: `Bearer ${ADMIN}` } })
    assert.equal(res.status, 503)
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'ERR_TIMEOUT')
    assert.equal(res.headers.get('retry-after'), '1')
    await svc.close()
  })

  test('security headers on the API and the console page', async () => {
    const api = await call('/healthz')
    assert.equal(api.headers.get('x-content-type-options'), 'nosniff')
    assert.equal(api.headers.get('referrer-policy'), 'no-referrer')
    assert.match(api.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/)
    const page = await fetch(url + '/')
    const html = await page.text()
    assert.equal(page.status, 200)
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/)
    const csp = page.headers.get('content-security-policy') ?? ''
    const nonce = /script-src 'nonce-([A-Za-z0-9+/=]+)'/.exec(csp)?.[1]
    assert.ok(nonce, csp)
    assert.match(csp, /frame-ancestors 'none'/)
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/)
    assert.equal(html.includes(nonce!), true, 'the page carries the nonce of its CSP')
    const again = /script-src 'nonce-([A-Za-z0-9+/=]+)'/.exec((await fetch(url + '/')).headers.get('content-security-policy') ?? '')?.[1]
    assert.notEqual(again, nonce, 'a fresh nonce per response')
  })

  test('/healthz reports every region and key service; /metrics has the series', async () => {
    const h = await call('/healthz')
    assert.equal(h.status, 200, h.text)
    assert.equal(h.body.status, 'ok')
    assert.deepEqual(h.body.regions.map((r: { name: string; status: string }) => [r.name, r.status]).sort(), [['eu-west-1', 'up'], ['us-east-1', 'up']])
    assert.deepEqual(h.body.keyServices.map((k: { name: string; status: string }) => k.status), ['up'])
    const k = await issue('acme', true)
    await call('/api/tables/customers/rows', { token: k.apiKey, body: { id: 'm-1', name: 'M', tax_id: 'T-M' } })
    // Drop acme's cached keys (as a directory change would), so the reveal below unwraps its data key.
    internalsOf(fx.domicile).keyring!.forgetTenant('acme')
    await call('/api/tables/customers/rows/m-1?reveal=tax_id', { token: k.apiKey, headers: { 'X-Domicile-Purpose': 'metrics test' } })
    await call('/api/tables/customers/rows/nope', { token: k.apiKey })
    const m = await fetch(url + '/metrics')
    assert.equal(m.status, 200)
    assert.match(m.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/)
    const text = await m.text()
    assert.match(text, /domicile_http_requests_total\{region="eu-west-1",route="\/api\/tables\/:table\/rows\/:id",method="GET",status="200"\} [1-9]/)
    assert.match(text, /domicile_http_errors_total\{region="eu-west-1",route="\/api\/tables\/:table\/rows\/:id",code="ERR_ROW_NOT_FOUND"\} [1-9]/)
    assert.match(text, /domicile_http_request_duration_seconds_bucket\{le="0\.005",region="eu-west-1"/)
    assert.match(text, /domicile_http_requests_total\{region="none",route="\/admin\/api\/tenants\/:id\/api-keys",method="POST",status="201"\}/)
    assert.match(text, /domicile_tenants\{key_state="enabled"\} 2/)
    for (const name of ['domicile_data_key_cache_hits_total', 'domicile_data_key_cache_misses_total', 'domicile_data_key_cache_entries',
      'domicile_key_unwrap_calls_total', 'domicile_key_unwrap_failures_total', 'domicile_key_unwrap_duration_seconds',
      'domicile_directory_staleness_seconds', 'domicile_key_revocations_total']) {
      assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name)
    }
    // The key-custody figures carry values: the reveal above loaded acme's data key again (a miss and an unwrap).
    assert.match(text, /^domicile_data_key_cache_misses_total [1-9]/m)
    assert.match(text, /^domicile_data_key_cache_entries [1-9]/m)
    assert.match(text, /^domicile_key_unwrap_calls_total\{provider="local",kind="local"\} [1-9]/m)
    assert.match(text, /^domicile_key_unwrap_duration_seconds_bucket\{provider="local",kind="local",le="\+Inf"\} [1-9]/m)
    assert.match(text, /^domicile_directory_staleness_seconds [0-9.e-]+$/m)
    // with a metrics token, scrapers need it
    const svc = createService(fx.domicile, { adminToken: ADMIN, metricsToken: 'scrape-token-0123456789', processMetrics: false })
    assert.equal((await svc.app.request('/metrics')).status, 401)
    assert.equal((await svc.app.request('/healthz', { headers: { Authorization: `Bearer ${ADMIN}` } })).status, 401)
    assert.equal((await svc.app.request('/metrics', { headers: { Authorization: 'Bearer scrape-token-0123456789' } })).status, 200)
    await svc.close()
  })

  test('revoke through the admin API darkens the tenant\'s sealed fields for its API keys; restore brings them back', async () => {
    await fx.addTenant('initech', { region: 'eu-west-1', cacheTtlMs: 0 })
    const k = await issue('initech', true)
    await call('/api/tables/customers/rows', { token: k.apiKey, body: { id: 'ks-1', name: 'K', tax_id: 'T-KS' } })
    const read = () => call('/api/tables/customers/rows/ks-1?reveal=tax_id', { token: k.apiKey, headers: { 'X-Domicile-Purpose': 'kill switch test' } })
    assert.equal((await read()).body.row.tax_id, 'T-KS')
    const rv = await call('/admin/api/tenants/initech/revoke', { method: 'POST', token: ADMIN })
    assert.equal(rv.status, 200, rv.text)
    assert.equal(rv.body.tenant.keyState, 'revoked')
    assertError(await read(), 423, 'ERR_KEY_REVOKED')
    // plain columns stay readable
    assert.equal((await call('/api/tables/customers/rows/ks-1', { token: k.apiKey })).body.row.name, 'K')
    const rs = await call('/admin/api/tenants/initech/restore', { method: 'POST', token: ADMIN })
    assert.equal(rs.body.tenant.keyState, 'enabled')
    assert.equal((await read()).body.row.tax_id, 'T-KS')
    assertError(await call('/admin/api/tenants/no-such/revoke', { method: 'POST', token: ADMIN }), 404, 'ERR_TENANT_UNKNOWN')
    const metrics = await (await fetch(url + '/metrics')).text()
    assert.match(metrics, /domicile_key_revocations_total\{action="revoke"\} 1/)
  })

  test('a revoked API key is refused at once', async () => {
    const k = await issue('acme')
    assert.equal((await call('/api/tables/customers/rows?limit=1', { token: k.apiKey })).status, 200)
    const r = await call(`/admin/api/tenants/acme/api-keys/${k.id}/revoke`, { method: 'POST', token: ADMIN })
    assert.equal(r.status, 200, r.text)
    assert.ok(r.body.apiKey.revokedAt)
    assertError(await call('/api/tables/customers/rows?limit=1', { token: k.apiKey }), 401, 'ERR_UNAUTHORIZED')
    // another tenant's key id cannot be revoked under this tenant
    const g = await issue('globex')
    assertError(await call(`/admin/api/tenants/acme/api-keys/${g.id}/revoke`, { method: 'POST', token: ADMIN }), 404, 'ERR_ROW_NOT_FOUND')
  })

  test('only a SHA-256 of the secret is stored', async () => {
    const k = await issue('acme')
    const secret = k.apiKey.split('_').slice(2).join('_')
    const { internalsOf } = await import('../../src/domicile-internals.js')
    const rows = (await internalsOf(fx.domicile).controlPlane.withSession((s) => s.query<Record<string, unknown>>('SELECT * FROM domicile_api_keys WHERE id = $1', [k.id]))).rows
    const dump = JSON.stringify(rows[0], (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v))
    assert.equal(dump.includes(secret), false)
    assert.equal(dump.includes(Buffer.from(secret).toString('hex')), false)
    const { createHash } = await import('node:crypto')
    assert.equal(Buffer.from(rows[0]!.secret_hash as Uint8Array).toString('hex'), createHash('sha256').update(secret).digest('hex'))
  })

  test('onboarding through the admin API, then the new tenant\'s API key writes sealed rows', async () => {
    const r = await call('/admin/api/tenants', { token: ADMIN, body: { id: 'umbrella', region: 'eu-west-1' } })
    assert.equal(r.status, 201, r.text)
    assert.equal(r.body.tenant.id, 'umbrella')
    assert.equal(r.body.tenant.region, 'eu-west-1')
    assert.equal(r.body.tenant.custody, 'kms')
    assert.equal(r.body.tenant.keyState, 'enabled')
    assert.ok(Array.isArray(r.body.nextSteps))
    assertError(await call('/admin/api/tenants', { token: ADMIN, body: { id: 'umbrella', region: 'eu-west-1' } }), 409, 'ERR_TENANT_EXISTS')
    assertError(await call('/admin/api/tenants', { token: ADMIN, body: { id: 'Bad Id', region: 'eu-west-1' } }), 400, 'ERR_TENANT_INVALID')
    assertError(await call('/admin/api/tenants', { token: ADMIN, body: { id: 'x1', region: 'mars-1' } }), 400, 'ERR_REGION_UNKNOWN')
    const k = await issue('umbrella', true)
    assert.equal((await call('/api/tables/customers/rows', { token: k.apiKey, body: { id: 'u-1', name: 'U', email: 'u@example.eu' } })).status, 201)
    const got = await call('/api/tables/customers/rows/u-1?reveal=email', { token: k.apiKey, headers: { 'X-Domicile-Purpose': 'onboarding check' } })
    assert.equal(got.body.row.email, 'u@example.eu')
  })

  test('the residency report downloads through the admin API', async () => {
    const r = await fetch(`${url}/admin/api/tenants/acme/report?format=json`, { headers: { Authorization: `Bearer ${ADMIN}` } })
    assert.equal(r.status, 200, await r.clone().text())
    assert.match(r.headers.get('content-disposition') ?? '', /^attachment; filename="[A-Za-z0-9._-]+"$/)
    const body = await r.text()
    assert.equal(body.includes('acme'), true)
    assertError(await call('/admin/api/tenants/no-such/report?format=json', { token: ADMIN }), 404, 'ERR_TENANT_UNKNOWN')
  })
})
