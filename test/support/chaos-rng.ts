/**
 * Seeded randomness for the fault-and-load suite (test/chaos/): every random choice a scenario
 * makes (tenant, operation, when to kill a process, which fault) comes from one generator seeded
 * per file, and the seed is printed, so a failure can be replayed with DOMICILE_CHAOS_SEED=<seed>.
 *
 * @example
 * const rng = chaosRng('mixed-load')        // prints "chaos seed for mixed-load: 123 (replay: DOMICILE_CHAOS_SEED=123)"
 * const tenant = rng.pick(tenants)
 */
import { createHash, randomInt } from 'node:crypto'

export interface Rng {
  /** The seed this generator started from. */
  readonly seed: number
  /** A float in [0, 1). */
  next(): number
  /** An integer in [lo, hi] (both inclusive). */
  int(lo: number, hi: number): number
  pick<T>(items: readonly T[]): T
  /** true with probability p. */
  chance(p: number): boolean
  /** A generator for a sub-task, derived from this one's seed and a label (independent streams). */
  fork(label: string): Rng
}

/** sfc32 (small fast counter), seeded by SHA-256 of the seed and the label. */
export function seededRng(seed: number, label = ''): Rng {
  const h = createHash('sha256').update(`${seed}/${label}`).digest()
  let a = h.readUInt32LE(0)
  let b = h.readUInt32LE(4)
  let c = h.readUInt32LE(8)
  let d = h.readUInt32LE(12)
  const next = (): number => {
    a >>>= 0; b >>>= 0; c >>>= 0; d >>>= 0
    let t = (a + b) | 0
    a = b ^ (b >>> 9)
    b = (c + (c << 3)) | 0
    c = (c << 21) | (c >>> 11)
    d = (d + 1) | 0
    t = (t + d) | 0
    c = (c + t) | 0
    return (t >>> 0) / 4294967296
  }
  for (let i = 0; i < 12; i++) next()
  const rng: Rng = {
    seed,
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: <T>(items: readonly T[]): T => {
      if (items.length === 0) throw new Error('pick from an empty list')
      return items[Math.floor(next() * items.length)]!
    },
    chance: (p) => next() < p,
    fork: (l) => seededRng(seed, `${label}/${l}`),
  }
  return rng
}

/**
 * The generator of one test file: seeded from DOMICILE_CHAOS_SEED when set (replay), else from a
 * fresh random seed; the seed is printed either way.
 */
export function chaosRng(file: string): Rng {
  const env = process.env.DOMICILE_CHAOS_SEED
  const seed = env !== undefined && /^\d+$/.test(env) ? Number(env) : randomInt(0, 2 ** 31 - 1)
  console.log(`# chaos seed for ${file}: ${seed} (replay: DOMICILE_CHAOS_SEED=${seed})`)
  return seededRng(seed, file)
}
