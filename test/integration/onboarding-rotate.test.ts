/**
 * Rotating a registered key service's SigV4 credentials without restarting anything, as a
 * customer and an operator run it: `keyproxy serve` is a REAL child process; the customer adds a
 * credential (`keyproxy rotate-credentials`), the operator runs `domicile tenant update-key-service
 * acme --xks-credentials FILE`, the customer retires the old credential. Stores are real
 * PostgreSQL, so two long-lived library instances created BEFORE the rotation (one following the
 * change feed, one unwatched, re-reading entries after 1 s) run next to the CLI commands, and
 * every one of them keeps revealing after the old credential is gone. A wrong credentials file is
 * refused with the old record untouched; the sealed row never holds the new secret.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createDomicile, updateKeyService, type Domicile } from '../../src/index.js'
import { generateCredential } from '../../src/keyproxy/keyproxy-credentials.js'
import { createXksKeyProvider } from '../../src/keys/providers/xks/xks-key-provider.js'
import { makeTempDir, runCli, runCliJson, runCliOk, type CliResult, type TempDir } from '../support/cli.js'
import { rejectsWithCode } from '../support/domicile-fixture.js'
import { createKeyViaCli, initKeyProxyDir, runKeyproxyCliOk, startKeyProxyProcess, type KeyProxyDir, type KeyProxyProcess } from '../support/keyproxy-process.js'
import { postgresUnavailable, startPgCluster, type PgCluster } from '../support/pg-cluster.js'

interface Credential { accessKeyId: string; secretAccessKey: string; createdAt?: string }

/** Needles that must never appear at rest: the secret as text, its bytes, and every 8-byte window of them. */
function assertNoSecret(haystack: Buffer, secret: string, where: string): void {
  const text = Buffer.from(secret, 'utf8')
  const raw = Buffer.from(secret, 'base64')
  const needles = [text, raw]
  for (const b of [text, raw]) for (let i = 0; i + 8 <= b.length; i++) needles.push(b.subarray(i, i + 8))
  for (const n of needles) assert.equal(haystack.indexOf(n), -1, `${where} holds bytes of the secret`)
}

describe('HYOK: rotating a registered key service\'s credentials while everything runs', { skip: postgresUnavailable() }, () => {
  let cluster: PgCluster
  let dir: TempDir
  let cwd: string
  let kp: KeyProxyDir
  let proxy: KeyProxyProcess
  let keyId: string
  let configPath: string
  const cli = (args: readonly string[]): Promise<CliResult> => runCli(args, { cwd, timeoutMs: 90_000 })
  const reveal = async (): Promise<string> =>
    (await runCliJson<{ value: string }>(['rows', 'reveal', 'acme', 'customers', 'c1', 'tax_id', '--purpose', 'rotation test', '--json'], { cwd, timeoutMs: 90_000 })).value
  const revealIn = (d: Domicile): Promise<unknown> =>
    d.withTenant('acme', async (s) => s.reveal((await s.table('customers').get('c1'))!.tax_id, { purpose: 'rotation test' }))
  const credentialsFile = (): string => join(kp.dir, 'credentials.json')
  const credentials = async (): Promise<Credential[]> => (JSON.parse(await readFile(credentialsFile(), 'utf8')) as { credentials: Credential[] }).credentials

  async function controlPlane<T>(fn: (q: (sql: string, params?: unknown[]) => Promise<Record<string, unknown>[]>) => Promise<T>): Promise<T> {
    const { default: pg } = await import('pg')
    const c = new pg.Client({ connectionString: cluster.database('control') })
    await c.connect()
    try {
      return await fn(async (sql, params) => (await c.query(sql, params)).rows as Record<string, unknown>[])
    } finally {
      await c.end()
    }
  }
  const serviceRow = (): Promise<Record<string, unknown>> => controlPlane(async (q) => (await q("SELECT * FROM domicile_key_services WHERE tenant_id = 'acme'"))[0]!)
  const rowBytes = (row: Record<string, unknown>): Buffer => Buffer.concat(Object.values(row).map((v) => v instanceof Uint8Array ? Buffer.from(v) : Buffer.from(String(v))))

  /** Waits until the proxy (which re-reads credentials.json when it changes) refuses `c`. */
  async function proxyRefuses(c: Credential): Promise<void> {
    const probe = createXksKeyProvider({ name: 'probe', endpoint: proxy.url, uriPrefix: proxy.uriPrefix, credentials: c, ca: await readFile(proxy.caFile!, 'utf8'), timeoutMs: 5000 })
    try {
      const deadline = Date.now() + 15_000
      for (;;) {
        const refused = await probe.health().then(() => false, () => true)
        if (refused) return
        assert.ok(Date.now() < deadline, 'the proxy still accepts the retired credential after 15 s')
        await new Promise((r) => setTimeout(r, 200))
      }
    } finally {
      await probe.close()
    }
  }

  before(async () => {
    cluster = await startPgCluster('rotate')
    dir = await makeTempDir('onboarding-rotate-')
    cwd = dir.path
    await runCliOk(['init'], { cwd })
    configPath = join(cwd, 'domicile.config.json')
    const config = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>
    await writeFile(configPath, JSON.stringify({
      ...config,
      regions: { 'eu-west-1': { driver: 'postgres', url: cluster.database('eu'), jurisdiction: 'EU' } },
      controlPlane: { driver: 'postgres', url: cluster.database('control') },
    }, null, 2))
    await runCliOk(['migrate'], { cwd, timeoutMs: 120_000 })
    kp = await initKeyProxyDir()
    proxy = await startKeyProxyProcess({ dir: kp.dir, uriPrefix: '/xks' })
    keyId = await createKeyViaCli(kp.dir)
    await runCliOk(['tenant', 'add', 'acme', '--region', 'eu-west-1', '--custody', 'hyok', '--xks-endpoint', proxy.url, '--xks-uri-prefix', proxy.uriPrefix,
      '--xks-credentials', proxy.credentialsFile, '--xks-ca', proxy.caFile!, '--key-id', keyId, '--xks-timeout-ms', '5000', '--cache-ttl-ms', '0'], { cwd, timeoutMs: 90_000 })
    await runCliOk(['rows', 'insert', 'acme', 'customers', '--data', JSON.stringify({ id: 'c1', name: 'Ada', email: 'ada@acme.example', tax_id: 'DE123' })], { cwd, timeoutMs: 90_000 })
    await runCliOk(['tenant', 'add', 'plain', '--region', 'eu-west-1'], { cwd, timeoutMs: 90_000 })
  })
  after(async () => {
    await proxy?.stop()
    await kp?.cleanup()
    await dir?.cleanup()
    cluster?.destroy()
  })

  test('rotate via the CLI, retire the old credential: a fresh command and long-lived instances keep revealing', async () => {
    // Long-lived processes started before the rotation, each with the old credential resolved.
    const watched = await createDomicile({ configPath })
    const unwatched = await createDomicile({ configPath, changeFeed: false })
    try {
      assert.equal(await revealIn(watched), 'DE123')
      assert.equal(await revealIn(unwatched), 'DE123')
      const old = (await credentials()).at(-1)!
      const rowBefore = await serviceRow()

      await runKeyproxyCliOk(['rotate-credentials', '--dir', kp.dir])
      const fresh = (await credentials()).at(-1)!
      assert.notEqual(fresh.accessKeyId, old.accessKeyId)
      const r = await cli(['tenant', 'update-key-service', 'acme', '--xks-credentials', credentialsFile(), '--json'])
      assert.equal(r.code, 0, r.stderr)
      assertNoSecret(Buffer.from(r.stdout + r.stderr), fresh.secretAccessKey, 'the output of update-key-service')
      const out = JSON.parse(r.stdout) as { id: string; changed: string[]; keyService: { endpoint: string; credentials: string } }
      assert.deepEqual([out.id, out.changed, out.keyService.endpoint, out.keyService.credentials], ['acme', ['credentials'], proxy.url, 'sealed'])

      // The record was re-sealed in place (same sealing key, other bytes), the new secret nowhere in it.
      const rowAfter = await serviceRow()
      assert.equal(rowAfter.seal_key_id, rowBefore.seal_key_id)
      assert.notDeepEqual(Buffer.from(rowAfter.sealed_credentials as Uint8Array), Buffer.from(rowBefore.sealed_credentials as Uint8Array))
      assertNoSecret(rowBytes(rowAfter), fresh.secretAccessKey, 'the domicile_key_services row')
      assert.equal(rowBytes(rowAfter).indexOf(Buffer.from(fresh.accessKeyId)), -1, 'the access key id is sealed too')
      const audit = await controlPlane((q) => q("SELECT type, outcome, detail::text AS detail FROM domicile_control_audit WHERE tenant_id = 'acme' AND type = 'key-service.update'"))
      assert.equal(audit.length, 1)
      assert.match(String(audit[0]!.detail), /"changed": \["credentials"\]/)
      assertNoSecret(Buffer.from(JSON.stringify(audit)), fresh.secretAccessKey, 'the audit record')
      assert.equal(JSON.stringify(audit).includes(fresh.accessKeyId), false, 'no credential id in the audit')

      assert.equal(await reveal(), 'DE123')
      await runKeyproxyCliOk(['rotate-credentials', '--dir', kp.dir, '--retire', old.accessKeyId])
      await proxyRefuses(old)

      // A fresh command, the instance on the change feed, and the unwatched one (its entry is older than 1 s).
      assert.equal(await reveal(), 'DE123')
      assert.equal(await revealIn(watched), 'DE123')
      assert.equal(await revealIn(unwatched), 'DE123')
      await watched.withTenant('acme', (s) => s.table('customers').insert({ id: 'c2', name: 'Bo', email: 'bo@acme.example', tax_id: 'DE456' }))
      assert.equal(await unwatched.withTenant('acme', async (s) => s.reveal((await s.table('customers').get('c2'))!.tax_id, { purpose: 'rotation test' })), 'DE456')
    } finally {
      await watched.close()
      await unwatched.close()
    }
  })

  test('a wrong credentials file is refused before anything is stored; the old record keeps working', async () => {
    const current = (await credentials()).at(-1)!
    const wrong = join(cwd, 'wrong-credentials.json')
    await writeFile(wrong, JSON.stringify({ accessKeyId: current.accessKeyId, secretAccessKey: generateCredential().secretAccessKey }), { mode: 0o600 })
    const before = await serviceRow()
    const auditBefore = await controlPlane((q) => q("SELECT count(*)::int AS n FROM domicile_control_audit WHERE tenant_id = 'acme' AND type = 'key-service.update'"))
    const versionBefore = await controlPlane(async (q) => (await q("SELECT version FROM domicile_tenants WHERE id = 'acme'"))[0]!.version)

    const r = await cli(['tenant', 'update-key-service', 'acme', '--xks-credentials', wrong, '--json'])
    assert.notEqual(r.code, 0)
    const err = (JSON.parse(r.stdout) as { error: { code: string; message: string } }).error
    assert.equal(err.code, 'ERR_KEY_PROVIDER_UNAVAILABLE', err.message)
    assert.match(err.message, /SigV4 signature/)
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace')

    assert.deepEqual(await serviceRow(), before, 'the record is untouched')
    assert.deepEqual(await controlPlane((q) => q("SELECT count(*)::int AS n FROM domicile_control_audit WHERE tenant_id = 'acme' AND type = 'key-service.update'")), auditBefore)
    assert.equal(await controlPlane(async (q) => (await q("SELECT version FROM domicile_tenants WHERE id = 'acme'"))[0]!.version), versionBefore, 'no directory change')
    assert.equal(await reveal(), 'DE123')
  })

  test('the library call: a new deadline is checked, stored and used; a tenant without a key service and empty input are refused', async () => {
    const d = await createDomicile({ configPath })
    try {
      const r = await updateKeyService(d, { id: 'acme', timeoutMs: 4000, actor: 'rotation-test' })
      assert.deepEqual([r.changed, r.keyService.timeoutMs, r.keyService.trustsCustomCa], [['timeout'], 4000, true])
      assert.equal(await revealIn(d), 'DE123')
      await rejectsWithCode(updateKeyService(d, { id: 'plain', timeoutMs: 4000 }), 'ERR_KEY_PROVIDER_UNKNOWN')
      await rejectsWithCode(updateKeyService(d, { id: 'acme' }), 'ERR_INPUT_INVALID')
      await rejectsWithCode(updateKeyService(d, { id: 'acme', caPem: 'not a certificate' }), 'ERR_INPUT_INVALID')
    } finally {
      await d.close()
    }
    const actors = await controlPlane((q) => q("SELECT actor FROM domicile_control_audit WHERE tenant_id = 'acme' AND type = 'key-service.update' ORDER BY id"))
    assert.equal(actors.at(-1)!.actor, 'rotation-test')
  })

  test('input errors exit 2 before anything is asked', async () => {
    const none = await cli(['tenant', 'update-key-service', 'acme', '--json'])
    assert.equal(none.code, 2, none.stderr)
    const missing = await cli(['tenant', 'update-key-service', 'acme', '--xks-credentials', join(cwd, 'no-such-file.json'), '--json'])
    assert.equal(missing.code, 2, missing.stderr)
    const help = await cli(['tenant', 'update-key-service', '--help'])
    assert.match(help.stdout + help.stderr, /onboard the tenant's key service again/)
  })
})
