/**
 * The web console end to end: a real `domicile serve` child process over a fresh project
 * (`init` + `migrate` + two tenants added with the CLI), driven in headless Chromium
 * (Debian's /usr/bin/chromium through playwright-core; no browser download).
 *
 * The page loads and shows the tenants in its table and region diagram; a wrong admin token shows
 * the service's error code; onboarding from the form creates a tenant, with a provider key or with
 * the customer's own XKS proxy (a real `keyproxy serve` over HTTPS, its CA pasted into the form),
 * and the CLI confirms both after the server stops (the embedded stores have one owner process at a
 * time); revoking a key from the
 * page, behind its in-page confirmation, makes the tenant's sensitive fields unreadable through the
 * tenant API, and restoring it makes them readable again; the residency report downloads. All the
 * while the page requests nothing outside its origin and logs no error (CSP violations included).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { chromium, type Browser, type Page } from 'playwright-core'
import { DOMICILE_BIN, makeTempDir, runCliJson, runCliOk, type TempDir } from '../support/cli.js'
import { createKeyViaCli, initKeyProxyDir, startKeyProxyProcess, type KeyProxyDir, type KeyProxyProcess } from '../support/keyproxy-process.js'
import { freePort } from '../support/pg-cluster.js'

const CHROMIUM = '/usr/bin/chromium'
const ADMIN_TOKEN = 'console-e2e-admin-token-0123456789abcdef'
const PURPOSE = 'console e2e: checking that revocation closes the fields'
const CUSTOMER = { id: 'c1', name: 'Ada Lovelace', email: 'ada@acme.example', tax_id: 'GB-100-200-301', plan: 'pro' }

interface Server {
  readonly url: string
  readonly child: ChildProcess
  readonly output: () => string
}

/** Starts `domicile serve` and resolves once it prints its URL. */
function startServe(cwd: string, port: number): Promise<Server> {
  const env: NodeJS.ProcessEnv = { ...process.env, DOMICILE_ADMIN_TOKEN: ADMIN_TOKEN }
  delete env.DOMICILE_CONFIG
  const child = spawn(process.execPath, [DOMICILE_BIN, 'serve', '--port', String(port), '--host', '127.0.0.1'], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  const output = (): string => out
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`domicile serve printed no URL within 60 s:\n${out}`)) }, 60_000)
    const onData = (d: string): void => {
      out += d
      const m = /https?:\/\/[^\s"',]+/.exec(out)
      if (m) { clearTimeout(timer); resolve({ url: new URL(m[0]).origin, child, output }) }
    }
    child.stdout!.setEncoding('utf8').on('data', onData)
    child.stderr!.setEncoding('utf8').on('data', (d: string) => { out += d })
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`domicile serve exited ${code} before listening:\n${out}`)) })
  })
}

function stopServe(s: Server): Promise<number | null> {
  if (s.child.exitCode !== null) return Promise.resolve(s.child.exitCode)
  return new Promise((resolve) => {
    const timer = setTimeout(() => { s.child.kill('SIGKILL') }, 15_000)
    s.child.once('exit', (code) => { clearTimeout(timer); resolve(code) })
    s.child.kill('SIGTERM')
  })
}

interface ErrorBody { error?: { code?: string; message?: string } }

async function call(base: string, path: string, init: { method?: string; token: string; body?: unknown; headers?: Record<string, string> }): Promise<{ status: number; text: string; json: unknown }> {
  const res = await fetch(base + path, {
    method: init.method ?? 'GET',
    headers: { Authorization: `Bearer ${init.token}`, ...(init.body === undefined ? {} : { 'Content-Type': 'application/json' }), ...init.headers },
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
  })
  const text = await res.text()
  let json: unknown
  try { json = JSON.parse(text) } catch { json = undefined }
  return { status: res.status, text, json }
}

/** Records CSP violations in the page (the test has no DOM types, so this is the page's own JS). */
const CSP_PROBE = `window.cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => { window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI) })`

/** The key-state badge of a tenant's row in the table. */
const badgeOf = (page: Page, id: string) => page.locator(`#tenants-body tr[data-tenant="${id}"] .key-state .badge`)

test('the console: tenants and diagram, login errors, onboarding, revoke with confirmation, report download', { timeout: 300_000 }, async (t) => {
  const dir: TempDir = await makeTempDir('console-e2e-')
  let server: Server | undefined
  let browser: Browser | undefined
  let proxyDir: KeyProxyDir | undefined
  let proxy: KeyProxyProcess | undefined
  try {
    const cwd = dir.path
    await runCliOk(['init'], { cwd })
    await runCliOk(['migrate'], { cwd })
    await runCliOk(['tenant', 'add', 'acme-eu', '--region', 'eu-west-1', '--custody', 'kms'], { cwd })
    await runCliOk(['tenant', 'add', 'globex-us', '--region', 'us-east-1', '--custody', 'kms'], { cwd })
    server = await startServe(cwd, await freePort())
    const base = server.url

    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
    const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 900 } })
    const page = await context.newPage()
    page.setDefaultTimeout(15_000)
    const requests: string[] = []
    const consoleErrors: string[] = []
    page.on('request', (r) => { requests.push(r.url()) })
    page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()) })
    page.on('pageerror', (e) => { consoleErrors.push(`pageerror: ${e.message}`) })
    // Runs before the page's own script; init scripts are not subject to the page's CSP.
    await context.addInitScript({ content: CSP_PROBE })

    await t.test('the page loads under a strict CSP and asks for the admin token', async () => {
      const res = await page.goto(base + '/')
      assert.equal(res?.status(), 200)
      const csp = res?.headers()['content-security-policy'] ?? ''
      assert.match(csp, /default-src 'none'/)
      assert.match(csp, /script-src 'nonce-[^']+'/)
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/)
      await page.getByLabel('Admin token').waitFor()
      assert.equal(await page.locator('#app-view').isVisible(), false)
      // A fresh nonce per response, and no script path that parses data as HTML.
      const again = await fetch(base + '/')
      assert.notEqual(again.headers.get('content-security-policy'), csp)
      assert.doesNotMatch(await again.text(), /innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/)
    })

    await t.test('a wrong token shows the error code and does not sign in', async () => {
      await page.getByLabel('Admin token').fill('not-the-admin-token')
      await page.getByRole('button', { name: 'Sign in' }).click()
      const status = page.getByRole('status')
      await status.locator('.code').waitFor()
      assert.match(await status.locator('.code').textContent() ?? '', /^ERR_[A-Z_]+$/)
      assert.equal(await page.locator('#app-view').isVisible(), false)
      assert.equal(await page.evaluate<number>('sessionStorage.length'), 0, 'a refused token is not kept')
      // The browser logs the refused requests themselves; nothing else may have been logged.
      assert.ok(consoleErrors.every((m) => /status of 401/.test(m)), consoleErrors.join('\n'))
      consoleErrors.length = 0
    })

    await t.test('the right token shows the tenants in the table and in their regions on the diagram', async () => {
      await page.getByLabel('Admin token').fill(ADMIN_TOKEN)
      await page.getByRole('button', { name: 'Sign in' }).click()
      await page.locator('#tenants-body tr[data-tenant="acme-eu"]').waitFor()
      assert.equal(await page.locator('#login-view').isVisible(), false)
      for (const [id, region] of [['acme-eu', 'eu-west-1'], ['globex-us', 'us-east-1']] as const) {
        const cells = await page.locator(`#tenants-body tr[data-tenant="${id}"] > *`).allTextContents()
        assert.equal(cells[0], id)
        assert.equal(cells[1], region)
        assert.equal(cells[3], 'kms')
        assert.equal(await badgeOf(page, id).textContent(), 'enabled')
        assert.equal(await page.locator(`svg g[data-region="${region}"] g[data-tenant="${id}"]`).count(), 1, `${id} drawn inside ${region}`)
      }
      assert.equal(await page.locator('svg g[data-region="eu-west-1"] g[data-tenant="globex-us"]').count(), 0)
      assert.match(await page.locator('svg g[data-region="eu-west-1"]').textContent() ?? '', /EU/)
      assert.equal(await page.evaluate<number>('sessionStorage.length'), 1)
    })

    await t.test('onboarding a tenant from the form adds it to the table and the diagram', async () => {
      await page.getByLabel('Tenant id').fill('initech-eu')
      await page.getByLabel('Home region').selectOption('eu-west-1')
      await page.getByLabel('Key custody').selectOption('kms')
      await page.getByRole('button', { name: 'Onboard tenant' }).click()
      await page.locator('#tenants-body tr[data-tenant="initech-eu"]').waitFor()
      const cells = await page.locator('#tenants-body tr[data-tenant="initech-eu"] > *').allTextContents()
      assert.equal(cells[1], 'eu-west-1')
      assert.equal(cells[3], 'kms')
      assert.equal(await badgeOf(page, 'initech-eu').textContent(), 'enabled')
      assert.equal(await page.locator('svg g[data-region="eu-west-1"] g[data-tenant="initech-eu"]').count(), 1)
      assert.equal(await page.getByRole('status').locator('.code').count(), 0, await page.getByRole('status').textContent() ?? '')
      const listed = await call(base, '/admin/api/tenants', { token: ADMIN_TOKEN })
      assert.ok((listed.json as { tenants: Array<{ id: string }> }).tenants.some((x) => x.id === 'initech-eu'))
    })

    await t.test('onboarding a HYOK tenant from the form: its own XKS proxy, CA pasted in, secret not kept on the page', async () => {
      proxyDir = await initKeyProxyDir()
      const keyId = await createKeyViaCli(proxyDir.dir)
      proxy = await startKeyProxyProcess({ dir: proxyDir.dir })
      const { secretAccessKey } = proxy.credentials
      await page.getByLabel('Tenant id').fill('umbrella-eu')
      await page.getByLabel('Home region').selectOption('eu-west-1')
      await page.getByLabel('Key custody').selectOption('hyok')
      await page.getByLabel('Key id (optional; required for hyok)', { exact: true }).fill(keyId)
      await page.getByLabel('XKS endpoint URL').fill(proxy.url)
      await page.getByLabel('URI prefix (optional)').fill(proxy.uriPrefix)
      await page.getByLabel('Access key id', { exact: true }).fill(proxy.credentials.accessKeyId)
      await page.getByLabel('Secret access key').fill(secretAccessKey)
      await page.getByLabel('CA certificate').fill(await readFile(proxy.caFile!, 'utf8'))
      await page.getByRole('button', { name: 'Onboard tenant' }).click()
      await page.locator('#tenants-body tr[data-tenant="umbrella-eu"]').waitFor({ timeout: 30_000 })
      const cells = await page.locator('#tenants-body tr[data-tenant="umbrella-eu"] > *').allTextContents()
      assert.equal(cells[1], 'eu-west-1')
      assert.equal(cells[3], 'hyok')
      assert.equal(await badgeOf(page, 'umbrella-eu').textContent(), 'enabled')
      assert.equal(await page.getByLabel('Secret access key').inputValue(), '', 'the secret is cleared from the form')
      assert.ok(!(await page.content()).includes(secretAccessKey), 'the secret appears nowhere on the page')
      const listed = await call(base, '/admin/api/tenants', { token: ADMIN_TOKEN })
      assert.ok(!listed.text.includes(secretAccessKey), 'the admin API never returns the secret')

      // Data written and read back through the customer's key service.
      const issued = await call(base, '/admin/api/tenants/umbrella-eu/api-keys', { method: 'POST', token: ADMIN_TOKEN, body: { reveal: true } })
      assert.equal(issued.status, 201, issued.text)
      const apiKey = (issued.json as { apiKey: string }).apiKey
      const created = await call(base, '/api/tables/customers/rows', { method: 'POST', token: apiKey, body: { ...CUSTOMER, email: 'ops@umbrella.example' } })
      assert.equal(created.status, 201, created.text)
      const read = await call(base, `/api/tables/customers/rows/${CUSTOMER.id}?reveal=email`, { token: apiKey, headers: { 'X-Domicile-Purpose': PURPOSE } })
      assert.equal(read.status, 200, read.text)
      assert.equal((read.json as { row: Record<string, unknown> }).row.email, 'ops@umbrella.example')
    })

    await t.test('revoking from the page (after its confirmation) makes the sensitive fields unreadable through the API', async () => {
      const issued = await call(base, '/admin/api/tenants/acme-eu/api-keys', { method: 'POST', token: ADMIN_TOKEN, body: { reveal: true, label: 'console-e2e' } })
      assert.equal(issued.status, 201, issued.text)
      const apiKey = (issued.json as { apiKey: string }).apiKey
      const created = await call(base, '/api/tables/customers/rows', { method: 'POST', token: apiKey, body: CUSTOMER })
      assert.equal(created.status, 201, created.text)
      const read = (): ReturnType<typeof call> =>
        call(base, `/api/tables/customers/rows/${CUSTOMER.id}?reveal=email,tax_id`, { token: apiKey, headers: { 'X-Domicile-Purpose': PURPOSE } })

      const before = await read()
      assert.equal(before.status, 200, before.text)
      const row = (before.json as { row: Record<string, unknown> }).row
      assert.equal(row.email, CUSTOMER.email)
      assert.equal(row.tax_id, CUSTOMER.tax_id)

      // Cancelling the confirmation changes nothing.
      await page.getByRole('button', { name: 'Revoke key of acme-eu' }).click()
      const dialog = page.getByRole('alertdialog')
      await dialog.waitFor()
      assert.match(await dialog.textContent() ?? '', /acme-eu/)
      await dialog.getByRole('button', { name: 'Cancel' }).click()
      await dialog.waitFor({ state: 'hidden' })
      assert.equal(await badgeOf(page, 'acme-eu').textContent(), 'enabled')
      assert.equal((await read()).status, 200)

      await page.getByRole('button', { name: 'Revoke key of acme-eu' }).click()
      await dialog.getByRole('button', { name: 'Revoke key' }).click()
      await page.locator('#tenants-body tr[data-tenant="acme-eu"] .badge-revoked').waitFor()
      assert.equal(await badgeOf(page, 'acme-eu').textContent(), 'revoked')
      assert.equal(await page.locator('svg g[data-tenant="acme-eu"] .pin-revoked').count(), 1)

      const after = await read()
      assert.ok(after.status >= 400, `a revoked key's fields are not served (got ${after.status})`)
      assert.equal((after.json as ErrorBody).error?.code, 'ERR_KEY_REVOKED', after.text)
      assert.ok(!after.text.includes(CUSTOMER.email) && !after.text.includes(CUSTOMER.tax_id), 'no plaintext in the refusal')
      const write = await call(base, '/api/tables/customers/rows', { method: 'POST', token: apiKey, body: { ...CUSTOMER, id: 'c2' } })
      assert.ok(write.status >= 400, `no write under a revoked key (got ${write.status})`)
      // The other tenants are untouched.
      assert.equal(await badgeOf(page, 'globex-us').textContent(), 'enabled')

      await page.getByRole('button', { name: 'Restore key of acme-eu' }).click()
      await page.locator('#tenants-body tr[data-tenant="acme-eu"] .badge-enabled').waitFor()
      const restored = await read()
      assert.equal(restored.status, 200, restored.text)
      assert.equal((restored.json as { row: Record<string, unknown> }).row.email, CUSTOMER.email)
    })

    await t.test('the residency report downloads with the admin token', async () => {
      const [download] = await Promise.all([
        page.waitForEvent('download'),
        page.getByRole('button', { name: 'JSON residency report of acme-eu' }).click(),
      ])
      const file = await download.path()
      const report = JSON.parse(await readFile(file, 'utf8')) as unknown
      assert.match(JSON.stringify(report), /"acme-eu"/)
      assert.match(download.suggestedFilename(), /\.json$/)
      assert.equal(await page.getByRole('status').locator('.code').count(), 0, await page.getByRole('status').textContent() ?? '')
    })

    await t.test('logging out forgets the token', async () => {
      await page.getByRole('button', { name: 'Log out' }).click()
      await page.getByLabel('Admin token').waitFor()
      assert.equal(await page.evaluate<number>('sessionStorage.length'), 0)
      assert.equal(await page.locator('#tenants-body tr').count(), 0)
    })

    await t.test('the page requested nothing outside its origin and logged no error', async () => {
      const outside = requests.filter((u) => !u.startsWith(base + '/') && !u.startsWith(`blob:${base}/`) && !u.startsWith('data:'))
      assert.deepEqual(outside, [])
      assert.ok(requests.some((u) => u.startsWith(`${base}/admin/api/`)), 'the page talked to the admin API')
      assert.deepEqual(await page.evaluate<string[]>('window.cspViolations'), [])
      assert.deepEqual(consoleErrors, [])
    })

    await browser.close()
    browser = undefined
    const code = await stopServe(server)
    server = undefined
    assert.equal(code, 0, 'domicile serve exits 0 on SIGTERM')

    await t.test('the CLI sees the tenant onboarded from the page', async () => {
      const shown = await runCliJson<{ id: string; region: string; custody: string | null; keyState: string }>(['tenant', 'show', 'initech-eu', '--json'], { cwd })
      assert.equal(shown.region, 'eu-west-1')
      assert.equal(shown.custody, 'kms')
      assert.equal(shown.keyState, 'enabled')
      const hyok = await runCliOk(['tenant', 'show', 'umbrella-eu', '--json'], { cwd })
      const rec = JSON.parse(hyok.stdout) as { region: string; custody: string | null; keyState: string }
      assert.deepEqual([rec.region, rec.custody, rec.keyState], ['eu-west-1', 'hyok', 'enabled'])
      assert.ok(proxy && !hyok.stdout.includes(proxy.credentials.secretAccessKey), 'the CLI never prints the proxy secret')
    })
  } finally {
    await browser?.close().catch(() => undefined)
    if (server) await stopServe(server)
    await proxy?.stop()
    await proxyDir?.cleanup()
    await dir.cleanup()
  }
})
