/**
 * Test support: the `domicile` command as a REAL child process (`node bin/domicile.mjs ...`), run
 * in a given working directory, with $DOMICILE_CONFIG removed so only the test's own files count.
 *
 * @example
 * const dir = await makeTempDir('cli-')
 * await runCliOk(['init'], { cwd: dir.path })
 * const regions = await runCliJson<Array<{ name: string }>>(['region', 'list', '--json'], { cwd: dir.path })
 */
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const DOMICILE_BIN = join(REPO_ROOT, 'bin', 'domicile.mjs')

export interface CliResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

export interface CliOptions {
  readonly cwd: string
  readonly env?: NodeJS.ProcessEnv
  /** Default 60 s (a fresh `migrate` initialises three embedded stores). */
  readonly timeoutMs?: number
}

/** Runs `domicile <args>` and collects its exit status and output. */
export function runCli(args: readonly string[], opts: CliOptions): Promise<CliResult> {
  const env = { ...(opts.env ?? process.env) }
  delete env.DOMICILE_CONFIG
  const timeoutMs = opts.timeoutMs ?? 60_000
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [DOMICILE_BIN, ...args], { cwd: opts.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d })
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`domicile ${args.join(' ')} did not finish within ${timeoutMs} ms\nstderr: ${stderr}`))
    }, timeoutMs)
    child.on('error', (e) => { clearTimeout(timer); reject(e) })
    child.on('close', (code) => { clearTimeout(timer); resolvePromise({ code, stdout, stderr }) })
  })
}

/** Like runCli, but throws (with the output) unless the exit status is 0. */
export async function runCliOk(args: readonly string[], opts: CliOptions): Promise<CliResult> {
  const r = await runCli(args, opts)
  if (r.code !== 0) throw new Error(`domicile ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`)
  return r
}

/** Runs a command that must succeed and parses its stdout as JSON. */
export async function runCliJson<T = unknown>(args: readonly string[], opts: CliOptions): Promise<T> {
  const r = await runCliOk(args, opts)
  try {
    return JSON.parse(r.stdout) as T
  } catch {
    throw new Error(`domicile ${args.join(' ')}: stdout is not one JSON document:\n${r.stdout}`)
  }
}

export interface TempDir {
  readonly path: string
  cleanup(): Promise<void>
}

export async function makeTempDir(prefix: string): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), `domicile-${prefix}`))
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) }
}
