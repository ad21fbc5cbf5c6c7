/**
 * The residency report (issue #11 item 2) against the live system: embedded regions for the state
 * changes (KEK rotation, revocation and restore, a move between two regions, a suspended tenant, a
 * hostile key reference), the real `domicile` command for writing and verifying the three formats
 * (an edit of any of them exits 1), and real PostgreSQL for a store whose URLs carry credentials.
 */
import { strict as assert } from 'node:assert'
import { existsSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { after, before, describe, test } from 'node:test'
import { chromium } from 'playwright-core'
import { collectResidencyReport, generateReport, verifyReportFile, type Domicile, type ResidencyReport } from '../../src/index.js'
import { internalsOf } from '../../src/domicile-internals.js'
import { loadPublicKey } from '../../src/evidence/signing-key.js'
import { evidenceSigningKeyFile } from '../../src/ops/shred-evidence-key.js'
import { rotateKek } from '../../src/ops/rotate-kek.js'
import { moveTenant } from '../../src/ops/tenant-move.js'
import { createDomicileFixture, rejectsWithCode, type DomicileFixture } from '../support/domicile-fixture.js'
import { makeTempDir, runCli, runCliJson, runCliOk, type TempDir } from '../support/cli.js'
import { postgresUnavailable } from '../support/pg-cluster.js'
import { addKmsTenant, EU, startMoveEnv, US, type MoveEnv } from '../support/tenant-move-env.js'

const CHROMIUM = '/usr/bin/chromium'
const EU_REGION = 'eu-west-1'
const US_REGION = 'us-east-1'

async function seed(d: Domicile, tenant: string, n: number): Promise<void> {
  await d.withTenant(tenant, async (s) => {
    for (let i = 0; i < n; i++) await s.table('customers').insert({ id: `c${i}`, name: `Customer ${i}`, email: `c${i}@${tenant}.example`, tax_id: `TAXID-${tenant}-${i}` })
  })
}

const tenantRows = (r: ResidencyReport, table = 'customers') => r.tables.find((t) => t.name === table)!.rowCount

describe('residency report: live state (embedded regions)', () => {
  let fx: DomicileFixture
  let d: Domicile
  const verify = (body: string) => verifyReportFile(body, loadPublicKey(evidenceSigningKeyFile(fx.config)).publicKey)

  before(async () => {
    fx = await createDomicileFixture({ regions: [US_REGION, EU_REGION], directoryPollMs: 100 })
    d = fx.domicile
    await fx.addTenant('acme', { region: EU_REGION })
    await fx.addTenant('globex', { region: EU_REGION })
    await seed(d, 'acme', 3)
    await seed(d, 'globex', 5)
  })
  after(async () => {
    await fx?.close()
  })

  test('figures come from the live system: region, jurisdiction, row counts under RLS, sealed columns, key, reveals', async () => {
    await d.withTenant('acme', async (s) => {
      const row = await s.table('customers').get('c1')
      await s.reveal(row!.email, { purpose: 'support ticket 42', actor: 'report-test' })
    })
    const r = await collectResidencyReport(d, 'acme')
    assert.equal(r.tenant.id, 'acme')
    assert.equal(r.residency.region, EU_REGION)
    assert.equal(r.residency.jurisdiction, 'EU')
    assert.equal(r.residency.store.driver, 'pglite')
    assert.equal(r.rowCountsReadAs, 'tenant-scope')
    assert.equal(tenantRows(r), 3, 'only acme\'s rows, not globex\'s')
    assert.equal(tenantRows(await collectResidencyReport(d, 'globex')), 5)
    assert.deepEqual(r.tables.map((t) => [t.name, t.classification]), [['customers', 'tenant'], ['plans', 'global']])
    assert.deepEqual(r.sensitiveColumns.map((c) => [c.column, c.search, c.storage]), [['email', 'blind-index', 'sealed'], ['tax_id', 'none', 'sealed']])
    assert.equal(r.key.custody, 'kms')
    assert.equal(r.key.holder, 'operator')
    assert.equal(r.key.providerKind, 'local')
    assert.equal(r.key.state, 'enabled')
    assert.equal(r.revocation.cacheTtlMs, fx.config.keys.cacheTtlMs.kms)
    assert.equal(r.revocation.cacheTtlSource, 'custody-default')
    assert.deepEqual(r.globalTables.map((g) => g.name), ['plans'])
    assert.equal(r.events.reveals.length, 1)
    assert.deepEqual({ ...r.events.reveals[0], id: 0, at: '' }, { id: 0, at: '', table: 'customers', column: 'email', purpose: 'support ticket 42', actor: 'report-test', outcome: 'ok', code: null })
    assert.deepEqual(r.events.revealTotals, { ok: 1 })
    const text = JSON.stringify(r)
    assert.ok(!text.includes('c1@acme.example'), 'no plaintext in the report')
    assert.ok(!text.includes('TAXID-'), 'no plaintext in the report (a tax id)')
  })

  test('a per-tenant cache TTL is the revocation bound the report states', async () => {
    await fx.addTenant('short-ttl', { region: EU_REGION, custody: 'byok', cacheTtlMs: 1500 })
    const r = await collectResidencyReport(d, 'short-ttl')
    assert.equal(r.revocation.cacheTtlMs, 1500)
    assert.equal(r.revocation.cacheTtlSource, 'tenant-override')
    assert.equal(r.key.holder, 'customer-key-in-operator-kms')
    assert.equal(r.key.directoryState, 'pending-import')
    const md = (await generateReport(d, 'short-ttl', 'md')).body
    assert.match(md, /waiting for its key material/)
    assert.match(md, /at most 1\.5 s|at most 1500 ms/)
  })

  test('a KEK rotation, a revocation and a restore change the report', async () => {
    const before0 = await collectResidencyReport(d, 'acme')
    assert.equal(before0.key.lastRotation.keyEncryptionKey, null)

    const rot = await rotateKek(d, 'acme', { actor: 'report-test', propagationMs: 150 })
    assert.equal(rot.state, 'done')
    const rotated = await collectResidencyReport(d, 'acme')
    assert.notEqual(rotated.key.keyReference, before0.key.keyReference, 'the new key reference')
    assert.equal(rotated.key.keyReference, rot.to.keyId)
    assert.equal(rotated.key.lastRotation.keyEncryptionKey?.status, 'done')
    assert.equal(rotated.key.lastRotation.keyEncryptionKey?.id, rot.operation)
    assert.ok(rotated.events.key.some((e) => e.type === 'key.rotate' && e.detail.toKeyId === rot.to.keyId))
    assert.ok(rotated.events.operations.some((o) => o.kind === 'key-rotate' && o.id === rot.operation))

    await d.keys.revoke('acme', 'report-test')
    const revoked = await collectResidencyReport(d, 'acme')
    assert.equal(revoked.key.directoryState, 'revoked')
    assert.equal(revoked.key.state, 'revoked')
    assert.equal(revoked.key.lastRevocation?.actor, 'report-test')
    assert.equal(tenantRows(revoked), 3, 'rows are still counted: revocation hides sealed fields only')
    const md = (await generateReport(d, 'acme', 'md')).body
    assert.match(md, /Your key is revoked now \(since [0-9T:.Z-]+, by report-test\)/)
    const html = (await generateReport(d, 'acme', 'html')).body
    assert.match(html, /class="box kek bad"/, 'the diagram marks the refused key')
    assert.ok(verify(html).valid)

    await d.keys.restore('acme', 'report-test')
    const restored = await collectResidencyReport(d, 'acme')
    assert.equal(restored.key.state, 'enabled')
    assert.ok(!(await generateReport(d, 'acme', 'md')).body.includes('Your key is revoked now'))
    assert.deepEqual(restored.events.key.slice(0, 2).map((e) => e.type), ['key.restore', 'key.revoke'], 'newest first')
  })

  test('a move between regions changes region, jurisdiction and the move events; the rows follow', async () => {
    const r0 = await collectResidencyReport(d, 'globex')
    assert.equal(r0.residency.region, EU_REGION)
    const moved = await moveTenant(d, 'globex', { to: US_REGION, actor: 'report-test', purgeGraceMs: 200 })
    assert.equal(moved.state, 'done')
    const r1 = await collectResidencyReport(d, 'globex')
    assert.equal(r1.residency.region, US_REGION)
    assert.equal(r1.residency.jurisdiction, 'US')
    assert.equal(tenantRows(r1), 5)
    const cutover = r1.events.moves.find((e) => e.type === 'tenant.move.cutover')
    assert.ok(cutover, 'the cutover is listed')
    assert.equal(cutover.detail.from, EU_REGION)
    assert.equal(cutover.detail.to, US_REGION)
    assert.ok(r1.events.operations.some((o) => o.kind === 'tenant-move' && o.status === 'done'))
    const md = (await generateReport(d, 'globex', 'md')).body
    assert.match(md, /lives in region us-east-1 \(jurisdiction: US\)/)
    assert.match(md, /was last moved from eu-west-1 to us-east-1/)
  })

  test('a suspended tenant is reported from the region owner\'s session, filtered on the tenant', async () => {
    await fx.addTenant('paused', { region: EU_REGION })
    await seed(d, 'paused', 2)
    await d.setTenantStatus('paused', 'suspended')
    const r = await collectResidencyReport(d, 'paused')
    assert.equal(r.rowCountsReadAs, 'region-owner-session')
    assert.equal(tenantRows(r), 2)
    assert.match((await generateReport(d, 'paused', 'md')).body, /Your tenant is suspended/)
  })

  test('a hostile key reference is escaped in HTML and the report still verifies', async () => {
    const hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    await d.addTenant('hostile', { region: EU_REGION, key: { custody: 'hyok', provider: 'local', keyId: hostile }, keyState: 'enabled' })
    const { body, contentType, fileName } = await generateReport(d, 'hostile', 'html')
    assert.equal(contentType, 'text/html; charset=utf-8')
    assert.match(fileName, /^residency-report-hostile-\d{4}-\d{2}-\d{2}\.html$/)
    assert.equal(body.split('<script').length - 1, 1, 'the only script element is the signed JSON slot')
    assert.ok(!body.includes('<img'))
    assert.ok(body.includes('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;'))
    const v = verify(body)
    assert.ok(v.valid, v.valid ? '' : v.reason)
    assert.equal(v.report.key.keyReference, hostile)
  })

  test('in Chromium the HTML report makes no request, runs no script, draws the diagram and prints to PDF', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} not installed` }, async () => {
    await d.addTenant('browser', { region: EU_REGION, key: { custody: 'hyok', provider: 'local', keyId: '<script>window.__pwned = 1</script><img src="https://evil.example/x.png">' }, keyState: 'enabled' })
    const file = join(fx.dir, 'browser-report.html')
    await writeFile(file, (await generateReport(d, 'browser', 'html')).body)
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
    try {
      const page = await browser.newPage()
      const requests: string[] = []
      page.on('request', (r) => requests.push(r.url()))
      await page.goto(pathToFileURL(file).href)
      assert.deepEqual(requests, [pathToFileURL(file).href], 'the file itself, nothing else')
      assert.equal(await page.evaluate(() => (globalThis as unknown as { __pwned?: number }).__pwned), undefined, 'no script ran')
      const box = await page.locator('svg.diagram').boundingBox()
      assert.ok(box !== null && box.width > 300 && box.height > 300, 'the diagram is drawn')
      assert.match(await page.locator('svg.diagram').innerHTML(), /Who holds the key-encryption key/)
      assert.equal(await page.locator('section.answer h2').count(), 5, 'the five questionnaire answers')
      await page.emulateMedia({ media: 'print' })
      const pdf = await page.pdf({ format: 'A4' })
      assert.equal(pdf.subarray(0, 5).toString('latin1'), '%PDF-')
      assert.deepEqual(requests, [pathToFileURL(file).href], 'printing made no request either')
    } finally {
      await browser.close()
    }
  })

  test('a key service registered with the tenant: the customer holds the key, its endpoint origin is shown, never its credentials', async () => {
    // The record as onboarding stores it; its sealed credentials are junk here, so the key service cannot be opened.
    await internalsOf(d).controlPlane.withSession((s) => s.query(
      `INSERT INTO domicile_key_services (tenant_id, kind, endpoint, seal_version, seal_provider, seal_key_id, wrapped_key, sealed_credentials)
       VALUES ($1, 'xks', $2, 1, 'local', 'lk_none', $3, $3)`, ['hyok-svc', 'https://proxy-user:proxy-pw@xks.customer.example:8443/kms/xks/v1', new Uint8Array(8)]), { role: 'owner' })
    await d.addTenant('hyok-svc', { region: EU_REGION, key: { custody: 'hyok', provider: 'xks:hyok-svc', keyId: 'customer-kek-1' }, keyState: 'enabled' })
    const r = await collectResidencyReport(d, 'hyok-svc')
    assert.equal(r.key.holder, 'customer-key-service')
    assert.equal(r.key.providerKind, 'xks')
    assert.equal(r.key.holderEndpoint, 'https://xks.customer.example:8443')
    assert.notEqual(r.key.providerState, 'enabled', 'the junk record cannot be opened')
    const md = (await generateReport(d, 'hyok-svc', 'md')).body
    assert.match(md, /You do\. The key-encryption key stays in your own key service at https:\/\/xks\.customer\.example:8443/)
    assert.ok(!md.includes('proxy-pw') && !md.includes('proxy-user'))
  })

  test('an unknown tenant and an unknown format are refused', async () => {
    await rejectsWithCode(collectResidencyReport(d, 'nobody'), 'ERR_TENANT_UNKNOWN')
    await rejectsWithCode(generateReport(d, 'acme', 'pdf' as never), 'ERR_INPUT_INVALID')
  })
})

describe('residency report: the domicile command', () => {
  let dir: TempDir
  const cwd = () => ({ cwd: dir.path, timeoutMs: 180_000 })
  before(async () => {
    dir = await makeTempDir('cli-report-')
    await runCliOk(['init'], cwd())
    await runCliOk(['migrate'], cwd())
    await runCliOk(['tenant', 'add', 'acme', '--region', EU_REGION, '--custody', 'kms'], cwd())
    await runCliOk(['rows', 'insert', 'acme', 'customers', '--data', JSON.stringify({ id: 'c1', name: 'Ada', email: 'ada@acme.example', tax_id: 'DE1' })], cwd())
  })
  after(async () => {
    await dir?.cleanup()
  })

  const tamper: Record<'json' | 'md' | 'html', (text: string) => string> = {
    json: (t) => t.replace('"region": "eu-west-1"', '"region": "us-east-1"'),
    md: (t) => t.replace('lives in region eu-west-1', 'lives in region us-east-1'),
    html: (t) => t.replace('lives in region eu-west-1', 'lives in region us-east-1'),
  }

  for (const format of ['json', 'md', 'html'] as const) {
    test(`report --format ${format} --out writes a file that verify accepts, and an edit makes verify exit 1`, async () => {
      const out = join(dir.path, `acme.${format}`)
      const written = await runCliJson<{ out: string; format: string; bytes: number }>(['report', 'acme', '--format', format, '--out', out, '--json'], cwd())
      assert.equal(written.out, out)
      assert.equal(written.format, format)
      const text = await readFile(out, 'utf8')
      assert.equal(Buffer.byteLength(text), written.bytes)
      assert.ok(!text.includes('ada@acme.example') && !text.includes('DE1'), 'no plaintext')
      const ok = await runCliJson<{ valid: boolean; format: string; tenant: string; region: string }>(['report', 'verify', out, '--json'], cwd())
      assert.deepEqual([ok.valid, ok.format, ok.tenant, ok.region], [true, format, 'acme', EU_REGION])

      const edited = tamper[format](text)
      assert.notEqual(edited, text, 'the tamper found its target')
      const bad = join(dir.path, `edited.${format}`)
      await writeFile(bad, edited)
      const r = await runCli(['report', 'verify', bad, '--json'], cwd())
      assert.equal(r.code, 1, r.stderr)
      assert.match(r.stderr, /^domicile: ERR_SIGNATURE_INVALID: The residency report does not verify/)
      const j = JSON.parse(r.stdout) as { valid: boolean; error: { code: string } }
      assert.equal(j.valid, false)
      assert.equal(j.error.code, 'ERR_SIGNATURE_INVALID')
    })
  }

  test('without --out the report goes to stdout; verify with the published key works elsewhere', async () => {
    const r = await runCliOk(['report', 'acme'], cwd())
    const doc = JSON.parse(r.stdout) as { kind: string; payload: { tenant: { id: string } } }
    assert.equal(doc.kind, 'domicile.residency-report/v1')
    assert.equal(doc.payload.tenant.id, 'acme')
    const pem = join(dir.path, 'evidence.pub.pem')
    await writeFile(pem, (await runCliOk(['shred', 'public-key'], cwd())).stdout)
    const file = join(dir.path, 'stdout.json')
    await writeFile(file, r.stdout)
    await runCliOk(['report', 'verify', file, '--public-key', pem], cwd())
  })

  test('bad input exits 2: unknown format, missing file', async () => {
    assert.equal((await runCli(['report', 'acme', '--format', 'pdf'], cwd())).code, 2)
    assert.equal((await runCli(['report', 'verify', join(dir.path, 'missing.json')], cwd())).code, 2)
    assert.equal((await runCli(['report'], cwd())).code, 2)
  })
})

describe('residency report: PostgreSQL stores with credentials in their URLs', { skip: postgresUnavailable() }, () => {
  let env: MoveEnv
  let d: Domicile
  before(async () => {
    env = await startMoveEnv('report')
    d = await env.open()
    await addKmsTenant(d, 'acme', EU)
    await d.withTenant('acme', (s) => s.table('customers').insert({ id: 'c1', name: 'Ada', email: 'ada@acme.example', tax_id: 'DE1' }))
  })
  after(async () => {
    await d?.close()
    await env?.destroy()
  })

  test('no login name or password reaches any format; host and port do; a move changes the store', async () => {
    for (const format of ['json', 'md', 'html'] as const) {
      const { body } = await generateReport(d, 'acme', format)
      for (const secret of ['data-pw', 'owner-pw', 'domicile_data', 'domicile_owner']) assert.ok(!body.includes(secret), `${format}: no ${secret}`)
    }
    const r = await collectResidencyReport(d, 'acme')
    assert.equal(r.residency.store.driver, 'postgres')
    assert.equal(r.residency.store.host, '127.0.0.1')
    assert.equal(r.residency.store.port, env.clusters.eu.port)
    assert.equal(r.residency.store.database, 'region')
    assert.equal(r.residency.store.separateOwnerLogin, true)
    assert.equal(r.controlPlane.store.database, 'control')
    assert.equal(r.tables.find((t) => t.name === 'customers')!.rowCount, 1)

    await moveTenant(d, 'acme', { to: US, actor: 'report-test', purgeGraceMs: 300 })
    const after = await collectResidencyReport(d, 'acme')
    assert.equal(after.residency.region, US)
    assert.equal(after.residency.store.port, env.clusters.us.port)
    assert.equal(after.tables.find((t) => t.name === 'customers')!.rowCount, 1)
  })

  test('Precondition: the tenant\'s home region answers (every figure is read live; none is guessed).', async () => {
    const r = await collectResidencyReport(d, 'acme')
    // The support's direct superuser client on that store loses its connection: expected here.
    env.direct[r.residency.region]!.on('error', () => undefined)
    env.clusters[r.residency.region === US ? 'us' : 'eu'].stop()
    await rejectsWithCode(collectResidencyReport(d, 'acme'), 'ERR_REGION_UNAVAILABLE')
  })
})
