/**
 * `domicile keyproxy` as a customer runs it: real child processes of bin/domicile.mjs.
 * Exit codes (0 ok, 1 operational, 2 usage), file modes, secrets never printed, the serve
 * lifecycle (one JSON line, clean exit on SIGTERM and SIGINT).
 */
import { describe, test } from 'node:test'
import { strict as assert } from 'node:assert'
import { spawn } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { readFile, rm, stat } from 'node:fs/promises'
import { request } from 'node:https'
import { join } from 'node:path'
import { DOMICILE_BIN, REPO_ROOT, initKeyProxyDir, runKeyproxyCli, startKeyProxyProcess } from '../support/keyproxy-process.js'

/** GET /ping over HTTPS trusting `ca` only; resolves with the status. */
function httpsPing(url: string, ca: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/ping`, { ca, method: 'GET' }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.on('error', reject)
    req.end()
  })
}

describe('domicile keyproxy CLI', () => {
  test('init: files are 0600 in a 0700 dir, stdout has the access key id and never the secret', async () => {
    const d = await initKeyProxyDir()
    try {
      for (const f of ['master.key', 'credentials.json', 'tls/key.pem', 'tls/cert.pem']) {
        assert.equal((await stat(join(d.dir, f))).mode & 0o777, 0o600, f)
      }
      assert.equal((await stat(d.dir)).mode & 0o777, 0o700)
      assert.equal((await stat(join(d.dir, 'tls'))).mode & 0o777, 0o700)
      const cert = new X509Certificate(await readFile(join(d.dir, 'tls', 'cert.pem')))
      assert.ok(cert.verify(cert.publicKey), 'self-signed')
      assert.equal(cert.checkIP('127.0.0.1'), '127.0.0.1')
      assert.equal(cert.checkHost('localhost'), 'localhost')
      assert.match(d.credentials.accessKeyId, /^[A-Z2-7]{20,30}$/)
      assert.match(d.credentials.secretAccessKey, /^[A-Za-z0-9+/=]{43,64}$/)
      // init again: refused, nothing overwritten.
      const before = await readFile(join(d.dir, 'credentials.json'), 'utf8')
      const again = await runKeyproxyCli(['init', '--dir', d.dir])
      assert.notEqual(again.code, 0)
      assert.match(again.stderr, /already/)
      assert.equal(await readFile(join(d.dir, 'credentials.json'), 'utf8'), before)
      // Plain (non-JSON) init output elsewhere: just the id on stdout; stderr says what a tenant needs.
      const other = join(d.dir, 'sub')
      const r = await runKeyproxyCli(['init', '--dir', other, '--tls-name', 'xks.acme.example', '--tls-name', '10.0.0.7'])
      assert.equal(r.code, 0)
      assert.ok(r.stderr.includes(join(other, 'credentials.json')) && r.stderr.includes(join(other, 'tls', 'cert.pem')) && r.stderr.includes('uriPrefix /xks'))
      const named = new X509Certificate(await readFile(join(other, 'tls', 'cert.pem')))
      assert.equal(named.checkHost('xks.acme.example'), 'xks.acme.example')
      assert.equal(named.checkIP('10.0.0.7'), '10.0.0.7')
      assert.equal(named.checkHost('localhost'), undefined)
      const doc = JSON.parse(await readFile(join(other, 'credentials.json'), 'utf8')) as { credentials: Array<{ accessKeyId: string; secretAccessKey: string }> }
      assert.equal(r.stdout.trim(), doc.credentials[0]?.accessKeyId)
      assert.ok(!r.stdout.includes(doc.credentials[0]!.secretAccessKey) && !r.stderr.includes(doc.credentials[0]!.secretAccessKey))
    } finally {
      await d.cleanup()
    }
  })

  test('bad arguments exit 2 with a message', async () => {
    const d = await initKeyProxyDir()
    try {
      const cases: string[][] = [
        [],
        ['frobnicate'],
        ['create-key'],
        ['create-key', '--dir', d.dir, '--bogus'],
        ['disable-key', '--dir', d.dir],
        ['enable-key', 'a', 'b', '--dir', d.dir],
        ['serve', '--dir', d.dir, '--port', 'eighty'],
        ['serve', '--dir', d.dir, '--pkcs11-lib', '/x.so'],
        ['create-key', '--dir', d.dir, '--pkcs11-lib', '/x.so', '--token', 't', '--pin-env', 'DOMICILE_TEST_UNSET_PIN_VAR'],
        ['create-key', '--dir', d.dir, '--usage', 'sign'],
        ['create-key', '--dir', d.dir, '--spec', 'RSA_2048'],
        ['serve', '--dir', d.dir, '--insecure-http', '--tls-cert', 'c.pem', '--tls-key', 'k.pem'],
        ['serve', '--dir', d.dir, '--tls-cert', 'c.pem'],
        ['serve', '--dir', d.dir, '--client-cn', 'x'],
        ['init', '--dir', join(d.dir, 'bad-name'), '--tls-name', 'a b'],
      ]
      for (const args of cases) {
        const r = await runKeyproxyCli(args)
        assert.equal(r.code, 2, `${args.join(' ')} -> ${r.code}: ${r.stderr}`)
        assert.match(r.stderr, /domicile keyproxy: /)
      }
      const help = await runKeyproxyCli(['help'])
      assert.equal(help.code, 0)
      assert.match(help.stdout, /Usage: domicile keyproxy/)
    } finally {
      await d.cleanup()
    }
  })

  test('create-key / status / disable-key / enable-key', async () => {
    const d = await initKeyProxyDir()
    try {
      const created = await runKeyproxyCli(['create-key', '--dir', d.dir, '--label', 'acme'])
      assert.equal(created.code, 0)
      const keyId = created.stdout.trim()
      assert.match(keyId, /^[A-Za-z0-9._-]{1,128}$/)
      const st = async () => JSON.parse((await runKeyproxyCli(['status', keyId, '--dir', d.dir, '--json'])).stdout) as { keyId: string; state: string }
      assert.deepEqual(await st(), { keyId, state: 'enabled' })
      const dis = await runKeyproxyCli(['disable-key', keyId, '--dir', d.dir, '--json'])
      assert.deepEqual(JSON.parse(dis.stdout), { keyId, state: 'disabled' })
      assert.deepEqual(await st(), { keyId, state: 'disabled' })
      assert.equal((await runKeyproxyCli(['enable-key', keyId, '--dir', d.dir])).code, 0)
      assert.deepEqual(await st(), { keyId, state: 'enabled' })
      const file = join(d.dir, 'keys', `${keyId}.json`)
      assert.equal((await stat(file)).mode & 0o777, 0o600)
      const missing = await runKeyproxyCli(['status', 'nope', '--dir', d.dir, '--json'])
      assert.equal(missing.code, 1)
      assert.match(missing.stderr, /ERR_KEY_NOT_FOUND/)
      const noInit = await runKeyproxyCli(['create-key', '--dir', join(d.dir, 'empty')])
      assert.equal(noInit.code, 2)
      assert.match(noInit.stderr, /keyproxy init/)
    } finally {
      await d.cleanup()
    }
  })

  test('serve prints exactly one JSON line (HTTPS url, prefix, credentials and CA paths) and exits 0 on SIGTERM', async () => {
    const d = await initKeyProxyDir()
    try {
      const p = await startKeyProxyProcess({ dir: d.dir, uriPrefix: '/a/b_c-d' })
      assert.match(p.url, /^https:\/\/127\.0\.0\.1:\d+$/)
      assert.equal(p.uriPrefix, '/a/b_c-d')
      assert.equal(p.credentialsFile, join(d.dir, 'credentials.json'))
      assert.equal(p.caFile, join(d.dir, 'tls', 'cert.pem'))
      assert.equal(await httpsPing(p.url, await readFile(p.caFile!, 'utf8')), 200)
      assert.match(p.stderrTail(), /tenant settings: endpoint https:\/\/127\.0\.0\.1:\d+, uriPrefix \/a\/b_c-d/)
      assert.equal(await p.stop(), 0)
      // Without --uri-prefix the prefix is /xks, the one the docs use.
      const q = await startKeyProxyProcess({ dir: d.dir })
      assert.equal(q.uriPrefix, '/xks')
      assert.equal(await q.stop(), 0)
    } finally {
      await d.cleanup()
    }
  })

  test('serve exits 0 on SIGINT, and its stdout holds only the listening line', async () => {
    const d = await initKeyProxyDir()
    try {
      const child = spawn(process.execPath, [DOMICILE_BIN, 'keyproxy', 'serve', '--dir', d.dir, '--quiet', '--insecure-http'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
      let out = ''
      child.stdout.setEncoding('utf8').on('data', (s: string) => { out += s })
      const deadline = Date.now() + 20_000
      while (!out.includes('\n') && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 20))
      const { url, caFile } = JSON.parse(out.split('\n')[0]!) as { url: string; caFile: string | null }
      assert.match(url, /^http:\/\//)
      assert.equal(caFile, null)
      assert.equal((await fetch(`${url}/ping`)).status, 200)
      const code = await new Promise<number | null>((r) => { child.once('exit', (c) => r(c)); child.kill('SIGINT') })
      assert.equal(code, 0)
      assert.equal(out.trim().split('\n').length, 1)
      const creds = await readFile(join(d.dir, 'credentials.json'), 'utf8')
      const secret = (JSON.parse(creds) as { credentials: Array<{ secretAccessKey: string }> }).credentials[0]!.secretAccessKey
      assert.ok(!out.includes(secret))
    } finally {
      await d.cleanup()
    }
  })

  test('serve refuses to start without a TLS pair unless --insecure-http (exit 2, says what to do)', async () => {
    const d = await initKeyProxyDir()
    try {
      await rm(join(d.dir, 'tls'), { recursive: true })
      const r = await runKeyproxyCli(['serve', '--dir', d.dir])
      assert.equal(r.code, 2)
      assert.match(r.stderr, /ERR_CONFIG_INVALID/)
      assert.match(r.stderr, /--tls-cert/)
    } finally {
      await d.cleanup()
    }
  })

  test('serve refuses a directory without credentials (exit 2)', async () => {
    const d = await initKeyProxyDir()
    try {
      const r = await runKeyproxyCli(['serve', '--dir', join(d.dir, 'nothing-here')])
      assert.equal(r.code, 2)
      assert.match(r.stderr, /ERR_CONFIG_INVALID/)
    } finally {
      await d.cleanup()
    }
  })
})
