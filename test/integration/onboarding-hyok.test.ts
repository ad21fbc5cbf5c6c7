/**
 * HYOK onboarding in one step, as a customer and an operator run it: `domicile keyproxy init` and
 * `keyproxy serve` (a REAL child process over HTTPS with the self-signed pair init wrote), then
 * `domicile tenant add ... --custody hyok --xks-endpoint URL --xks-uri-prefix /xks --xks-credentials
 * FILE --xks-ca FILE --key-id K` with exactly the files and values keyproxy printed. The key service
 * is registered in the control plane (no config edit), its credentials sealed: the test reads the
 * control plane's files and table directly and finds no trace of the secret. Every refused
 * onboarding (wrong credentials, untrusted certificate, unknown or disabled key, a stopped proxy)
 * leaves no key-service row, no directory row and no key. The library call does the same.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createDomicile, onboardTenant } from '../../src/index.js'
import { generateCredential } from '../../src/keyproxy/keyproxy-credentials.js'
import { DOMICILE_BIN, makeTempDir, runCli, runCliJson, runCliOk, type CliResult, type TempDir } from '../support/cli.js'
import { createKeyViaCli, initKeyProxyDir, runKeyproxyCliOk, startKeyProxyProcess, type KeyProxyDir, type KeyProxyProcess } from '../support/keyproxy-process.js'
import { rejectsWithCode } from '../support/domicile-fixture.js'

interface TenantOut {
  id: string; region: string; custody: string | null; provider: string | null; keyId: string | null; keyState: string
  keyService?: { endpoint: string; uriPrefix: string; trustsCustomCa: boolean; credentials: string; sealedBy: { provider: string; keyId: string } }
  nextSteps?: string[]
}

/** Every file under `dir`, recursively. */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) out.push(...await filesUnder(p))
    else if (e.isFile()) out.push(p)
  }
  return out
}

/** Needles that must never appear at rest: the secret as text, its bytes, and every 8-byte window of them. */
function secretNeedles(secret: string): Buffer[] {
  const text = Buffer.from(secret, 'utf8')
  const raw = Buffer.from(secret, 'base64')
  const windows: Buffer[] = []
  for (const b of [text, raw]) for (let i = 0; i + 8 <= b.length; i++) windows.push(b.subarray(i, i + 8))
  return [text, raw, ...windows]
}

function assertNoSecret(haystack: Buffer, secret: string, where: string): void {
  for (const n of secretNeedles(secret)) assert.equal(haystack.indexOf(n), -1, `${where} holds bytes of the secret`)
}

describe('HYOK onboarding: the customer\'s key service registered with the tenant', () => {
  let dir: TempDir
  let cwd: string
  let kp: KeyProxyDir
  let proxy: KeyProxyProcess
  let keyId: string
  const cli = (args: readonly string[]): Promise<CliResult> => runCli(args, { cwd, timeoutMs: 90_000 })
  const json = <T>(args: readonly string[]): Promise<T> => runCliJson<T>(args, { cwd, timeoutMs: 90_000 })

  /** The control plane as it is on disk, opened directly (no command runs meanwhile). */
  async function controlPlane<T>(fn: (q: (sql: string, params?: unknown[]) => Promise<Record<string, unknown>[]>) => Promise<T>): Promise<T> {
    const { PGlite } = await import('@electric-sql/pglite')
    const db = new PGlite(join(cwd, '.domicile', 'control-plane'))
    try {
      return await fn(async (sql, params) => (await db.query<Record<string, unknown>>(sql, params)).rows)
    } finally {
      await db.close()
    }
  }
  const keyFiles = async (): Promise<string[]> => (await readdir(join(cwd, '.domicile', 'keys')).catch(() => [] as string[])).filter((f) => f.endsWith('.json')).sort()
  const hyokArgs = (id: string, o: { endpoint?: string; credentials?: string; ca?: string | null; key?: string } = {}): string[] => [
    'tenant', 'add', id, '--region', 'eu-west-1', '--custody', 'hyok',
    '--xks-endpoint', o.endpoint ?? proxy.url, '--xks-uri-prefix', proxy.uriPrefix,
    '--xks-credentials', o.credentials ?? proxy.credentialsFile,
    ...(o.ca === null ? [] : ['--xks-ca', o.ca ?? proxy.caFile!]),
    '--key-id', o.key ?? keyId, '--xks-timeout-ms', '5000', '--json',
  ]

  before(async () => {
    dir = await makeTempDir('onboarding-hyok-')
    cwd = dir.path
    await runCliOk(['init'], { cwd })
    await runCliOk(['migrate'], { cwd, timeoutMs: 120_000 })
    kp = await initKeyProxyDir()
    proxy = await startKeyProxyProcess({ dir: kp.dir, uriPrefix: '/xks' })
    keyId = await createKeyViaCli(kp.dir)
  })
  after(async () => {
    await proxy?.stop()
    await kp?.cleanup()
    await dir?.cleanup()
  })

  test('tenant add --custody hyok with the files keyproxy wrote: checked, registered, sealed, and used by the next process', async () => {
    const secret = kp.credentials.secretAccessKey
    const r = await cli(hyokArgs('acme'))
    assert.equal(r.code, 0, r.stderr)
    assertNoSecret(Buffer.from(r.stdout + r.stderr), secret, 'the output of tenant add')
    const t = JSON.parse(r.stdout) as TenantOut
    assert.deepEqual([t.custody, t.provider, t.keyId, t.keyState], ['hyok', 'xks:acme', keyId, 'enabled'])
    assert.equal(t.keyService?.endpoint, proxy.url)
    assert.equal(t.keyService?.uriPrefix, '/xks')
    assert.equal(t.keyService?.credentials, 'sealed')
    assert.equal(t.keyService?.trustsCustomCa, true)
    assert.equal(t.nextSteps, undefined, 'nothing left to do')

    // Another process resolves the tenant's key service from the control plane alone.
    await runCliOk(['rows', 'insert', 'acme', 'customers', '--data', JSON.stringify({ id: 'c1', name: 'Ada', email: 'ada@acme.example' })], { cwd, timeoutMs: 90_000 })
    assert.deepEqual(await json(['rows', 'reveal', 'acme', 'customers', 'c1', 'email', '--purpose', 'onboarding test', '--json']), { value: 'ada@acme.example' })
    const show = await cli(['tenant', 'show', 'acme'])
    assert.equal(show.code, 0, show.stderr)
    assert.match(show.stdout, /credentials\s+sealed under local key /)
    assertNoSecret(Buffer.from(show.stdout), secret, 'tenant show')

    // At rest: the row, the audit, and every byte of the control plane's files are free of the secret.
    const { row, audit } = await controlPlane(async (q) => ({
      row: (await q('SELECT * FROM domicile_key_services WHERE tenant_id = $1', ['acme']))[0]!,
      audit: await q("SELECT type, detail::text AS detail FROM domicile_control_audit WHERE tenant_id = 'acme'"),
    }))
    assert.equal(row.endpoint, proxy.url)
    assert.equal(row.seal_provider, 'local')
    const rowBytes = Buffer.concat(Object.values(row).map((v) => v instanceof Uint8Array ? Buffer.from(v) : Buffer.from(String(v))))
    assertNoSecret(rowBytes, secret, 'the domicile_key_services row')
    assert.equal(rowBytes.indexOf(Buffer.from(kp.credentials.accessKeyId)), -1, 'the access key id is sealed too')
    assert.ok((row.sealed_credentials as Uint8Array).length > 12 + 16, 'sealed credentials are stored')
    const types = new Set(audit.map((a) => a.type))
    assert.ok(types.has('key-service.register') && types.has('tenant.add'), `audited: ${[...types].join(', ')}`)
    // The sealing key's own calls (wrap at registration, unwrap in each process that used the service) are audited by the runtime wrapper.
    assert.ok(audit.filter((a) => a.type === 'key.unwrap').every((a) => /xks-credentials/.test(String(a.detail))), 'unwrap events name the sealed record\'s context')
    assertNoSecret(Buffer.from(JSON.stringify(audit)), secret, 'the control audit')
    for (const f of [...await filesUnder(join(cwd, '.domicile', 'control-plane')), ...await filesUnder(join(cwd, '.domicile', 'keys'))]) {
      assertNoSecret(await readFile(f), secret, f)
    }

    // An edited endpoint (to send data keys elsewhere) no longer opens: the key service fails closed.
    await controlPlane((q) => q("UPDATE domicile_key_services SET endpoint = 'https://127.0.0.2:9' WHERE tenant_id = 'acme'"))
    const edited = await cli(['rows', 'insert', 'acme', 'customers', '--json', '--data', JSON.stringify({ id: 'c2', name: 'Eve', email: 'eve@acme.example' })])
    assert.notEqual(edited.code, 0)
    assert.equal((JSON.parse(edited.stdout) as { error: { code: string; message: string } }).error.code, 'ERR_KEY_PROVIDER_UNAVAILABLE')
    assert.match(edited.stderr, /could not be unsealed/)
    await controlPlane((q) => q('UPDATE domicile_key_services SET endpoint = $1 WHERE tenant_id = $2', [proxy.url, 'acme']))
  })

  test('refused onboardings leave nothing: wrong credentials, untrusted certificate, unknown key, stopped proxy', async () => {
    const keysBefore = await keyFiles()
    const wrong = join(cwd, 'wrong-credentials.json')
    await writeFile(wrong, JSON.stringify({ accessKeyId: kp.credentials.accessKeyId, secretAccessKey: generateCredential().secretAccessKey }), { mode: 0o600 })
    const other = await startKeyProxyProcess({ dir: kp.dir, uriPrefix: '/xks' })
    const stoppedUrl = other.url
    await other.stop()

    const cases: Array<[string, string[], string, RegExp]> = [
      ['wrongcreds', hyokArgs('wrongcreds', { credentials: wrong }), 'ERR_KEY_PROVIDER_UNAVAILABLE', /SigV4 signature/],
      ['untrusted', hyokArgs('untrusted', { ca: null }), 'ERR_KEY_PROVIDER_UNAVAILABLE', /self-signed certificate/],
      ['nokey', hyokArgs('nokey', { key: 'no-such-key' }), 'ERR_KEY_NOT_FOUND', /no such external key/],
      ['stopped', hyokArgs('stopped', { endpoint: stoppedUrl }), 'ERR_KEY_PROVIDER_UNAVAILABLE', /could not be reached/],
    ]
    for (const [id, args, code, message] of cases) {
      const r = await cli(args)
      assert.notEqual(r.code, 0, `${id}: refused`)
      const err = (JSON.parse(r.stdout) as { error: { code: string; message: string } }).error
      assert.equal(err.code, code, `${id}: ${err.message}`)
      assert.match(err.message, message, id)
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace')
      assertNoSecret(Buffer.from(r.stdout + r.stderr), kp.credentials.secretAccessKey, `${id}: output`)
    }
    const left = await controlPlane(async (q) => ({
      services: (await q('SELECT tenant_id FROM domicile_key_services ORDER BY tenant_id')).map((x) => x.tenant_id),
      tenants: (await q("SELECT id FROM domicile_tenants WHERE id IN ('wrongcreds','untrusted','nokey','stopped')")).length,
    }))
    assert.deepEqual(left, { services: ['acme'], tenants: 0 })
    assert.deepEqual(await keyFiles(), keysBefore, 'no sealing key or tenant key was left in the keystore')
  })

  test('input errors exit 2 before anything is asked', async () => {
    const r1 = await cli(['tenant', 'add', 'x1', '--region', 'eu-west-1', '--xks-endpoint', proxy.url, '--key-id', keyId, '--json'])
    assert.equal(r1.code, 2)
    const r2 = await cli(['tenant', 'add', 'x1', '--region', 'eu-west-1', '--custody', 'hyok', '--xks-endpoint', proxy.url, '--key-id', keyId, '--json'])
    assert.equal(r2.code, 2)
    const notPem = join(cwd, 'not-a-cert.pem')
    await writeFile(notPem, 'hello')
    const r3 = await cli(hyokArgs('x1', { ca: notPem }))
    assert.equal(r3.code, 2)
    assert.match(r3.stderr, /--xks-ca: the file is not a PEM certificate/)
  })

  test('default custody and byok from the CLI: kms writes sealed fields; byok prints its next steps, which work as printed', async () => {
    const plain = await json<TenantOut>(['tenant', 'add', 'dflt', '--region', 'eu-west-1', '--json'])
    assert.deepEqual([plain.custody, plain.provider, plain.keyState], ['kms', 'local', 'enabled'])
    await runCliOk(['rows', 'insert', 'dflt', 'customers', '--data', JSON.stringify({ id: 'd1', name: 'D', email: 'd@dflt.example' })], { cwd })

    const none = await cli(['tenant', 'add', 'nokey', '--region', 'eu-west-1', '--custody', 'none'])
    assert.equal(none.code, 0, none.stderr)
    const refused = await cli(['rows', 'insert', 'nokey', 'customers', '--json', '--data', JSON.stringify({ id: 'n1', name: 'N', email: 'n@nokey.example' })])
    assert.equal((JSON.parse(refused.stdout) as { error: { code: string } }).error.code, 'ERR_KEY_NOT_FOUND')
    assert.match(refused.stderr, /domicile tenant bind-key nokey --custody kms/)
    assert.doesNotMatch(refused.stderr, /n@nokey/)

    const human = await cli(['tenant', 'add', 'byo', '--region', 'eu-west-1', '--custody', 'byok'])
    assert.equal(human.code, 0, human.stderr)
    assert.match(human.stdout, /key state\s+pending-import/)
    assert.match(human.stdout, /Next steps:\n\s+domicile key import-job byo --out \.\/byo-import\n/)
    const shown = await json<TenantOut>(['tenant', 'show', 'byo', '--json'])
    assert.equal(shown.keyState, 'pending-import')
    assert.equal(shown.nextSteps?.length, 4)
    assert.match((await cli(['tenant', 'show', 'byo'])).stdout, /The key is pending import/)
    // Run the steps exactly as printed (domicile = this checkout's bin), in the tenant's working directory.
    const env = { ...process.env }
    delete env.DOMICILE_CONFIG
    for (const step of shown.nextSteps!) {
      const line = step.replace(/\s+#.*$/, '')
      const [cmd, ...args] = line.split(' ')
      if (cmd === 'domicile') execFileSync(process.execPath, [DOMICILE_BIN, ...args], { cwd, stdio: 'pipe', env })
      else execFileSync(cmd!, args, { cwd, stdio: 'pipe' })
    }
    assert.equal((await json<TenantOut>(['tenant', 'show', 'byo', '--json'])).keyState, 'enabled')
    await runCliOk(['rows', 'insert', 'byo', 'customers', '--data', JSON.stringify({ id: 'b1', name: 'B', email: 'b@byo.example' })], { cwd })
  })

  test('the library call does the same: onboardTenant registers, checks and binds; a disabled key is refused', async () => {
    const caPem = await readFile(proxy.caFile!, 'utf8')
    const d = await createDomicile({ configPath: join(cwd, 'domicile.config.json') })
    try {
      const r = await onboardTenant(d, {
        id: 'lib', region: 'us-east-1', custody: 'hyok', keyId, actor: 'onboarding-test',
        xks: { endpoint: proxy.url, uriPrefix: proxy.uriPrefix, credentials: kp.credentials, caPem, timeoutMs: 5000 },
      })
      assert.deepEqual([r.tenant.key?.provider, r.keyState, r.nextSteps.length], ['xks:lib', 'enabled', 0])
      await d.withTenant('lib', (s) => s.table('customers').insert({ id: 'l1', name: 'Lin', tax_id: 'US-1' }))
      const tax = await d.withTenant('lib', async (s) => s.reveal((await s.table('customers').get('l1'))!.tax_id, { purpose: 'onboarding test' }))
      assert.equal(tax, 'US-1')

      const disabled = await createKeyViaCli(kp.dir)
      await runKeyproxyCliOk(['disable-key', disabled, '--dir', kp.dir])
      const keysBefore = await keyFiles()
      await rejectsWithCode(onboardTenant(d, {
        id: 'lib2', region: 'us-east-1', custody: 'hyok', keyId: disabled,
        xks: { endpoint: proxy.url, uriPrefix: proxy.uriPrefix, credentials: kp.credentials, caPem },
      }), 'ERR_KEY_REVOKED')
      assert.deepEqual(await keyFiles(), keysBefore)
      await rejectsWithCode(d.getTenant('lib2'), 'ERR_TENANT_UNKNOWN')
    } finally {
      await d.close()
    }
    const services = await controlPlane(async (q) => (await q('SELECT tenant_id FROM domicile_key_services ORDER BY tenant_id')).map((x) => x.tenant_id))
    assert.deepEqual(services, ['acme', 'lib'])
    assert.equal((await stat(join(cwd, 'domicile.config.json'))).isFile(), true)
    assert.doesNotMatch(await readFile(join(cwd, 'domicile.config.json'), 'utf8'), /xks/, 'the config file was not edited')
  })
})
