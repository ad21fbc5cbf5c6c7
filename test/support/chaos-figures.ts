/**
 * Figures of the fault-and-load suite (test/chaos/). Each scenario records what it did; when
 * DOMICILE_CHAOS_FIGURES names a directory, the figures are written there as one JSON file per
 * scenario, and `npm run reliability:report` turns them into docs/RELIABILITY.md.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export interface ChaosFigures {
  /** Stable scenario id, e.g. "region-fault". */
  readonly scenario: string
  readonly title: string
  readonly faultsInjected: number
  readonly writesAcknowledged: number
  readonly writesVerified: number
  readonly leaksFound: number
  /** Anything else worth publishing (throughput, p50/p99 in ms, error counts...). */
  readonly extra?: Readonly<Record<string, number | string>>
}

export function recordFigures(f: ChaosFigures): void {
  const dir = process.env.DOMICILE_CHAOS_FIGURES
  if (!dir) return
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, `${f.scenario}.json`), JSON.stringify({ ...f, recordedAt: new Date().toISOString() }, null, 2))
}
