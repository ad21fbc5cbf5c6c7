/**
 * The conformance suite must be able to fail: run it (in a child process) against an in-memory
 * provider that is correct and against copies broken in one way each, and check which cases fail.
 */

import { test } from 'node:test'
import { strict as assert } from 'node:assert'
import { spawnSync } from 'node:child_process'

test('the key-provider conformance suite passes a correct provider and catches broken ones', () => {
  // NODE_TEST_CONTEXT would make the child report to our runner instead of printing TAP.
  const env = { ...process.env }
  delete env.NODE_TEST_CONTEXT
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=tap', 'test/unit/keys/fixtures/broken-providers-suite.ts'], { encoding: 'utf8', timeout: 60_000, env })
  const out = r.stdout
  // TAP: "# Subtest: key provider conformance: <flaw>" then indented "not ok N - <case>" lines.
  const failed = new Map<string, string[]>()
  let suite = ''
  for (const line of out.split('\n')) {
    const s = /^ {4}# Subtest: key provider conformance: (.+)$/.exec(line) ?? /^# Subtest: key provider conformance: (.+)$/.exec(line)
    if (s) { suite = s[1]!; failed.set(suite, []); continue }
    const f = /^\s+not ok \d+ - (.+)$/.exec(line)
    if (f && suite !== '') failed.get(suite)!.push(f[1]!)
  }
  assert.notEqual(r.status, 0, 'the broken providers must make the run fail')
  assert.deepEqual(failed.get('none'), [], `a correct provider passes:\n${out.slice(0, 4000)}`)
  const ctxFails = failed.get('ignores-context') ?? []
  for (const field of ['tenantId', 'region', 'dataKeyId', 'purpose']) {
    assert.ok(ctxFails.some((n) => n.includes(`different ${field}`)), `ignoring the context is caught for ${field}`)
  }
  assert.ok((failed.get('leaks-key-in-errors') ?? []).some((n) => /tampered/.test(n)), 'leaky, non-opaque decrypt errors are caught')
  assert.ok((failed.get('revoke-does-nothing') ?? []).some((n) => /^revoke\(\)/.test(n)), 'a revoke that does nothing is caught')
})
