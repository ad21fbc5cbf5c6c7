/**
 * `domicile demo --keep` (what `npm start` runs) as a real child process: it exits 0, every check it
 * makes passes, its residency table shows each tenant's rows only under its home region, and the
 * command it prints at the end opens the web console's service on the same embedded regions. (One
 * run: a demo initialises three fresh embedded stores, the slowest step of the CLI.)
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, rmSync } from 'node:fs'
import { once } from 'node:events'
import { DOMICILE_BIN, REPO_ROOT, runCli } from '../support/cli.js'

const HOME: Readonly<Record<string, string>> = { 'acme-eu': 'eu-west-1', 'bistro-eu': 'eu-west-1', 'globex-us': 'us-east-1', 'initech-us': 'us-east-1' }

test('demo exits 0 and its residency table shows every tenant\'s rows only under its home region', async () => {
  const r = await runCli(['demo', '--keep'], { cwd: REPO_ROOT, timeoutMs: 180_000 })
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
  try {
    assert.equal(existsSync(dir), true, 'keeps its directory with --keep')
    // The printed console command, run as printed (on a free port instead of 8080).
    const m = /^ {2}DOMICILE_ADMIN_TOKEN=(\S+) npx domicile serve --config (\S+)$/m.exec(r.stdout)
    assert.ok(m, `prints how to open the console:\n${r.stdout}`)
    const [, token, config] = m
    const server = spawn(process.execPath, [DOMICILE_BIN, 'serve', '--config', config!, '--port', '0', '--json'], {
      cwd: REPO_ROOT, env: { ...process.env, DOMICILE_ADMIN_TOKEN: token }, stdio: ['ignore', 'pipe', 'pipe'],
    })
    try {
      let out = ''
      server.stdout!.setEncoding('utf8')
      while (!out.includes('\n')) {
        const [chunk] = (await Promise.race([once(server.stdout!, 'data'), once(server, 'exit').then(() => { throw new Error('serve exited early') })])) as [string]
        out += chunk
      }
      const { url } = JSON.parse(out.split('\n')[0]!) as { url: string }
      const page = await fetch(url + '/')
      assert.equal(page.status, 200)
      assert.match(await page.text(), /Domicile/)
      const tenants = await fetch(url + '/admin/api/tenants', { headers: { Authorization: `Bearer ${token}` } })
      assert.equal(tenants.status, 200)
      const body = (await tenants.json()) as { tenants: Array<{ id: string; region: string }> }
      assert.deepEqual(Object.fromEntries(body.tenants.map((t) => [t.id, t.region])), HOME, 'the console sees the demo\'s tenants in their regions')
    } finally {
      server.kill('SIGTERM')
      if (server.exitCode === null) await once(server, 'exit')
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('demo --adopt --json: the adoption path on embedded regions passes every check; the European companies end in eu-west-1 with every row, nothing in plaintext', async () => {
  const r = await runCli(['demo', '--adopt', '--json'], { cwd: REPO_ROOT, timeoutMs: 180_000 })
  assert.equal(r.code, 0, `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`)
  const out = JSON.parse(r.stdout) as {
    ok: boolean; kept: boolean; dir: string; checks: Array<{ name: string; ok: boolean }>
    adopt: { tenants: number; encrypted: Array<{ column: string; sealed: number; plaintext: number }>; placement: Array<{ tenant: string; before: string; after: string; rows: Record<string, number> }> }
  }
  assert.equal(out.ok, true)
  assert.ok(out.checks.length >= 12 && out.checks.every((c) => c.ok), JSON.stringify(out.checks.filter((c) => !c.ok)))
  assert.equal(out.kept, false)
  assert.equal(existsSync(out.dir), false, 'the working directory is removed without --keep')
  // Companies 1, 3, 5 are European (DE, FR, NL): moved, every row with them; the others stay.
  assert.deepEqual(out.adopt.placement.map((p) => `${p.tenant}:${p.after}`), ['1:eu-west-1', '2:us-east-1', '3:eu-west-1', '4:us-east-1', '5:eu-west-1', '6:us-east-1'])
  for (const p of out.adopt.placement) {
    const other = p.after === 'eu-west-1' ? 'us-east-1' : 'eu-west-1'
    assert.equal(p.rows[other], 0, `tenant ${p.tenant} has no rows in ${other}`)
    assert.equal(p.rows[p.after], 61, `tenant ${p.tenant} has its 1 + 40 + 20 rows in ${p.after}`)
  }
  assert.deepEqual(out.adopt.encrypted.map((e) => [e.column, e.plaintext, e.sealed]), [['contacts.email', 0, 240], ['contacts.full_name', 0, 240], ['invoices.payer_iban', 0, 120]])
})
