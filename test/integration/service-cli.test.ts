/**
 * `domicile serve` as a real child process after `domicile init` + `migrate` (embedded PGlite
 * regions on disk): it prints its URL as one JSON line, answers /healthz and the admin API with the
 * token from $DOMICILE_ADMIN_TOKEN, and exits 0 on SIGTERM, having closed the stores (a later
 * command reads what the service wrote). Input errors exit 2.
 */
import { after, before, describe, test } from 'node:test'
import { strict as assert } from 'node:assert'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { DOMICILE_BIN, makeTempDir, runCli, runCliJson, runCliOk, type TempDir } from '../support/cli.js'

const ADMIN = randomBytes(24).toString('hex')

describe('domicile serve (child process)', { concurrency: false }, () => {
  let dir: TempDir

  before(async () => {
    dir = await makeTempDir('serve-')
    await runCliOk(['init'], { cwd: dir.path })
    await runCliOk(['migrate'], { cwd: dir.path, timeoutMs: 240_000 })
    await runCliOk(['tenant', 'add', 'acme', '--region', 'eu-west-1', '--custody', 'kms'], { cwd: dir.path, timeoutMs: 120_000 })
  })

  after(async () => {
    await dir?.cleanup()
  })

  test('starts, prints its URL, answers, and exits 0 on SIGTERM with the stores closed', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, DOMICILE_ADMIN_TOKEN: ADMIN }
    delete env.DOMICILE_CONFIG
    const child = spawn(process.execPath, [DOMICILE_BIN, 'serve', '--port', '0', '--json'], { cwd: dir.path, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s })
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
    try {
      const line = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no URL within 120 s; stderr: ${stderr}`)), 60_000)
        child.stdout.setEncoding('utf8').on('data', (s: string) => {
          stdout += s
          const nl = stdout.indexOf('\n')
          if (nl !== -1) { clearTimeout(timer); resolve(stdout.slice(0, nl)) }
        })
        child.once('exit', () => { clearTimeout(timer); reject(new Error(`exited early; stderr: ${stderr}`)) })
      })
      const { url } = JSON.parse(line) as { url: string }
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/)
      const health = await fetch(url + '/healthz')
      assert.equal(health.status, 200)
      assert.equal(((await health.json()) as { status: string }).status, 'ok')
      const issued = await fetch(url + '/admin/api/tenants/acme/api-keys', { method: 'POST', headers: { Authorization: `Bearer ${ADMIN}`, 'Content-Type': 'application/json' }, body: '{}' })
      assert.equal(issued.status, 201)
      const { apiKey } = (await issued.json()) as { apiKey: string }
      const created = await fetch(url + '/api/tables/customers/rows', { method: 'POST', headers: { Authorization: `Bearer ${apiKey}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ id: 'srv-1', name: 'Served', email: 'srv@example.eu' }) })
      assert.equal(created.status, 201)
      assert.equal((await fetch(url + '/admin/api/tenants')).status, 401)
      child.kill('SIGTERM')
      assert.equal(await exited, 0, stderr)
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    }
    // the row written through the service was flushed to the embedded store
    const row = await runCliJson<{ name: string; email: string }>(['rows', 'get', 'acme', 'customers', 'srv-1', '--json'], { cwd: dir.path, timeoutMs: 120_000 })
    assert.equal(row.name, 'Served')
    assert.equal(row.email, '[sealed]')
  })

  test('bad --port and --host exit 2', async () => {
    assert.equal((await runCli(['serve', '--port', 'eighty'], { cwd: dir.path })).code, 2)
    assert.equal((await runCli(['serve', '--host', 'a b'], { cwd: dir.path })).code, 2)
    const short = await runCli(['serve', '--port', '0'], { cwd: dir.path, env: { ...process.env, DOMICILE_ADMIN_TOKEN: 'short' }, timeoutMs: 120_000 })
    assert.equal(short.code, 2, short.stderr)
    assert.match(short.stderr, /DOMICILE_ADMIN_TOKEN/)
  })
})
