/**
 * Test support: the reference key proxy as a REAL child process (`node bin/domicile.mjs keyproxy
 * serve ...`), and the keyproxy CLI (init / create-key / disable-key / enable-key / status) run as
 * child processes, exactly as a customer would run them. The proxy serves HTTPS with the
 * self-signed pair `keyproxy init` generated (its certificate is `proxy.caFile`) unless
 * `insecureHttp` is asked for.
 *
 * @example
 * const dir = await initKeyProxyDir()
 * const proxy = await startKeyProxyProcess({ dir: dir.dir, uriPrefix: '/xks' })
 * const xks = createXksKeyProvider({ ...proxy.providerOptions, timeoutMs: 2000 })
 * const { keyId } = JSON.parse((await runKeyproxyCli(['create-key', '--dir', dir.dir, '--json'])).stdout)
 * await proxy.stop()
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DOMICILE_BIN, REPO_ROOT, runCli, type CliResult } from './cli.js'

export { DOMICILE_BIN, REPO_ROOT, type CliResult }

export interface ProxyCredentials {
  readonly accessKeyId: string
  readonly secretAccessKey: string
}

export interface KeyProxyDir {
  readonly dir: string
  readonly credentials: ProxyCredentials
  /** Removes the directory. */
  cleanup(): Promise<void>
}

/** Runs `domicile keyproxy <args>` as a child process (through the shared CLI runner) and collects its output. */
export function runKeyproxyCli(args: readonly string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  return runCli(['keyproxy', ...args], { cwd: REPO_ROOT, ...(opts.env ? { env: opts.env } : {}), timeoutMs: opts.timeoutMs ?? 30_000 })
}

/** Like runKeyproxyCli, but throws (with stderr) unless the exit status is 0. */
export async function runKeyproxyCliOk(args: readonly string[], opts: { env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  const r = await runKeyproxyCli(args, opts)
  if (r.code !== 0) throw new Error(`domicile keyproxy ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`)
  return r.stdout
}

/** `keyproxy init` into a fresh temp dir (via the CLI) and reads back the credentials it wrote. */
export async function initKeyProxyDir(): Promise<KeyProxyDir> {
  const parent = await mkdtemp(join(tmpdir(), 'domicile-keyproxy-'))
  const dir = join(parent, 'proxy')
  const out = JSON.parse(await runKeyproxyCliOk(['init', '--dir', dir, '--json'])) as { accessKeyId: string; credentialsFile: string }
  const doc = JSON.parse(await readFile(out.credentialsFile, 'utf8')) as { credentials: ProxyCredentials[] }
  const c = doc.credentials.find((x) => x.accessKeyId === out.accessKeyId)
  if (c === undefined) throw new Error('keyproxy init: the printed access key id is not in credentials.json')
  return {
    dir,
    credentials: { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey },
    cleanup: () => rm(parent, { recursive: true, force: true }),
  }
}

/** `keyproxy create-key --json` via the CLI; returns the key id. */
export async function createKeyViaCli(dir: string, extra: readonly string[] = [], env?: NodeJS.ProcessEnv): Promise<string> {
  const out = await runKeyproxyCliOk(['create-key', '--dir', dir, '--json', ...extra], env === undefined ? {} : { env })
  return (JSON.parse(out) as { keyId: string }).keyId
}

/** What an `xks` provider needs to reach a proxy process (spread into createXksKeyProvider). */
export interface ProxyClientOptions {
  readonly endpoint: string
  readonly uriPrefix: string
  readonly credentials: ProxyCredentials
  readonly caFile?: string
  readonly allowInsecureHttp?: boolean
}

export interface KeyProxyProcess {
  readonly url: string
  readonly uriPrefix: string
  readonly credentials: ProxyCredentials
  /** The self-signed certificate the proxy serves (DIR/tls/cert.pem); undefined for plain HTTP or another pair. */
  readonly caFile: string | undefined
  /** The credentials file the proxy reads (DIR/credentials.json). */
  readonly credentialsFile: string
  readonly providerOptions: ProxyClientOptions
  readonly child: ChildProcess
  /** SIGTERM and wait for exit; resolves to the exit code. */
  stop(): Promise<number | null>
  /** SIGKILL and wait for exit (a crash, for outage tests). */
  kill(): Promise<void>
  /** The last lines the proxy wrote to stderr (its request log), for debugging failures. */
  stderrTail(): string
}

export interface StartKeyProxyProcessOptions {
  readonly dir: string
  readonly uriPrefix?: string
  /** Serve plain HTTP (`--insecure-http`) instead of HTTPS. */
  readonly insecureHttp?: boolean
  /** Extra `serve` arguments, e.g. the PKCS#11 options. */
  readonly extraArgs?: readonly string[]
  readonly env?: NodeJS.ProcessEnv
  /** How long to wait for the listening line. Default 20 s. */
  readonly startTimeoutMs?: number
}

/** Starts `domicile keyproxy serve --dir DIR --port 0` and waits for its `{"url","uriPrefix"}` line. */
export async function startKeyProxyProcess(opts: StartKeyProxyProcessOptions): Promise<KeyProxyProcess> {
  const doc = JSON.parse(await readFile(join(opts.dir, 'credentials.json'), 'utf8')) as { credentials: ProxyCredentials[] }
  const first = doc.credentials[doc.credentials.length - 1]
  if (first === undefined) throw new Error('credentials.json has no credentials')
  const credentials = { accessKeyId: first.accessKeyId, secretAccessKey: first.secretAccessKey }
  const args = [DOMICILE_BIN, 'keyproxy', 'serve', '--dir', opts.dir, '--host', '127.0.0.1', '--port', '0',
    ...(opts.uriPrefix === undefined ? [] : ['--uri-prefix', opts.uriPrefix]), ...(opts.insecureHttp === true ? ['--insecure-http'] : []), ...(opts.extraArgs ?? [])]
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] })
  const tail: string[] = []
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    tail.push(d)
    if (tail.length > 50) tail.shift()
  })
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))

  const ready = await new Promise<{ url: string; uriPrefix: string; credentialsFile: string; caFile: string | null }>((resolvePromise, reject) => {
    let buf = ''
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`keyproxy serve did not print its listening line within ${opts.startTimeoutMs ?? 20_000} ms: ${tail.join('')}`))
    }, opts.startTimeoutMs ?? 20_000)
    const onData = (d: string): void => {
      buf += d
      const nl = buf.indexOf('\n')
      if (nl === -1) return
      clearTimeout(timer)
      child.stdout!.off('data', onData)
      try {
        resolvePromise(JSON.parse(buf.slice(0, nl)) as { url: string; uriPrefix: string; credentialsFile: string; caFile: string | null })
      } catch (e) {
        reject(e)
      }
    }
    child.stdout!.setEncoding('utf8').on('data', onData)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`keyproxy serve exited with ${code} before listening: ${tail.join('')}`))
    })
  })
  // Keep draining stdout so the child never blocks on a full pipe.
  child.stdout!.resume()

  const caFile = ready.caFile ?? undefined
  return {
    url: ready.url,
    uriPrefix: ready.uriPrefix,
    credentials,
    caFile,
    credentialsFile: ready.credentialsFile,
    providerOptions: {
      endpoint: ready.url,
      uriPrefix: ready.uriPrefix,
      credentials,
      ...(caFile !== undefined ? { caFile } : {}),
      ...(ready.url.startsWith('http:') ? { allowInsecureHttp: true } : {}),
    },
    child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
      child.kill('SIGTERM')
      return exited
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGKILL')
      await exited
    },
    stderrTail: () => tail.join(''),
  }
}
