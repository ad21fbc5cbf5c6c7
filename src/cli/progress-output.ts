/**
 * How the CLI shows a long operation's progress (src/ops/progress.ts): a bar with rate and ETA
 * (`cli-progress`) on a terminal, plain lines otherwise (at most one per second per state, plus
 * every state change and note), nothing on stdout with --json (the command prints one JSON result
 * at the end; progress lines then go to stderr only when it is a terminal).
 */
import type { Progress, ProgressEvent } from '../ops/progress.js'

/** The subset of cli-progress used here. */
interface BarLike {
  start(total: number, value: number, payload?: Record<string, unknown>): void
  update(value: number, payload?: Record<string, unknown>): void
  setTotal(total: number): void
  stop(): void
}

export interface ProgressOutput extends Progress {
  /** Ends the bar (if any). Call before printing the result. */
  stop(): void
}

/**
 * @param opts.json the command prints JSON on stdout: progress never goes there
 * @param opts.stream where progress goes (default stderr)
 */
export async function progressOutput(opts: { json: boolean; stream?: NodeJS.WriteStream }): Promise<ProgressOutput> {
  const stream = opts.stream ?? process.stderr
  if (stream.isTTY) return barOutput(stream, await loadBar(stream))
  if (opts.json) return { update() {}, note() {}, stop() {} }
  return lineOutput(stream)
}

async function loadBar(stream: NodeJS.WriteStream): Promise<BarLike> {
  const mod = (await import('cli-progress')) as unknown as { default?: CliProgressModule } & CliProgressModule
  const cp = mod.default ?? mod
  return new cp.SingleBar({
    stream,
    format: '{state} [{bar}] {percentage}% | {value}/{total} {unit} | {rate}/s | ETA {eta_formatted}',
    hideCursor: true,
    clearOnComplete: false,
    etaBuffer: 50,
  }, cp.Presets.shades_classic)
}

interface CliProgressModule {
  SingleBar: new (opts: Record<string, unknown>, preset: unknown) => BarLike
  Presets: { shades_classic: unknown }
}

function barOutput(stream: NodeJS.WriteStream, bar: BarLike): ProgressOutput {
  let state: string | undefined
  let started = 0
  let active = false
  return {
    update(e: ProgressEvent) {
      const total = e.total ?? Math.max(e.done, 1)
      if (e.state !== state) {
        if (active) bar.stop()
        state = e.state
        started = Date.now()
        bar.start(total, e.done, { state: e.state, unit: e.unit, rate: 0 })
        active = true
        return
      }
      if (e.total !== undefined) bar.setTotal(e.total)
      const secs = (Date.now() - started) / 1000
      bar.update(e.done, { state: e.state, unit: e.unit, rate: secs > 0 ? Math.round(e.done / secs) : 0 })
    },
    note(message: string) {
      if (active) {
        bar.stop()
        active = false
        state = undefined
      }
      stream.write(`${message}\n`)
    },
    stop() {
      if (active) bar.stop()
      active = false
    },
  }
}

function lineOutput(stream: NodeJS.WriteStream): ProgressOutput {
  let state: string | undefined
  let started = 0
  let last = 0
  return {
    update(e: ProgressEvent) {
      const now = Date.now()
      const changed = e.state !== state
      if (changed) {
        state = e.state
        started = now
      }
      if (!changed && now - last < 1000 && e.done !== e.total) return
      last = now
      const secs = (now - started) / 1000
      const rate = secs > 0 ? Math.round(e.done / secs) : 0
      const of = e.total !== undefined ? `/${e.total}` : ''
      const eta = e.total !== undefined && rate > 0 ? `, ETA ${Math.ceil((e.total - e.done) / rate)} s` : ''
      stream.write(`${e.state}: ${e.done}${of} ${e.unit}${rate ? ` (${rate}/s${eta})` : ''}\n`)
    },
    note(message: string) {
      stream.write(`${message}\n`)
    },
    stop() {},
  }
}
