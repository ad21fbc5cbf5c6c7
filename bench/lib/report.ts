/**
 * Printing and persisting benchmark results: an aligned text table for the console and a JSON
 * file with the figures and the machine they were measured on.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, platform, release, totalmem } from 'node:os'
import { dirname } from 'node:path'

/** Prints rows as an aligned table; numbers are right-aligned. */
export function printTable(title: string, header: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number>>): void {
  const cells = [header, ...rows.map((r) => r.map((c) => (typeof c === 'number' ? formatNum(c) : c)))]
  const widths = header.map((_, i) => Math.max(...cells.map((r) => String(r[i] ?? '').length)))
  const line = (r: ReadonlyArray<string>) => r.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]!) : String(c).padStart(widths[i]!))).join('  ')
  console.log(`\n${title}`)
  console.log(line(cells[0]!.map(String)))
  console.log(widths.map((w) => '-'.repeat(w)).join('  '))
  for (const r of cells.slice(1)) console.log(line(r.map(String)))
}

function formatNum(n: number): string {
  if (!Number.isFinite(n)) return String(n)
  if (Number.isInteger(n)) return String(n)
  return n.toFixed(Math.abs(n) >= 100 ? 0 : 1)
}

export interface MachineInfo {
  readonly cpu: string
  readonly cores: number
  readonly memGiB: number
  readonly os: string
  readonly node: string
  readonly date: string
  /** 1/5/15-minute load averages when the figures were taken (other processes share the CPUs). */
  readonly loadAvg: number[]
}

export function machineInfo(): MachineInfo {
  const c = cpus()
  return {
    cpu: c[0]?.model ?? 'unknown',
    cores: c.length,
    memGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: `${platform()} ${release()}`,
    node: process.version,
    date: new Date().toISOString(),
    loadAvg: loadavg().map((x) => Math.round(x * 100) / 100),
  }
}

/** Writes `data` as pretty JSON, creating the directory. */
export function writeResults(path: string, data: unknown): void {
  // A smoke run (BENCH_QUICK=1) must not overwrite the recorded figures.
  if (process.env.BENCH_QUICK === '1') {
    console.log(`BENCH_QUICK=1: smoke run, ${path} not written`)
    return
  }
  mkdirSync(dirname(path), { recursive: true })
  writeFileSync(path, `${JSON.stringify(data, null, 2)}\n`)
}
