#!/usr/bin/env node
// Runs every test/**/*.test.ts with node's built-in test runner (TypeScript via tsx).
// Usage: node scripts/run-tests.mjs [substring ...]   (substrings narrow the file list locally)
import { readdirSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { spawnSync } from 'node:child_process'

function walk(dir) {
  const out = []
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) out.push(...walk(p))
    else if (name.endsWith('.test.ts')) out.push(p)
  }
  return out
}
const filters = process.argv.slice(2)
const files = walk('test').map((f) => relative('.', f)).sort()
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
if (files.length === 0) {
  console.error('no test files matched')
  process.exit(1)
}
// Build the CLI bundle once, before the test files run two at a time: otherwise the first CLI
// processes of a fresh checkout (or after a source change) all compile it at once, and a long-lived
// child started then (a key proxy) has been seen to fail its first requests.
try {
  const { compiledPackage } = await import('./compile-sources.mjs')
  await compiledPackage(process.cwd())
} catch (e) {
  console.error(`run-tests: the CLI bundle was not prebuilt (${e?.message ?? e}); commands fall back to the TypeScript sources`)
}
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-reporter=spec', ...files], { stdio: 'inherit' })
process.exit(r.status ?? 1)
