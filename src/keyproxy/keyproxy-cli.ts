/**
 * `domicile keyproxy ...`: set up and run the reference HYOK key proxy, and manage its keys.
 *
 *   init        --dir DIR [--json]
 *   serve       --dir DIR [--host 127.0.0.1] [--port 0] [--uri-prefix /xks] [--quiet] [PKCS#11]
 *   create-key  --dir DIR [--label TEXT] [--json] [PKCS#11]
 *   disable-key KEYID --dir DIR [--json] [PKCS#11]
 *   enable-key  KEYID --dir DIR [--json] [PKCS#11]
 *   status      KEYID --dir DIR [--json] [PKCS#11]
 *   PKCS#11 = --pkcs11-lib PATH --token LABEL --pin-env VAR (keys live in the token, not in DIR)
 *
 * Secrets are never printed: `init` prints the access key id and the path of the credentials file.
 * Bad arguments print a message and exit 2.
 */
import { parseArgs } from 'node:util'
import { DomicileError } from '../errors.js'
import { FileKeystore } from './file-keystore.js'
import { createCredentialsFile, readCredentialsFile } from './keyproxy-credentials.js'
import { startKeyProxy } from './keyproxy-server.js'
import type { ProxyKeystore } from './proxy-keystore.js'

const USAGE = `Usage: domicile keyproxy <command> [options]

Commands:
  init        --dir DIR [--json]                 create DIR, its master key and SigV4 credentials
  serve       --dir DIR [--host H] [--port P] [--uri-prefix /xks] [--quiet]
                                                 run the XKS proxy; prints {"url","uriPrefix"} once listening
  create-key  --dir DIR [--label TEXT] [--json]  create an AES-256 key; prints its id
  disable-key KEYID --dir DIR [--json]           disable a key (the next request is refused)
  enable-key  KEYID --dir DIR [--json]           enable a key again
  status      KEYID --dir DIR [--json]           print a key's state

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

type Values = Record<string, string | boolean | undefined>

function parse(args: string[], extra: Record<string, { type: 'string' | 'boolean' }>, positionals: number): { values: Values; positionals: string[] } {
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

async function cmdInit(args: string[]): Promise<number> {
  const { values } = parse(args, {}, 0)
  if (values['help'] === true) return help()
  const dir = values['dir'] as string
  await FileKeystore.initialize(dir)
  const { accessKeyId, credentialsFile } = await createCredentialsFile(dir)
  if (values['json'] === true) out(JSON.stringify({ accessKeyId, credentialsFile }))
  else {
    out(accessKeyId)
    process.stderr.write(`keyproxy: initialized; the SigV4 secret is in ${credentialsFile} (mode 0600)\n`)
  }
  return 0
}

async function cmdServe(args: string[]): Promise<number> {
  const { values } = parse(args, { host: { type: 'string' }, port: { type: 'string' }, 'uri-prefix': { type: 'string' }, quiet: { type: 'boolean' } }, 0)
  if (values['help'] === true) return help()
  const portText = (values['port'] as string | undefined) ?? '0'
  const port = Number(portText)
  if (!/^\d+$/.test(portText) || port > 65535) throw new UsageError('--port must be an integer from 0 to 65535')
  const credentials = await readCredentialsFile(values['dir'] as string)
  const keystore = await openKeystore(values)
  const quiet = values['quiet'] === true
  let handle
  try {
    handle = await startKeyProxy({
      host: (values['host'] as string | undefined) ?? '127.0.0.1',
      port,
      uriPrefix: (values['uri-prefix'] as string | undefined) ?? '',
      credentials,
      keystore,
      ...(quiet ? {} : { log: (e) => process.stderr.write(JSON.stringify(e) + '\n') }),
    })
  } catch (e) {
    await keystore.close?.()
    throw e
  }
  out(JSON.stringify({ url: handle.url, uriPrefix: handle.uriPrefix }))
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGTERM', stop)
      process.off('SIGINT', stop)
      resolve()
    }
    process.on('SIGTERM', stop)
    process.on('SIGINT', stop)
  })
  await handle.close()
  await keystore.close?.()
  return 0
}

async function cmdCreateKey(args: string[]): Promise<number> {
  const { values } = parse(args, { label: { type: 'string' } }, 0)
  if (values['help'] === true) return help()
  const keyId = await withKeystore(values, (ks) => ks.createKey((values['label'] as string | undefined) ?? ''))
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
