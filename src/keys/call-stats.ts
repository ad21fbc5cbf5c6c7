/**
 * Counters of one provider operation (calls, failures, latency histogram) for metrics. Kept by the
 * runtime wrapper; read at scrape time in the Prometheus shape (cumulative bucket counts).
 */

/** Upper bounds of the latency buckets, in seconds. */
export const CALL_BUCKETS_S: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]

export interface CallStatsSnapshot {
  readonly calls: number
  readonly failures: number
  readonly secondsSum: number
  /** Upper bounds (seconds) and cumulative counts, as a Prometheus histogram. */
  readonly buckets: ReadonlyArray<readonly [le: number, count: number]>
}

export class CallStats {
  #calls = 0
  #failures = 0
  #secondsSum = 0
  readonly #counts = new Array<number>(CALL_BUCKETS_S.length).fill(0)

  record(seconds: number, ok: boolean): void {
    this.#calls++
    if (!ok) this.#failures++
    this.#secondsSum += seconds
    const i = CALL_BUCKETS_S.findIndex((le) => seconds <= le)
    if (i !== -1) this.#counts[i]!++
  }

  snapshot(): CallStatsSnapshot {
    let cumulative = 0
    const buckets = CALL_BUCKETS_S.map((le, i) => [le, (cumulative += this.#counts[i]!)] as const)
    return { calls: this.#calls, failures: this.#failures, secondsSum: this.#secondsSum, buckets }
  }
}
