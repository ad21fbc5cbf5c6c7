/**
 * Small, dependency-free statistics for benchmark samples: quantiles (linear interpolation),
 * summaries in microseconds, and a bootstrap confidence interval for a ratio of medians.
 */

/** Quantile q in [0, 1] of an ascending-sorted array (linear interpolation between ranks). */
export function quantileSorted(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN
  const pos = (sorted.length - 1) * q
  const lo = Math.floor(pos)
  const hi = Math.ceil(pos)
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo)
}

export function median(xs: readonly number[]): number {
  return quantileSorted([...xs].sort((a, b) => a - b), 0.5)
}

export interface Summary {
  readonly n: number
  /** Microseconds per operation. */
  readonly medianUs: number
  readonly p90Us: number
  readonly p99Us: number
  readonly minUs: number
  readonly meanUs: number
  /** 1e6 / median: single-in-flight throughput. */
  readonly opsPerSec: number
}

/** Summary of per-operation durations given in microseconds. */
export function summarize(samplesUs: readonly number[]): Summary {
  const s = [...samplesUs].sort((a, b) => a - b)
  const mean = s.reduce((a, b) => a + b, 0) / Math.max(1, s.length)
  const med = quantileSorted(s, 0.5)
  return {
    n: s.length,
    medianUs: round(med),
    p90Us: round(quantileSorted(s, 0.9)),
    p99Us: round(quantileSorted(s, 0.99)),
    minUs: round(s[0] ?? Number.NaN),
    meanUs: round(mean),
    opsPerSec: Math.round(1e6 / med),
  }
}

/** Relative overhead of `a` over `b`, in percent. */
export function overheadPct(a: number, b: number): number {
  return round(((a - b) / b) * 100, 2)
}

/** Deterministic PRNG (mulberry32), so both arms of a comparison see the same key sequence. */
export function prng(seed: number): () => number {
  let t = seed >>> 0
  return () => {
    t = (t + 0x6d2b79f5) >>> 0
    let r = Math.imul(t ^ (t >>> 15), 1 | t)
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * 95% bootstrap interval of the overhead (median(a) - median(b)) / median(b), resampling whole
 * rounds (blocks) so that drift shared by both arms within a round stays paired.
 */
export function bootstrapOverheadCi(roundsA: readonly number[][], roundsB: readonly number[][], iterations = 400, seed = 7): [number, number] {
  const rnd = prng(seed)
  const k = roundsA.length
  const out: number[] = []
  for (let i = 0; i < iterations; i++) {
    const a: number[] = []
    const b: number[] = []
    for (let j = 0; j < k; j++) {
      const r = Math.floor(rnd() * k)
      a.push(...roundsA[r]!)
      b.push(...roundsB[r]!)
    }
    const ma = median(a)
    const mb = median(b)
    out.push(((ma - mb) / mb) * 100)
  }
  out.sort((x, y) => x - y)
  return [round(quantileSorted(out, 0.025), 2), round(quantileSorted(out, 0.975), 2)]
}

export function round(x: number, digits = 1): number {
  const f = 10 ** digits
  return Math.round(x * f) / f
}
