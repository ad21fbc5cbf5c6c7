/**
 * `domicile keyproxy ...`: set up and run the reference HYOK key proxy, and manage its keys.
 *
 *   init               --dir DIR [--tls-name NAME ...] [--json]
 *   serve              --dir DIR [--host 127.0.0.1] [--port 0] [--uri-prefix /xks] [--quiet]
 *                      [--tls-cert FILE --tls-key FILE] [--client-ca FILE [--client-cn CN]] [--insecure-http] [PKCS#11]
 *   create-key         --dir DIR [--label TEXT] [--usage encrypt,decrypt] [--spec AES_256] [--json] [PKCS#11]
 *   disable-key KEYID  --dir DIR [--json] [PKCS#11]
 *   enable-key  KEYID  --dir DIR [--json] [PKCS#11]
 *   status      KEYID  --dir DIR [--json] [PKCS#11]
 *   rotate-credentials --dir DIR [--retire ACCESS_KEY_ID] [--json]
 *   PKCS#11 = --pkcs11-lib PATH --token LABEL --pin-env VAR (keys live in the token, not in DIR)
 *
 * `serve` speaks HTTPS (TLS 1.2+) with the pair `init` generated (DIR/tls/cert.pem, DIR/tls/key.pem)
 * unless --tls-cert/--tls-key name another; plain HTTP only with --insecure-http. It re-reads
 * DIR/credentials.json when the file changes and on SIGHUP, so credentials rotate without a restart.
 *
 * Secrets are never printed: `init` prints the access key id and the paths a tenant needs
 * (credentials file, CA certificate). Bad arguments print a message and exit 2.
 */
import { watch, type FSWatcher } from 'node:fs'
import { mkdir, readFile } from 'node:fs/promises'
import { X509Certificate } from 'node:crypto'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { DomicileError } from '../errors.js'
import { FileKeystore, writeFileAtomic } from './file-keystore.js'
import { addCredential, createCredentialsFile, credentialsPath, CREDENTIALS_FILE, readCredentialsFile, retireCredential } from './keyproxy-credentials.js'
import { startKeyProxy, type KeyProxyHandle } from './keyproxy-server.js'
import { FULL_USAGE, PROXY_KEY_SPECS, type ProxyKeySpec, type ProxyKeystore, type ProxyKeyUsage } from './proxy-keystore.js'
import { createSelfSignedPair, DEFAULT_TLS_NAMES } from './tls-certificate.js'

/** The URI prefix `serve` uses unless --uri-prefix says otherwise (the docs and examples use it too). */
export const DEFAULT_URI_PREFIX = '/xks'

const USAGE = `Usage: domicile keyproxy <command> [options]

Commands:
  init        --dir DIR [--tls-name NAME ...] [--json]
                          create DIR: master key, SigV4 credentials (DIR/credentials.json) and a
                          self-signed TLS pair (DIR/tls/cert.pem, DIR/tls/key.pem) for NAMEs
                          (default: localhost 127.0.0.1 ::1)
  serve       --dir DIR [--host H] [--port P] [--uri-prefix /xks] [--quiet]
              [--tls-cert FILE --tls-key FILE] [--client-ca FILE [--client-cn CN]] [--insecure-http]
                          run the XKS proxy over HTTPS (TLS 1.2+); prints one JSON line once listening:
                          {"url","uriPrefix","credentialsFile","caFile"}. --client-ca requires client
                          certificates (mutual TLS). Re-reads credentials.json on change and on SIGHUP.
  create-key  --dir DIR [--label TEXT] [--usage encrypt,decrypt|encrypt|decrypt|none] [--spec AES_256|AES_128] [--json]
                          create a key (default AES_256, encrypt and decrypt); prints its id
  disable-key KEYID --dir DIR [--json]           disable a key (the next request is refused)
  enable-key  KEYID --dir DIR [--json]           enable a key again
  status      KEYID --dir DIR [--json]           print a key's state
  rotate-credentials --dir DIR [--retire ACCESS_KEY_ID] [--json]
                          add a new SigV4 credential (the old ones stay valid), or retire one

Keys in a PKCS#11 token instead of DIR (serve and the key commands):
  --pkcs11-lib PATH --token LABEL --pin-env VAR  (the PIN is read from environment variable VAR)
`

class UsageError extends Error {}

const COMMON = {
  dir: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  'pkcs11-lib': { type: 'string' },
  token: { type: 'string' },
  'pin-env': { type: 'string' },
} as const

type Values = Record<string, string | boolean | string[] | undefined>

function parse(args: string[], extra: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }>, positionals: number): { values: Values; positionals: string[] } {
  let r
  try {
    r = parseArgs({ args, options: { ...COMMON, ...extra }, allowPositionals: true, strict: true })
  } catch (e) {
    throw new UsageError((e as Error).message)
  }
  if (r.values.help !== true && r.positionals.length !== positionals) {
    throw new UsageError(positionals === 1 ? 'expected exactly one KEYID argument' : `unexpected argument ${JSON.stringify(r.positionals[0])}`)
  }
  if (r.values.help !== true && (typeof r.values.dir !== 'string' || r.values.dir === '')) throw new UsageError('--dir DIR is required')
  return { values: r.values as Values, positionals: r.positionals }
}

async function openKeystore(v: Values): Promise<ProxyKeystore> {
  const lib = v['pkcs11-lib']
  const token = v['token']
  const pinEnv = v['pin-env']
  if (lib === undefined && token === undefined && pinEnv === undefined) return new FileKeystore(v['dir'] as string)
  if (typeof lib !== 'string' || typeof token !== 'string' || typeof pinEnv !== 'string') {
    throw new UsageError('--pkcs11-lib, --token and --pin-env go together')
  }
  const pin = process.env[pinEnv]
  if (pin === undefined || pin === '') throw new UsageError(`environment variable ${pinEnv} (named by --pin-env) is not set`)
  const { Pkcs11Keystore } = await import('./pkcs11-keystore.js')
  return Pkcs11Keystore.open({ library: lib, tokenLabel: token, pin })
}

function out(line: string): void {
  process.stdout.write(line + '\n')
}

async function withKeystore<T>(v: Values, fn: (ks: ProxyKeystore) => Promise<T>): Promise<T> {
  const ks = await openKeystore(v)
  try {
    return await fn(ks)
  } finally {
    await ks.close?.()
  }
}

function tlsPaths(dir: string): { cert: string; key: string } {
  return { cert: join(dir, 'tls', 'cert.pem'), key: join(dir, 'tls', 'key.pem') }
}

async function cmdInit(args: string[]): Promise<number> {
  const { values } = parse(args, { 'tls-name': { type: 'string', multiple: true } }, 0)
  if (values['help'] === true) return help()
  // Absolute paths in what is printed: they go into another program's config as they are.
  const dir = resolve(values['dir'] as string)
  const names = (values['tls-name'] as string[] | undefined) ?? [...DEFAULT_TLS_NAMES]
  /* Precondition: TLS names are host names or IP addresses. */
  for (const n of names) {
    if (!/^[A-Za-z0-9.:-]{1,253}$/.test(n)) throw new UsageError('--tls-name must be a host name or an IP address')
  }
  await FileKeystore.initialize(dir)
  const { accessKeyId, credentialsFile } = await createCredentialsFile(dir)
  const tls = tlsPaths(dir)
  const pair = createSelfSignedPair(names)
  await mkdir(join(dir, 'tls'), { recursive: true, mode: 0o700 })
  await writeFileAtomic(tls.key, pair.key)
  await writeFileAtomic(tls.cert, pair.cert)
  if (values['json'] === true) out(JSON.stringify({ accessKeyId, credentialsFile, caFile: tls.cert, tlsCert: tls.cert, tlsKey: tls.key }))
  else {
    out(accessKeyId)
    process.stderr.write([
      `keyproxy: initialized ${dir}`,
      `  SigV4 credentials (secret, mode 0600): ${credentialsFile}`,
      `  TLS certificate (self-signed for ${names.join(', ')}): ${tls.cert}`,
      `  TLS private key (mode 0600): ${tls.key}`,
      `Next: domicile keyproxy create-key --dir ${dir}; domicile keyproxy serve --dir ${dir} --port 8443`,
      `A tenant's xks provider needs: endpoint https://HOST:PORT, uriPrefix ${DEFAULT_URI_PREFIX},`,
      `  credentialsFile ${credentialsFile}, caFile ${tls.cert}`,
      '',
    ].join('\n'))
  }
  return 0
}

async function readPemFile(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8')
  } catch (e) {
    if ((e as { code?: unknown })?.code === 'ENOENT') throw new DomicileError('ERR_CONFIG_INVALID', `No ${what} at ${file}. Run "domicile keyproxy init --dir DIR", pass --tls-cert/--tls-key, or use --insecure-http for development.`)
    throw e
  }
}

/** True for a certificate that signed itself: a tenant must trust exactly this file. */
function isSelfSigned(pem: string): boolean {
  try {
    const x = new X509Certificate(pem)
    return x.issuer === x.subject && x.verify(x.publicKey)
  } catch {
    return false
  }
}

/**
 * Keeps a serving proxy's credentials in step with DIR/credentials.json: reloads when the file
 * changes (a rename into place, as every writer here does) and on SIGHUP. A file that does not
 * parse leaves the current credentials in force and logs why.
 */
function followCredentials(dir: string, handle: KeyProxyHandle, note: (event: Record<string, unknown>) => void): () => void {
  let timer: NodeJS.Timeout | undefined
  const reload = (trigger: string): void => {
    readCredentialsFile(dir).then((list) => {
      handle.setCredentials(list)
      note({ event: 'credentials-reloaded', trigger, active: list.length })
    }, (e: unknown) => {
      note({ event: 'credentials-reload-failed', trigger, code: (e as { code?: unknown })?.code ?? 'unknown' })
    })
  }
  const soon = (): void => {
    clearTimeout(timer)
    timer = setTimeout(() => reload('file-change'), 50)
  }
  let watcher: FSWatcher | undefined
  try {
    watcher = watch(dir, (_type, file) => {
      if (file === CREDENTIALS_FILE) soon()
    })
    watcher.on('error', () => undefined)
  } catch {
    watcher = undefined // no file watching here: SIGHUP still works
  }
  const onHup = (): void => reload('SIGHUP')
  process.on('SIGHUP', onHup)
  return () => {
    clearTimeout(timer)
    watcher?.close()
    process.off('SIGHUP', onHup)
  }
}

async function cmdServe(args: string[]): Promise<number> {
  const { values } = parse(args, {
    host: { type: 'string' }, port: { type: 'string' }, 'uri-prefix': { type: 'string' }, quiet: { type: 'boolean' },
    'tls-cert': { type: 'string' }, 'tls-key': { type: 'string' }, 'client-ca': { type: 'string' }, 'client-cn': { type: 'string' },
    'insecure-http': { type: 'boolean' },
  }, 0)
  if (values['help'] === true) return help()
  const portText = (values['port'] as string | undefined) ?? '0'
  const port = Number(portText)
  if (!/^\d+$/.test(portText) || port > 65535) throw new UsageError('--port must be an integer from 0 to 65535')
  const dir = resolve(values['dir'] as string)
  const insecure = values['insecure-http'] === true
  const certArg = values['tls-cert'] as string | undefined
  const keyArg = values['tls-key'] as string | undefined
  const clientCaFile = values['client-ca'] as string | undefined
  const clientCn = values['client-cn'] as string | undefined
  if ((certArg === undefined) !== (keyArg === undefined)) throw new UsageError('--tls-cert and --tls-key go together')
  if (insecure && (certArg !== undefined || clientCaFile !== undefined)) throw new UsageError('--insecure-http serves plain HTTP: it takes no --tls-cert, --tls-key or --client-ca')
  if (clientCn !== undefined && clientCaFile === undefined) throw new UsageError('--client-cn needs --client-ca')
  const credentials = await readCredentialsFile(dir)
  const certFile = resolve(certArg ?? tlsPaths(dir).cert)
  let tls
  if (!insecure) {
    const cert = await readPemFile(certFile, 'TLS certificate')
    const key = await readPemFile(keyArg ?? tlsPaths(dir).key, 'TLS private key')
    const clientCa = clientCaFile === undefined ? undefined : await readPemFile(clientCaFile, 'client CA certificate')
    tls = { cert, key, ...(clientCa !== undefined ? { clientCa } : {}), ...(clientCn !== undefined ? { clientCommonName: clientCn } : {}) }
  }
  const keystore = await openKeystore(values)
  const quiet = values['quiet'] === true
  const note = (e: Record<string, unknown>): void => {
    if (!quiet) process.stderr.write(JSON.stringify({ time: new Date().toISOString(), ...e }) + '\n')
  }
  let handle
  try {
    handle = await startKeyProxy({
      host: (values['host'] as string | undefined) ?? '127.0.0.1',
      port,
      uriPrefix: (values['uri-prefix'] as string | undefined) ?? DEFAULT_URI_PREFIX,
      credentials,
      keystore,
      ...(tls !== undefined ? { tls } : { insecureHttp: true }),
      ...(quiet ? {} : { log: (e) => process.stderr.write(JSON.stringify(e) + '\n') }),
    })
  } catch (e) {
    await keystore.close?.()
    throw e
  }
  const caFile = tls !== undefined && isSelfSigned(tls.cert) ? certFile : null
  // Listen for SIGTERM/SIGINT before announcing readiness: a supervisor may stop us as soon as it
  // reads the line, and a signal before the handler exists would kill the process uncleanly.
  const stopped = new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGTERM', stop)
      process.off('SIGINT', stop)
      resolve()
    }
    process.on('SIGTERM', stop)
    process.on('SIGINT', stop)
  })
  out(JSON.stringify({ url: handle.url, uriPrefix: handle.uriPrefix, credentialsFile: credentialsPath(dir), caFile }))
  if (!quiet) {
    process.stderr.write(`keyproxy: serving XKS API v1 at ${handle.url}${handle.uriPrefix}/kms/xks/v1 (${tls !== undefined ? 'HTTPS, TLS 1.2+' + (tls.clientCa !== undefined ? ', client certificates required' : '') : 'plain HTTP: development only'})\n`)
    process.stderr.write(`keyproxy: tenant settings: endpoint ${handle.url}, uriPrefix ${handle.uriPrefix}, credentialsFile ${credentialsPath(dir)}${caFile !== null ? `, caFile ${caFile}` : ''}\n`)
  }
  const unfollow = followCredentials(dir, handle, note)
  await stopped
  unfollow()
  await handle.close()
  await keystore.close?.()
  return 0
}

function parseUsage(text: string | undefined): ProxyKeyUsage[] | undefined {
  if (text === undefined) return undefined
  if (text.toLowerCase() === 'none') return []
  const parts = text.split(',').map((p) => p.trim().toUpperCase())
  /* Precondition: --usage lists ENCRYPT and/or DECRYPT, or says none. */
  if (parts.some((p) => !FULL_USAGE.includes(p as ProxyKeyUsage))) throw new UsageError('--usage must be encrypt,decrypt, encrypt, decrypt or none')
  return parts as ProxyKeyUsage[]
}

async function cmdCreateKey(args: string[]): Promise<number> {
  const { values } = parse(args, { label: { type: 'string' }, usage: { type: 'string' }, spec: { type: 'string' } }, 0)
  if (values['help'] === true) return help()
  const keyUsage = parseUsage(values['usage'] as string | undefined)
  const spec = values['spec'] as string | undefined
  if (spec !== undefined && !PROXY_KEY_SPECS.includes(spec as ProxyKeySpec)) throw new UsageError(`--spec must be one of ${PROXY_KEY_SPECS.join(', ')}`)
  const keyId = await withKeystore(values, (ks) => ks.createKey({
    label: (values['label'] as string | undefined) ?? '',
    ...(keyUsage !== undefined ? { keyUsage } : {}),
    ...(spec !== undefined ? { keySpec: spec as ProxyKeySpec } : {}),
  }))
  out(values['json'] === true ? JSON.stringify({ keyId }) : keyId)
  return 0
}

async function cmdSetEnabled(args: string[], enabled: boolean): Promise<number> {
  const { values, positionals } = parse(args, {}, 1)
  if (values['help'] === true) return help()
  const keyId = positionals[0]!
  await withKeystore(values, (ks) => ks.setEnabled(keyId, enabled))
  const state = enabled ? 'enabled' : 'disabled'
  out(values['json'] === true ? JSON.stringify({ keyId, state }) : `${keyId} ${state}`)
  return 0
}

async function cmdStatus(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {}, 1)
  if (values['help'] === true) return help()
  const keyId = positionals[0]!
  const state = await withKeystore(values, (ks) => ks.getState(keyId))
  if (state === 'missing') throw new DomicileError('ERR_KEY_NOT_FOUND', 'No such key in this key proxy.')
  out(values['json'] === true ? JSON.stringify({ keyId, state }) : `${keyId} ${state}`)
  return 0
}

async function cmdRotateCredentials(args: string[]): Promise<number> {
  const { values } = parse(args, { retire: { type: 'string' } }, 0)
  if (values['help'] === true) return help()
  const dir = values['dir'] as string
  const retire = values['retire'] as string | undefined
  if (retire !== undefined) {
    const r = await retireCredential(dir, retire)
    out(values['json'] === true ? JSON.stringify({ retired: retire, active: r.active, credentialsFile: r.credentialsFile }) : `${retire} retired`)
    return 0
  }
  const r = await addCredential(dir)
  if (values['json'] === true) out(JSON.stringify(r))
  else {
    out(r.accessKeyId)
    process.stderr.write(`keyproxy: added a credential to ${r.credentialsFile}; a running proxy accepts it now, the old ones stay valid until "rotate-credentials --retire ID"\n`)
  }
  return 0
}

function help(): number {
  process.stdout.write(USAGE)
  return 0
}

/**
 * Runs `domicile keyproxy <argv...>` and returns the exit status.
 *
 * @example
 * process.exitCode = await runKeyproxyCommand(['create-key', '--dir', '/var/lib/keyproxy', '--json'])
 */
export async function runKeyproxyCommand(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv
  try {
    switch (cmd) {
      case 'init': return await cmdInit(rest)
      case 'serve': return await cmdServe(rest)
      case 'create-key': return await cmdCreateKey(rest)
      case 'disable-key': return await cmdSetEnabled(rest, false)
      case 'enable-key': return await cmdSetEnabled(rest, true)
      case 'status': return await cmdStatus(rest)
      case 'rotate-credentials': return await cmdRotateCredentials(rest)
      case 'help': case '--help': case '-h': return help()
      default:
        throw new UsageError(cmd === undefined ? 'missing command' : `unknown command ${JSON.stringify(cmd)}`)
    }
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`domicile keyproxy: ${e.message}\n\n${USAGE}`)
      return 2
    }
    throw e
  }
}
