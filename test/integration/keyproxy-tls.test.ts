/**
 * The reference key proxy's transport: HTTPS with TLS 1.2 or later (the XKS spec's MUST), optional
 * mutual TLS (client CA and subject CN), plain HTTP only when asked for; and the `xks` client's side
 * of it (caFile trust, client certificates, refusal of http:// endpoints). Real TLS on 127.0.0.1
 * with certificates issued by src/keyproxy/tls-certificate.ts, checked by node's and OpenSSL's own
 * verifiers.
 */
import { after, before, describe, test } from 'node:test'
import { strict as assert } from 'node:assert'
import { generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer as createTlsServer, connect, type ConnectionOptions, type TLSSocket } from 'node:tls'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isDomicileError } from '../../src/errors.js'
import { FileKeystore } from '../../src/keyproxy/file-keystore.js'
import { generateCredential } from '../../src/keyproxy/keyproxy-credentials.js'
import { startKeyProxy, type KeyProxyHandle } from '../../src/keyproxy/keyproxy-server.js'
import { createSelfSignedPair, issueCertificate } from '../../src/keyproxy/tls-certificate.js'
import { createXksKeyProvider } from '../../src/keys/providers/xks/xks-key-provider.js'
import { rejection } from '../support/provider-test-helpers.js'

interface Ca { cert: string; key: KeyObject; name: string }

function makeCa(name: string): Ca {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  return { cert: issueCertificate({ commonName: name, publicKey, signingKey: privateKey, isCa: true, usage: [] }), key: privateKey, name }
}

function clientCert(ca: Ca, cn: string): { cert: string; key: string } {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const cert = issueCertificate({ commonName: cn, publicKey, signingKey: ca.key, issuerCommonName: ca.name, usage: ['client'] })
  return { cert, key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string }
}

/** Opens a TLS connection and resolves with the negotiated protocol, or the error that ended it. */
function handshake(port: number, opts: ConnectionOptions): Promise<{ protocol: string | null } | { error: string }> {
  return new Promise((resolve) => {
    const s: TLSSocket = connect({ host: '127.0.0.1', port, servername: 'localhost', ...opts }, () => {
      // With TLS 1.3 a refused client certificate arrives after the handshake: wait for a read.
      s.write('GET /ping HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n')
    })
    let data = ''
    s.setEncoding('utf8').on('data', (d: string) => { data += d })
    s.on('end', () => resolve(data.startsWith('HTTP/1.1 200') ? { protocol: s.getProtocol() } : { error: `no answer: ${data.slice(0, 40)}` }))
    s.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }))
  })
}

describe('keyproxy TLS', () => {
  let parent: string
  let ks: FileKeystore
  let keyId: string
  const cred = generateCredential()
  const pair = createSelfSignedPair()
  let caFile: string
  const proxies: KeyProxyHandle[] = []

  before(async () => {
    parent = await mkdtemp(join(tmpdir(), 'domicile-keyproxy-tls-'))
    await FileKeystore.initialize(join(parent, 'd'))
    ks = new FileKeystore(join(parent, 'd'))
    keyId = await ks.createKey()
    caFile = join(parent, 'proxy-cert.pem')
    await writeFile(caFile, pair.cert)
  })
  after(async () => {
    for (const p of proxies) await p.close()
    await ks?.close()
    await rm(parent, { recursive: true, force: true })
  })

  async function serve(extra: Partial<Parameters<typeof startKeyProxy>[0]> = {}): Promise<KeyProxyHandle> {
    const p = await startKeyProxy({ uriPrefix: '/xks', credentials: [cred], keystore: ks, tls: { cert: pair.cert, key: pair.key }, ...extra })
    proxies.push(p)
    return p
  }

  test('the self-signed certificate names the loopback hosts and verifies under its own key', () => {
    const x = new X509Certificate(pair.cert)
    assert.ok(x.verify(x.publicKey))
    assert.equal(x.checkHost('localhost'), 'localhost')
    assert.equal(x.checkIP('127.0.0.1'), '127.0.0.1')
    assert.equal(x.checkIP('::1'), '::1')
    assert.equal(x.checkHost('example.com'), undefined)
    assert.ok(new Date(x.validTo).getTime() > Date.now() + 365 * 86_400_000)
  })

  test('Precondition: HTTPS with a certificate and key, or plain HTTP asked for explicitly.', async () => {
    await assert.rejects(startKeyProxy({ credentials: [cred], keystore: ks }), (e: unknown) => isDomicileError(e, 'ERR_CONFIG_INVALID'))
    await assert.rejects(startKeyProxy({ credentials: [cred], keystore: ks, insecureHttp: true, tls: { cert: pair.cert, key: pair.key } }), (e: unknown) => isDomicileError(e, 'ERR_CONFIG_INVALID'))
    const p = await serve()
    assert.match(p.url, /^https:\/\/127\.0\.0\.1:\d+$/)
  })

  test('TLS 1.2 or later: a TLS 1.1 client is refused (and the same client can talk TLS 1.1 to a server that allows it)', async () => {
    const p = await serve()
    const port = Number(new URL(p.url).port)
    const old = { ca: pair.cert, minVersion: 'TLSv1' as const, maxVersion: 'TLSv1.1' as const, ciphers: 'DEFAULT@SECLEVEL=0' }
    const refused = await handshake(port, old)
    assert.ok('error' in refused, 'TLS 1.1 handshake refused')
    // Control: this machine's client can speak TLS 1.1 at all (else the refusal above proves nothing about the proxy).
    const legacy = createTlsServer({ cert: pair.cert, key: pair.key, minVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0' }, (s) => {
      s.on('data', () => s.end('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n'))
      s.on('error', () => undefined)
    })
    await new Promise<void>((r) => legacy.listen(0, '127.0.0.1', () => r()))
    const control = await handshake((legacy.address() as { port: number }).port, old)
    legacy.close()
    if ('error' in control) {
      // The local OpenSSL refuses TLS 1.1 outright: then only check what the proxy negotiates.
      const modern = await handshake(port, { ca: pair.cert })
      assert.ok('protocol' in modern && (modern.protocol === 'TLSv1.3' || modern.protocol === 'TLSv1.2'))
    } else {
      assert.equal((control as { protocol: string }).protocol, 'TLSv1.1')
    }
    const v12 = await handshake(port, { ca: pair.cert, maxVersion: 'TLSv1.2' })
    assert.deepEqual(v12, { protocol: 'TLSv1.2' })
  })

  test('the xks client trusts the proxy through caFile; without it the TLS failure says what to do', async () => {
    const p = await serve()
    const ok = createXksKeyProvider({ endpoint: p.url, uriPrefix: '/xks', credentials: cred, caFile, timeoutMs: 2000 })
    assert.equal((await ok.health()).xksProxyVendor, 'Domicile')
    assert.deepEqual(await ok.keyStatus(keyId), { keyId, state: 'enabled' })
    await ok.close()
    const untrusted = createXksKeyProvider({ endpoint: p.url, uriPrefix: '/xks', credentials: cred, timeoutMs: 2000 })
    const e = await rejection(untrusted.health())
    assert.equal(e.code, 'ERR_KEY_PROVIDER_UNAVAILABLE')
    assert.match(e.message, /caFile/)
    assert.match(e.message, /SELF_SIGNED/)
    await untrusted.close()
    // The certificate names localhost and 127.0.0.1, not another host.
    const wrongName = createXksKeyProvider({ endpoint: p.url.replace('127.0.0.1', 'localhost'), uriPrefix: '/xks', credentials: cred, caFile, timeoutMs: 2000 })
    assert.equal((await wrongName.health()).xksProxyFleetSize, 1)
    await wrongName.close()
  })

  test('mutual TLS: a client certificate from the configured CA with the configured CN is required', async () => {
    const ca = makeCa('tenant-ca')
    const otherCa = makeCa('other-ca')
    const p = await serve({ tls: { cert: pair.cert, key: pair.key, clientCa: ca.cert, clientCommonName: 'domicile-acme' } })
    const good = clientCert(ca, 'domicile-acme')
    const wrongCn = clientCert(ca, 'someone-else')
    const wrongCa = clientCert(otherCa, 'domicile-acme')
    const client = (c?: { cert: string; key: string }) => createXksKeyProvider({
      endpoint: p.url, uriPrefix: '/xks', credentials: cred, ca: pair.cert, timeoutMs: 2000, ...(c ? { clientCert: c.cert, clientKey: c.key } : {}),
    })
    const ok = client(good)
    assert.equal((await ok.health()).xksProxyFleetSize, 1)
    await ok.close()
    for (const [what, c] of [['no client certificate', undefined], ['another CN', wrongCn], ['another CA', wrongCa]] as const) {
      const bad = client(c)
      const e = await rejection(bad.health())
      assert.equal(e.code, 'ERR_KEY_PROVIDER_UNAVAILABLE', what)
      await bad.close()
    }
  })

  test('Precondition: the endpoint is https, unless allowInsecureHttp is set.', async () => {
    assert.throws(() => createXksKeyProvider({ endpoint: 'http://127.0.0.1:8080', credentials: cred }), (e: unknown) => isDomicileError(e, 'ERR_CONFIG_INVALID') && e.path === 'endpoint')
    const p = await startKeyProxy({ uriPrefix: '/xks', credentials: [cred], keystore: ks, insecureHttp: true })
    proxies.push(p)
    assert.match(p.url, /^http:\/\//)
    const dev = createXksKeyProvider({ endpoint: p.url, uriPrefix: '/xks', credentials: cred, allowInsecureHttp: true, timeoutMs: 2000 })
    assert.equal((await dev.health()).xksProxyFleetSize, 1)
    await dev.close()
  })
})
