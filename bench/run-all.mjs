#!/usr/bin/env node
// Runs every benchmark in bench/ one after another (one at a time: they share 2 cores), each in
// its own process. Results land in bench/results/*.json; BENCHMARKS.md summarises them.
// Usage: npm run bench [-- name-substring ...]
import { readdirSync } from 'node:fs'
import { spawnSync } from 'node:child_process'

const filters = process.argv.slice(2)
const benches = readdirSync(new URL('.', import.meta.url)).filter((f) => f.endsWith('.bench.ts')).sort()
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
let failed = 0
for (const b of benches) {
  console.log(`\n=== ${b}`)
  const r = spawnSync(process.execPath, ['--import', 'tsx', `bench/${b}`], { stdio: 'inherit' })
  if (r.status !== 0) failed++
}
process.exit(failed ? 1 : 0)
