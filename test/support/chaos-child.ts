/**
 * Child processes for the fault suite: a TypeScript script run with tsx in its own Node process,
 * printing one JSON object per line on stdout, which the test reads as it arrives and can SIGKILL
 * at a moment of its choosing (after a given line, or after a delay).
 *
 * @example
 * const child = spawnChaosChild('test/support/chaos-crash-child.ts', [env.configPath, 'batch', 'acme', '400'])
 * await child.waitFor((l) => l.event === 'row' && l.i === 57)
 * const run = await child.kill()             // SIGKILL; resolves once it exited
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { REPO_ROOT } from './cli.js'

export type Line = Record<string, unknown>

export interface ChildRun {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly lines: readonly Line[]
  readonly stderr: string
}

export interface ChaosChild {
  readonly process: ChildProcess
  /** Lines received so far. */
  readonly lines: readonly Line[]
  /** Resolves with the first line (already received or to come) that matches; rejects if the child exits first or on timeout. */
  waitFor(pred: (l: Line) => boolean, timeoutMs?: number): Promise<Line>
  /** Sends SIGKILL (if still running) and resolves once the process exited. */
  kill(): Promise<ChildRun>
  readonly exited: Promise<ChildRun>
}

const TSX = pathToFileURL(join(REPO_ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href

export function spawnChaosChild(script: string, args: readonly string[], opts: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {}): ChaosChild {
  const child = spawn(process.execPath, ['--import', TSX, join(REPO_ROOT, script), ...args], {
    cwd: opts.cwd ?? REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_NO_WARNINGS: '1', DOMICILE_TEST_KILL_AT: '', ...(opts.env ?? {}) },
  })
  const lines: Line[] = []
  const waiters: Array<{ pred: (l: Line) => boolean; resolve: (l: Line) => void }> = []
  let partial = ''
  let stderr = ''
  child.stdout!.on('data', (b: Buffer) => {
    partial += b.toString('utf8')
    const parts = partial.split('\n')
    partial = parts.pop()!
    for (const p of parts) {
      if (!p.trim()) continue
      let l: Line
      try {
        l = JSON.parse(p) as Line
      } catch {
        l = { event: 'text', text: p }
      }
      lines.push(l)
      for (let i = waiters.length - 1; i >= 0; i--) {
        if (waiters[i]!.pred(l)) waiters.splice(i, 1)[0]!.resolve(l)
      }
    }
  })
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString('utf8')))
  const guard = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000)
  const exited = new Promise<ChildRun>((resolve) => {
    child.on('exit', (code, signal) => {
      clearTimeout(guard)
      // stdout may still hold the last lines: wait for its end.
      const done = () => resolve({ code, signal, lines, stderr })
      if (child.stdout!.readableEnded) done()
      else child.stdout!.once('end', done)
    })
  })
  return {
    process: child,
    lines,
    waitFor(pred, timeoutMs = 60_000) {
      const hit = lines.find(pred)
      if (hit) return Promise.resolve(hit)
      return new Promise<Line>((resolve, reject) => {
        const w = { pred, resolve: (l: Line) => { clearTimeout(timer); resolve(l) } }
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1)
          reject(new Error(`child: no matching line within ${timeoutMs} ms; last lines ${JSON.stringify(lines.slice(-3))}; stderr ${stderr.slice(-2000)}`))
        }, timeoutMs)
        waiters.push(w)
        void exited.then((r) => {
          if (!waiters.includes(w)) return
          waiters.splice(waiters.indexOf(w), 1)
          clearTimeout(timer)
          reject(new Error(`child exited (${r.code ?? r.signal}) before the expected line; last lines ${JSON.stringify(lines.slice(-3))}; stderr ${stderr.slice(-2000)}`))
        })
      })
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      return exited
    },
    exited,
  }
}
