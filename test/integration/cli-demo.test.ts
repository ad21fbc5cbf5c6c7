/**
 * `domicile demo` as a real child process: it exits 0, every check it makes passes, and its
 * residency table shows each tenant's rows only under its home region. (One run: a demo initialises
 * three fresh embedded stores, the slowest step of the CLI.)
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { REPO_ROOT, runCli } from '../support/cli.js'

const HOME: Readonly<Record<string, string>> = { 'acme-eu': 'eu-west-1', 'bistro-eu': 'eu-west-1', 'globex-us': 'us-east-1', 'initech-us': 'us-east-1' }

test('demo exits 0 and its residency table shows every tenant\'s rows only under its home region', async () => {
  const r = await runCli(['demo'], { cwd: REPO_ROOT, timeoutMs: 180_000 })
  assert.equal(r.code, 0, `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`)
  assert.match(r.stdout, /All \d+ checks passed/)
  assert.doesNotMatch(r.stdout, /FAIL/)

  const lines = r.stdout.split('\n')
  const proof = lines.findIndex((l) => /^\d+\. Proof of residency/.test(l))
  assert.ok(proof > 0, 'a "Proof of residency" section')
  const header = lines.findIndex((l, i) => i > proof && /^\s+TENANT\s+HOME\s+/.test(l))
  assert.ok(header > 0, 'residency table header')
  const regions = lines[header]!.trim().split(/\s+/).slice(2)
  assert.deepEqual([...regions].sort(), ['eu-west-1', 'us-east-1'])
  const seen = new Set<string>()
  for (const line of lines.slice(header + 1)) {
    const cells = line.trim().split(/\s+/)
    if (!(cells[0]! in HOME)) break
    const [tenant, home, ...counts] = cells as [string, string, ...string[]]
    seen.add(tenant)
    assert.equal(home, HOME[tenant])
    regions.forEach((region, i) => {
      if (region === home) assert.match(counts[i]!, /^[1-9]\d*$/, `${tenant} has rows in ${region}`)
      else assert.equal(counts[i], '-', `${tenant} has no rows in ${region}`)
    })
  }
  assert.deepEqual([...seen].sort(), Object.keys(HOME).sort())

  const dir = /^Working directory: (\S+)/m.exec(r.stdout)?.[1]
  assert.ok(dir, 'prints its working directory')
  assert.equal(existsSync(dir), false, 'removes its temp directory without --keep')
})
