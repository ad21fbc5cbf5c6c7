/**
 * The `xks` key provider against the reference key proxy running as a real child process
 * (`node bin/domicile.mjs keyproxy serve`), with keys managed through the keyproxy CLI, also as
 * child processes. Outages are real too: a killed proxy, a closed port, a server that accepts and
 * never answers.
 */
import { after, before, describe, test } from 'node:test'
import { strict as assert } from 'node:assert'
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { createServer as createHttpServer } from 'node:http'
import { createServer, type Server, type Socket } from 'node:net'
import { DecryptionFailedError } from '../../src/errors.js'
import { createXksKeyProvider, type XksKeyProvider } from '../../src/keys/providers/xks/xks-key-provider.js'
import {
  createKeyViaCli,
  initKeyProxyDir,
  runKeyproxyCli,
  runKeyproxyCliOk,
  startKeyProxyProcess,
  type KeyProxyDir,
  type KeyProxyProcess,
} from '../support/keyproxy-process.js'
import { rejection, wrapContext } from '../support/provider-test-helpers.js'

const ctx = wrapContext

function allText(e: unknown): string {
  const parts: string[] = []
  for (let cur: unknown = e, d = 0; cur instanceof Error && d < 8; cur = cur.cause, d++) parts.push(cur.message, cur.stack ?? '')
  return parts.join('\n')
}

describe('xks provider against the keyproxy child process', () => {
  let dir: KeyProxyDir
  let proxy: KeyProxyProcess
  let xks: XksKeyProvider
  let keyId: string

  before(async () => {
    dir = await initKeyProxyDir()
    proxy = await startKeyProxyProcess({ dir: dir.dir, uriPrefix: '/xks' })
    keyId = await createKeyViaCli(dir.dir)
    // Generous deadline for the functional cases (2 cores, loaded CI); the deadline cases set their own.
    xks = createXksKeyProvider({ ...proxy.providerOptions, timeoutMs: 2000 })
  })

  after(async () => {
    await xks?.close()
    const code = await proxy?.stop()
    await dir?.cleanup()
    assert.equal(code, 0, 'keyproxy serve exits 0 on SIGTERM')
  })

  test('health answers per GetHealthStatus', async () => {
    const h = await xks.health()
    assert.equal(h.xksProxyVendor, 'Domicile')
    assert.equal(h.xksProxyFleetSize, 1)
    assert.equal(h.ekmFleetDetails[0]?.healthStatus, 'ACTIVE')
  })

  test('keyStatus of a new key is enabled', async () => {
    assert.deepEqual(await xks.keyStatus(keyId), { keyId, state: 'enabled' })
  })

  test('wrap then unwrap round-trips the data key; blob is the documented format', async () => {
    const key = randomBytes(32)
    const w = await xks.wrapKey({ keyId, plaintextKey: new Uint8Array(key), context: ctx() })
    assert.equal(w.keyId, keyId)
    const b = Buffer.from(w.ciphertext)
    assert.equal(b[0], 1, 'version')
    assert.equal(b[1], 12, 'iv length')
    assert.equal(b[14], 16, 'tag length')
    assert.equal(b[31], 0, 'ciphertext metadata length')
    assert.equal(b.length, 1 + 1 + 12 + 1 + 16 + 1 + 32)
    assert.ok(!b.includes(key), 'the blob does not contain the key')
    const back = await xks.unwrapKey({ keyId, ciphertext: w.ciphertext, context: ctx() })
    assert.deepEqual(Buffer.from(back), key)
  })

  test('unwrap under another context (tenant, region, data key id, purpose) is ERR_DECRYPTION_FAILED, opaque', async () => {
    const w = await xks.wrapKey({ keyId, plaintextKey: new Uint8Array(randomBytes(32)), context: ctx() })
    for (const other of [{ tenantId: 'globex' }, { region: 'us-east-1' }, { dataKeyId: 'dk-2' }, { purpose: 'index' as const }]) {
      const e = await rejection(xks.unwrapKey({ keyId, ciphertext: w.ciphertext, context: ctx(other) }))
      assert.equal(e.code, 'ERR_DECRYPTION_FAILED')
      assert.ok(e instanceof DecryptionFailedError)
      assert.equal(e.cause, undefined)
    }
  })

  test('a blob wrapped under one key does not unwrap under another key', async () => {
    const other = await createKeyViaCli(dir.dir)
    const w = await xks.wrapKey({ keyId, plaintextKey: new Uint8Array(randomBytes(32)), context: ctx() })
    const e = await rejection(xks.unwrapKey({ keyId: other, ciphertext: w.ciphertext, context: ctx() }))
    assert.equal(e.code, 'ERR_DECRYPTION_FAILED')
  })

  test('disable-key via the CLI -> the next unwrap and wrap are ERR_KEY_REVOKED; enable-key -> works again', async () => {
    const key = randomBytes(32)
    const w = await xks.wrapKey({ keyId, plaintextKey: new Uint8Array(key), context: ctx() })
    await runKeyproxyCliOk(['disable-key', keyId, '--dir', dir.dir])
    const status = JSON.parse(await runKeyproxyCliOk(['status', keyId, '--dir', dir.dir, '--json'])) as { state: string }
    assert.equal(status.state, 'disabled')

    const e1 = await rejection(xks.unwrapKey({ keyId, ciphertext: w.ciphertext, context: ctx() }))
    assert.equal(e1.code, 'ERR_KEY_REVOKED')
    assert.match(e1.message, /disabled/)
    const e2 = await rejection(xks.wrapKey({ keyId, plaintextKey: new Uint8Array(randomBytes(32)), context: ctx() }))
    assert.equal(e2.code, 'ERR_KEY_REVOKED')
    assert.deepEqual(await xks.keyStatus(keyId), { keyId, state: 'disabled' })

    await runKeyproxyCliOk(['enable-key', keyId, '--dir', dir.dir])
    const back = await xks.unwrapKey({ keyId, ciphertext: w.ciphertext, context: ctx() })
    assert.deepEqual(Buffer.from(back), key)
    assert.deepEqual(await xks.keyStatus(keyId), { keyId, state: 'enabled' })
  })

  test('unknown key id is ERR_KEY_NOT_FOUND for wrap, unwrap and keyStatus', async () => {
    const w = await xks.wrapKey({ keyId, plaintextKey: new Uint8Array(randomBytes(32)), context: ctx() })
    const missing = 'no-such-key-0123'
    assert.equal((await rejection(xks.wrapKey({ keyId: missing, plaintextKey: new Uint8Array(32), context: ctx() }))).code, 'ERR_KEY_NOT_FOUND')
    assert.equal((await rejection(xks.unwrapKey({ keyId: missing, ciphertext: w.ciphertext, context: ctx() }))).code, 'ERR_KEY_NOT_FOUND')
    assert.equal((await rejection(xks.keyStatus(missing))).code, 'ERR_KEY_NOT_FOUND')
  })

  test('Precondition: the key id is a valid XKS external key id.', async () => {
    for (const bad of ['', '../master', 'a/b', 'x'.repeat(129), 'key id']) {
      const e = await rejection(xks.wrapKey({ keyId: bad, plaintextKey: new Uint8Array(32), context: ctx() }))
      assert.equal(e.code, 'ERR_KEY_NOT_FOUND')
    }
  })

  test('bad credentials -> ERR_KEY_PROVIDER_UNAVAILABLE naming the host and operation, not the secret', async () => {
    const wrongSecret = createXksKeyProvider({
      ...proxy.providerOptions, timeoutMs: 2000,
      credentials: { accessKeyId: proxy.credentials.accessKeyId, secretAccessKey: randomBytes(32).toString('base64') },
    })
    const unknownId = createXksKeyProvider({
      ...proxy.providerOptions, timeoutMs: 2000,
      credentials: { accessKeyId: 'AAAAAAAAAAAAAAAAAAAAAAAAAA', secretAccessKey: proxy.credentials.secretAccessKey },
    })
    for (const p of [wrongSecret, unknownId]) {
      const key = randomBytes(32)
      const e = await rejection(p.wrapKey({ keyId, plaintextKey: new Uint8Array(key), context: ctx() }))
      assert.equal(e.code, 'ERR_KEY_PROVIDER_UNAVAILABLE')
      assert.match(e.message, /AuthenticationFailedException/)
      assert.ok(e.message.includes(new URL(proxy.url).host), 'names the proxy host')
      assert.match(e.message, /\(encrypt\)/)
      const text = allText(e)
      assert.ok(!text.includes(proxy.credentials.secretAccessKey), 'no secret in the error')
      assert.ok(!text.includes(key.toString('base64')) && !text.includes(key.toString('hex')), 'no key bytes in the error')
      assert.equal((await p.keyStatus(keyId)).state, 'unavailable')
    }
  })

  test('a wrong uriPrefix -> ERR_KEY_PROVIDER_UNAVAILABLE (InvalidUriPathException)', async () => {
    const p = createXksKeyProvider({ ...proxy.providerOptions, uriPrefix: '/other', timeoutMs: 2000 })
    const e = await rejection(p.wrapKey({ keyId, plaintextKey: new Uint8Array(32), context: ctx() }))
    assert.equal(e.code, 'ERR_KEY_PROVIDER_UNAVAILABLE')
    assert.match(e.message, /InvalidUriPathException/)
  })

  test('a caller signal that is already aborted -> ERR_KEY_PROVIDER_UNAVAILABLE without a request', async () => {
    const ac = new AbortController()
    ac.abort()
    const e = await rejection(xks.wrapKey({ keyId, plaintextKey: new Uint8Array(32), context: ctx() }, { signal: ac.signal }))
    assert.equal(e.code, 'ERR_KEY_PROVIDER_UNAVAILABLE')
  })

  test('the credentials file `keyproxy init` wrote is accepted as-is by credentialsFile', async () => {
    const p = createXksKeyProvider({ endpoint: proxy.url, uriPrefix: proxy.uriPrefix, caFile: proxy.caFile!, credentialsFile: proxy.credentialsFile, timeoutMs: 2000 })
    const key = randomBytes(32)
    const w = await p.wrapKey({ keyId, plaintextKey: new Uint8Array(key), context: ctx() })
    assert.deepEqual(Buffer.from(await p.unwrapKey({ keyId, ciphertext: w.ciphertext, context: ctx() })), key)
    await p.close()
  })

  test('requestMetadata carries well-formed ARNs, the defaults and configured ones', async () => {
    const p = createXksKeyProvider({ ...proxy.providerOptions, timeoutMs: 2000, region: 'eu-west-1',
      awsPrincipalArn: 'arn:aws:iam::123456789012:role/acme-app', kmsKeyArn: 'arn:aws:kms:eu-west-1:123456789012:key/{keyId}' })
    await p.keyStatus(keyId)
    await xks.keyStatus(keyId)
    await p.close()
    const events = proxy.stderrTail().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((e) => e['operation'] === 'metadata' && e['keyId'] === keyId)
    assert.ok(events.some((e) => e['awsPrincipalArn'] === 'arn:aws:iam::123456789012:role/acme-app' && e['kmsKeyArn'] === `arn:aws:kms:eu-west-1:123456789012:key/${keyId}`))
    assert.ok(events.some((e) => e['awsPrincipalArn'] === 'arn:aws:iam::000000000000:role/domicile' && e['kmsKeyArn'] === `arn:aws:kms:us-east-1:000000000000:key/${keyId}`))
  })

  test('Precondition: the external key is AES_256 and allowed to ENCRYPT and DECRYPT.', async () => {
    for (const extra of [['--usage', 'encrypt'], ['--usage', 'decrypt'], ['--usage', 'none'], ['--spec', 'AES_128']]) {
      const id = await createKeyViaCli(dir.dir, extra)
      const e = await rejection(xks.keyStatus(id))
      assert.equal(e.code, 'ERR_KEY_INVALID', extra.join(' '))
      assert.match(e.message, /AES_256 key allowed to ENCRYPT and DECRYPT/)
    }
    // The proxy's InvalidKeyUsageException on wrap/unwrap is the same error, not an outage.
    const decOnly = await createKeyViaCli(dir.dir, ['--usage', 'decrypt'])
    assert.equal((await rejection(xks.wrapKey({ keyId: decOnly, plaintextKey: new Uint8Array(32), context: ctx() }))).code, 'ERR_KEY_INVALID')
    const encOnly = await createKeyViaCli(dir.dir, ['--usage', 'encrypt'])
    // wrapKey asks for a CDIV, which needs DECRYPT too: refused before anything is encrypted.
    assert.equal((await rejection(xks.wrapKey({ keyId: encOnly, plaintextKey: new Uint8Array(32), context: ctx() }))).code, 'ERR_KEY_INVALID')
  })

  test('round-trip latency over a warm connection (diagnostic only, not asserted)', async (t) => {
    const fast = createXksKeyProvider({ ...proxy.providerOptions, timeoutMs: 2000 })
    const w = await fast.wrapKey({ keyId, plaintextKey: new Uint8Array(randomBytes(32)), context: ctx() })
    const times: number[] = []
    for (let i = 0; i < 30; i++) {
      const t0 = performance.now()
      await fast.unwrapKey({ keyId, ciphertext: w.ciphertext, context: ctx() })
      times.push(performance.now() - t0)
    }
    times.sort((a, b) => a - b)
    t.diagnostic(`xks unwrap round trip via keyproxy child process: p50 ${times[15]!.toFixed(2)} ms, max ${times[29]!.toFixed(2)} ms`)
  })
})

describe('SigV4 credential rotation without restarting the proxy', () => {
  test('rotate-credentials: the serving proxy accepts the new credential at once, the file-based client switches to it, retire refuses the old', async () => {
    const dir = await initKeyProxyDir()
    const proxy = await startKeyProxyProcess({ dir: dir.dir })
    try {
      const keyId = await createKeyViaCli(dir.dir)
      const old = createXksKeyProvider({ ...proxy.providerOptions, timeoutMs: 2000 })
      const fromFile = createXksKeyProvider({ endpoint: proxy.url, uriPrefix: proxy.uriPrefix, caFile: proxy.caFile!, credentialsFile: proxy.credentialsFile, timeoutMs: 2000 })
      assert.equal((await fromFile.keyStatus(keyId)).state, 'enabled')
      const added = JSON.parse(await runKeyproxyCliOk(['rotate-credentials', '--dir', dir.dir, '--json'])) as { accessKeyId: string; active: string[] }
      assert.deepEqual(added.active, [proxy.credentials.accessKeyId, added.accessKeyId])
      const doc = JSON.parse(await readFile(proxy.credentialsFile, 'utf8')) as { credentials: Array<{ accessKeyId: string; secretAccessKey: string }> }
      const fresh = createXksKeyProvider({ ...proxy.providerOptions, credentials: doc.credentials[1]!, timeoutMs: 2000 })
      // The proxy reloads on the file change: poll its answer (no fixed sleep), bounded at 5 s.
      const deadline = Date.now() + 5000
      while ((await fresh.keyStatus(keyId)).state !== 'enabled') {
        assert.ok(Date.now() < deadline, `the proxy did not pick up the new credential: ${proxy.stderrTail()}`)
        await new Promise((r) => setTimeout(r, 50))
      }
      assert.match(proxy.stderrTail(), /"event":"credentials-reloaded","trigger":"file-change"/)
      assert.equal((await old.keyStatus(keyId)).state, 'enabled', 'the old credential stays valid until retired')
      // The client reading the file signs with the newest credential once it notices the change (checked at most once a second).
      await new Promise((r) => setTimeout(r, 1100))
      const metadataLines = () => proxy.stderrTail().split('\n').filter((l) => l.includes('"operation":"metadata"')).map((l) => JSON.parse(l) as { accessKeyId?: string })
      const before = metadataLines().length
      await fromFile.keyStatus(keyId)
      // The proxy logs after it answers: wait for the line.
      const logDeadline = Date.now() + 5000
      while (metadataLines().length === before) {
        assert.ok(Date.now() < logDeadline, 'the request was not logged')
        await new Promise((r) => setTimeout(r, 10))
      }
      assert.equal(metadataLines().at(-1)?.accessKeyId, added.accessKeyId)
      await runKeyproxyCliOk(['rotate-credentials', '--dir', dir.dir, '--retire', proxy.credentials.accessKeyId])
      const until = Date.now() + 5000
      while ((await old.keyStatus(keyId)).state !== 'unavailable') {
        assert.ok(Date.now() < until, 'the retired credential is still accepted')
        await new Promise((r) => setTimeout(r, 50))
      }
      assert.match((await rejection(old.wrapKey({ keyId, plaintextKey: new Uint8Array(32), context: ctx() }))).message, /AuthenticationFailedException/)
      assert.equal((await fromFile.keyStatus(keyId)).state, 'enabled')
      // SIGHUP also reloads (for file systems without change notification).
      proxy.child.kill('SIGHUP')
      const hup = Date.now() + 5000
      while (!/"trigger":"SIGHUP"/.test(proxy.stderrTail())) {
        assert.ok(Date.now() < hup, 'no reload on SIGHUP')
        await new Promise((r) => setTimeout(r, 20))
      }
      // The last credential cannot be retired.
      const last = await runKeyproxyCli(['rotate-credentials', '--dir', dir.dir, '--retire', added.accessKeyId])
      assert.equal(last.code, 2)
      for (const p of [old, fromFile, fresh]) await p.close()
    } finally {
      assert.equal(await proxy.stop(), 0)
      await dir.cleanup()
    }
  })
})

describe('xks provider outages', () => {
  test('proxy process killed -> ERR_KEY_PROVIDER_UNAVAILABLE within the deadline', async () => {
    const dir = await initKeyProxyDir()
    try {
      const proxy = await startKeyProxyProcess({ dir: dir.dir })
      const keyId = await createKeyViaCli(dir.dir)
      const xks = createXksKeyProvider({ ...proxy.providerOptions, timeoutMs: 250 })
      // Warm up with a generous deadline so the keep-alive connection exists.
      const warm = createXksKeyProvider({ ...proxy.providerOptions, timeoutMs: 2000 })
      const w = await warm.wrapKey({ keyId, plaintextKey: new Uint8Array(randomBytes(32)), context: ctx() })
      await warm.unwrapKey({ keyId, ciphertext: w.ciphertext, context: ctx() })
      await proxy.kill()
      const t0 = performance.now()
      const e = await rejection(xks.unwrapKey({ keyId, ciphertext: w.ciphertext, context: ctx() }))
      const ms = performance.now() - t0
      assert.equal(e.code, 'ERR_KEY_PROVIDER_UNAVAILABLE')
      assert.ok(e.message.includes(new URL(proxy.url).host))
      assert.ok(ms < 1500, `took ${ms.toFixed(0)} ms`)
      // keyStatus reports the outage as a state; and with no connection to reuse the call is refused.
      assert.deepEqual(await xks.keyStatus(keyId), { keyId, state: 'unavailable' })
      const e3 = await rejection(warm.wrapKey({ keyId, plaintextKey: new Uint8Array(32), context: ctx() }))
      assert.equal(e3.code, 'ERR_KEY_PROVIDER_UNAVAILABLE')
      assert.match(e3.message, /could not be reached/)
    } finally {
      await dir.cleanup()
    }
  })

  test('a hung server (accepts, never answers) -> ERR_KEY_PROVIDER_UNAVAILABLE after ~250 ms', async () => {
    const sockets = new Set<Socket>()
    const server: Server = createServer((s) => {
      sockets.add(s)
      s.on('error', () => undefined)
      s.resume() // read the request, never answer
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
    try {
      const port = (server.address() as { port: number }).port
      const xks = createXksKeyProvider({
        endpoint: `http://127.0.0.1:${port}`,
        allowInsecureHttp: true,
        credentials: { accessKeyId: 'AAAAAAAAAAAAAAAAAAAAAAAAAA', secretAccessKey: 'secret' },
      })
      const t0 = performance.now()
      const e = await rejection(xks.wrapKey({ keyId: 'k1', plaintextKey: new Uint8Array(32), context: ctx() }))
      const ms = performance.now() - t0
      assert.equal(e.code, 'ERR_KEY_PROVIDER_UNAVAILABLE')
      assert.match(e.message, /did not answer within 250 ms/)
      assert.ok(ms >= 200 && ms <= 1500, `returned after ${ms.toFixed(0)} ms`)
      assert.ok(sockets.size >= 1, 'the request did reach the server')
    } finally {
      for (const s of sockets) s.destroy()
      await new Promise<void>((r) => server.close(() => r()))
    }
  })

  test('Precondition: the health response has the fields and ranges the spec requires.', async () => {
    // A proxy that answers 200 with out-of-spec health bodies (what no real proxy here does, so a small HTTP server).
    const answers = [
      { xksProxyFleetSize: 0, xksProxyVendor: 'V', xksProxyModel: 'M', ekmVendor: 'E', ekmFleetDetails: [{ id: 'a', model: 'm', healthStatus: 'ACTIVE' }] },
      { xksProxyFleetSize: 1, xksProxyVendor: 'V', xksProxyModel: 'M', ekmVendor: 'E', ekmFleetDetails: [] },
      { xksProxyFleetSize: 1, xksProxyVendor: 'V', xksProxyModel: 'M', ekmVendor: 'E', ekmFleetDetails: [{ id: 'a', model: 'm', healthStatus: 'FINE' }] },
      { xksProxyFleetSize: 1, xksProxyVendor: 'V', xksProxyModel: 'M', ekmVendor: 'E', ekmFleetDetails: [{ id: 'a', model: 'm', healthStatus: 'UNAVAILABLE' }] },
    ]
    let next = 0
    const server = createHttpServer((req, res) => {
      req.resume()
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answers[next++])))
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
    try {
      const port = (server.address() as { port: number }).port
      const xks = createXksKeyProvider({ endpoint: `http://127.0.0.1:${port}`, allowInsecureHttp: true, credentials: { accessKeyId: 'A', secretAccessKey: 'B' }, timeoutMs: 2000 })
      for (const want of [/xksProxyFleetSize/, /ekmFleetDetails/, /healthStatus/, /every external key manager UNAVAILABLE/]) {
        const e = await rejection(xks.health())
        assert.equal(e.code, 'ERR_KEY_PROVIDER_UNAVAILABLE')
        assert.match(e.message, want)
      }
      await xks.close()
    } finally {
      server.closeAllConnections()
      await new Promise<void>((r) => server.close(() => r()))
    }
  })

  test('a closed port -> ERR_KEY_PROVIDER_UNAVAILABLE quickly', async () => {
    const server = createServer()
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
    const port = (server.address() as { port: number }).port
    await new Promise<void>((r) => server.close(() => r()))
    const xks = createXksKeyProvider({ endpoint: `http://127.0.0.1:${port}`, allowInsecureHttp: true, credentials: { accessKeyId: 'A', secretAccessKey: 'B' } })
    const e = await rejection(xks.unwrapKey({ keyId: 'k1', ciphertext: new Uint8Array([1, 12, ...new Uint8Array(12), 16, ...new Uint8Array(16), 0, 1, 2]), context: ctx() }))
    assert.equal(e.code, 'ERR_KEY_PROVIDER_UNAVAILABLE')
    assert.match(e.message, /ECONNREFUSED/)
  })

  test('CLI: disable-key of an unknown key exits 1 with ERR_KEY_NOT_FOUND', async () => {
    const dir = await initKeyProxyDir()
    try {
      const r = await runKeyproxyCli(['disable-key', 'nope', '--dir', dir.dir])
      assert.equal(r.code, 1)
      assert.match(r.stderr, /ERR_KEY_NOT_FOUND/)
    } finally {
      await dir.cleanup()
    }
  })
})
