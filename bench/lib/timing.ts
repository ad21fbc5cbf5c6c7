/**
 * Interleaved timing of competing "arms" (e.g. routed vs. direct driver): warm-up, then many
 * rounds in which every arm runs a block of operations, in a freshly shuffled order each round, so
 * that drift (CPU frequency, other processes, table growth) and after-effects of one arm on the
 * next (garbage it leaves for the collector) are shared fairly by all arms. A plain rotation would
 * not do: it keeps the cyclic order, so the same arm would always follow the same other arm.
 * One operation in flight at a time; each operation is timed on its own.
 */
import { prng } from './stats.js'

export interface Arm {
  readonly name: string
  /** One operation; `i` is the global operation index within this arm (for key selection). */
  readonly op: (i: number) => Promise<unknown>
}

export interface InterleaveOptions {
  /** Seed of the per-round order shuffle (default 1). */
  readonly seed?: number
  readonly rounds: number
  readonly blockSize: number
  /** Operations per arm before measuring (also interleaved, not recorded). */
  readonly warmupOps: number
}

export interface ArmSamples {
  readonly name: string
  /** Per-round arrays of per-operation durations, in microseconds. */
  readonly rounds: number[][]
  readonly all: number[]
  /** Per-round CPU time of this process (user + system) per operation, in microseconds. */
  readonly cpuPerOpUs: number[]
}

const nowUs = (): number => Number(process.hrtime.bigint()) / 1000

/** Times one async call in microseconds. */
export async function timeUs(fn: () => Promise<unknown>): Promise<number> {
  const t0 = nowUs()
  await fn()
  return nowUs() - t0
}

export async function interleave(arms: readonly Arm[], opts: InterleaveOptions): Promise<ArmSamples[]> {
  const counters = arms.map(() => 0)
  // Warm-up: same interleaving, small blocks, not recorded.
  const warmBlock = Math.max(1, Math.floor(opts.warmupOps / 4))
  for (let done = 0; done < opts.warmupOps; done += warmBlock) {
    for (let a = 0; a < arms.length; a++) {
      for (let k = 0; k < warmBlock; k++) await arms[a]!.op(counters[a]!++)
    }
  }
  const out: ArmSamples[] = arms.map((a) => ({ name: a.name, rounds: [], all: [], cpuPerOpUs: [] }))
  const rnd = prng(opts.seed ?? 1)
  const order = arms.map((_, k) => k)
  for (let r = 0; r < opts.rounds; r++) {
    for (let k = order.length - 1; k > 0; k--) {
      const j = Math.floor(rnd() * (k + 1))
      ;[order[k], order[j]] = [order[j]!, order[k]!]
    }
    for (const a of order) {
      const arm = arms[a]!
      const block: number[] = []
      const cpu0 = process.cpuUsage()
      for (let k = 0; k < opts.blockSize; k++) {
        const i = counters[a]!++
        const t0 = nowUs()
        await arm.op(i)
        block.push(nowUs() - t0)
      }
      const cpu = process.cpuUsage(cpu0)
      out[a]!.cpuPerOpUs.push((cpu.user + cpu.system) / opts.blockSize)
      out[a]!.rounds.push(block)
      out[a]!.all.push(...block)
    }
  }
  return out
}
