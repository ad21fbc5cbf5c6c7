/**
 * The `domicile` command as users and scripts run it: real child processes (`node bin/domicile.mjs`)
 * in one temp directory initialised once and shared by the tests in this file (they run in order;
 * each invocation opens the embedded stores, so the count is kept modest).
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createPublicKey, publicEncrypt, randomBytes, constants } from 'node:crypto'
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import { userInfo } from 'node:os'
import { join } from 'node:path'
import { EXAMPLE_SCHEMA, exampleConfig } from '../../src/cli/templates.js'
import { INPUT_ERROR_CODES } from '../../src/cli/exit-codes.js'
import { createLocalKeyProvider } from '../../src/keys/providers/local/index.js'
import { REPO_ROOT, makeTempDir, runCli, runCliJson, runCliOk, type CliResult, type TempDir } from '../support/cli.js'

/** The reveal audit records of a region (read from the embedded store while no command runs). */
async function revealAudit(dataDir: string): Promise<Array<{ actor: string | null; purpose: string }>> {
  const { PGlite } = await import('@electric-sql/pglite')
  const db = new PGlite(dataDir)
  try {
    const r = await db.query<{ actor: string | null; purpose: string }>(
      "SELECT actor, detail->>'purpose' AS purpose FROM domicile_audit WHERE type = 'field.reveal' ORDER BY id")
    return r.rows
  } finally {
    await db.close()
  }
}

const TENANT_KEYS = ['cell', 'createdAt', 'custody', 'id', 'keyId', 'keyState', 'provider', 'region', 'status', 'updatedAt', 'version']

interface TenantJson {
  id: string; region: string; cell: string; status: string; custody: string | null; provider: string | null; keyId: string | null
  keyState: string; version: number; createdAt: string; updatedAt: string
}

function assertTenantShape(t: TenantJson): void {
  assert.deepEqual(Object.keys(t).sort(), TENANT_KEYS)
  assert.ok(!Number.isNaN(Date.parse(t.createdAt)) && !Number.isNaN(Date.parse(t.updatedAt)), 'ISO timestamps')
  assert.equal(typeof t.version, 'number')
}

/** Asserts a failed run: exit status, the error code on stderr and in the --json error object. */
function assertFailure(r: CliResult, exit: number, code: string): void {
  assert.equal(r.code, exit, `exit status (stderr: ${r.stderr})`)
  assert.match(r.stderr, new RegExp(`^domicile: ${code}: `, 'm'))
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace')
  if (r.stdout.trim() !== '') assert.equal((JSON.parse(r.stdout) as { error: { code: string } }).error.code, code)
}

describe('domicile CLI', () => {
  let dir: TempDir
  let cwd: string
  const cli = (args: readonly string[]): Promise<CliResult> => runCli(args, { cwd })
  const json = <T>(args: readonly string[]): Promise<T> => runCliJson<T>(args, { cwd })

  before(async () => {
    dir = await makeTempDir('cli-')
    cwd = dir.path
  })
  after(async () => {
    await dir?.cleanup()
  })

  test('--version prints the package version', async () => {
    const { version } = JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }
    assert.equal((await runCliOk(['--version'], { cwd })).stdout, `${version}\n`)
    assert.deepEqual(await json(['--version', '--json']), { version })
  })

  test('help prints the usage and the exit statuses; unknown commands and flags print it and exit 2', async () => {
    const help = await runCliOk(['help'], { cwd })
    assert.match(help.stdout, /tenant add ID --region R/)
    assert.match(help.stdout, /rows reveal TENANT TABLE ID COLUMN --purpose TEXT/)
    assert.match(help.stdout, /rows update TENANT TABLE ID --data JSON/)
    assert.match(help.stdout, /rows delete TENANT TABLE ID/)
    assert.match(help.stdout, /Exit status:\n\s+0\s+ok\n\s+1\s+.*\n[\s\S]*\n\s+2\s+bad usage, configuration or input/)
    for (const code of INPUT_ERROR_CODES) assert.ok(help.stdout.includes(code), `help names ${code} under exit status 2`)
    const group = await runCliOk(['tenant', '--help'], { cwd })
    assert.match(group.stdout, /domicile tenant suspend ID/)

    const unknown = await cli(['frobnicate'])
    assert.equal(unknown.code, 2)
    assert.match(unknown.stderr, /unknown command "frobnicate"/)
    assert.match(unknown.stderr, /Usage: domicile <command>/)
    const flag = await cli(['tenant', 'add', 'acme', '--region', 'eu-west-1', '--bogus'])
    assert.equal(flag.code, 2)
    assert.match(flag.stderr, /--bogus/)
    assert.match(flag.stderr, /Usage: domicile tenant add ID --region R/)
  })

  test('init writes the example config and schema, and refuses to overwrite them without --force', async () => {
    const r = await json<{ config: string; schema: string; next: string }>(['init', '--dir', cwd, '--json'])
    assert.equal(r.config, join(cwd, 'domicile.config.json'))
    assert.equal(r.schema, join(cwd, 'domicile.schema.mjs'))
    assert.match(r.next, /^domicile migrate/)
    assert.deepEqual(JSON.parse(await readFile(r.config, 'utf8')), exampleConfig())
    assert.equal(await readFile(r.schema, 'utf8'), EXAMPLE_SCHEMA)

    const other = join(cwd, 'other')
    await mkdir(other)
    await writeFile(join(other, 'domicile.config.json'), '{"mine":true}')
    const refused = await cli(['init', '--dir', other])
    assertFailure(refused, 2, 'ERR_INPUT_INVALID')
    assert.match(refused.stderr, /already exists.*--force/)
    assert.equal(await readFile(join(other, 'domicile.config.json'), 'utf8'), '{"mine":true}', 'left untouched')
    await assert.rejects(stat(join(other, 'domicile.schema.mjs')), 'nothing written when refused')

    const forced = await runCliOk(['init', '--dir', other, '--force'], { cwd })
    assert.match(forced.stdout, /wrote .*domicile\.config\.json/)
    assert.match(forced.stdout, /domicile migrate/)
    assert.deepEqual(JSON.parse(await readFile(join(other, 'domicile.config.json'), 'utf8')), exampleConfig())
  })

  test('a bad or missing config exits 2 naming the path and what is expected', async () => {
    const cfg = exampleConfig() as { regions: Record<string, Record<string, unknown>> }
    cfg.regions['eu-west-1']!.driver = 'mysql'
    await writeFile(join(cwd, 'other', 'bad.json'), JSON.stringify(cfg))
    const bad = await cli(['region', 'list', '--config', join(cwd, 'other', 'bad.json'), '--json'])
    assertFailure(bad, 2, 'ERR_CONFIG_INVALID')
    assert.ok(bad.stderr.includes('regions.eu-west-1.driver: expected "pglite" | "postgres"'), bad.stderr)
    assert.ok(!bad.stderr.includes('mysql'), 'the bad value is not echoed')

    const empty = join(cwd, 'empty')
    await mkdir(empty)
    const missing = await runCli(['tenant', 'list'], { cwd: empty })
    assertFailure(missing, 2, 'ERR_CONFIG_INVALID')
    assert.match(missing.stderr, /domicile init/)
  })

  test('bad input exits 2 with ERR_INPUT_INVALID', async () => {
    for (const args of [
      ['rows', 'insert', 'acme', 'customers', '--data', '[1,2]', '--json'],
      ['rows', 'insert', 'acme', 'customers', '--data', '{not json'],
      ['rows', 'find', 'acme', 'customers', '--where', '"c1"'],
      ['rows', 'list', 'acme', 'customers', '--limit', '0'],
      ['rows', 'reveal', 'acme', 'customers', 'c1', 'email'],
      ['tenant', 'add', 'acme'],
      ['tenant', 'add', 'acme', '--region', 'eu-west-1', '--custody', 'sometimes'],
      ['rows', 'get', 'acme', 'customers'],
      ['rows', 'update', 'acme', 'customers', 'c1'],
      ['rows', 'update', 'acme', 'customers', 'c1', '--data', '[]'],
      ['rows', 'delete', 'acme', 'customers'],
      ['rows', 'insert', 'acme', 'customers', '--data', '{"id":"c9","name":"A\\u0000B"}', '--json'],
      ['rows', 'find', 'acme', 'customers', '--where', '{"name":"\\u0000"}'],
      ['rows', 'reveal', 'acme', 'customers', 'c1', 'email', '--purpose', 'p', '--actor', ''],
      ['key', 'revoke', 'acme', '--actor', ' '],
    ]) {
      assertFailure(await cli(args), 2, 'ERR_INPUT_INVALID')
    }
  })

  test('migrate creates every store and is idempotent', async () => {
    for (let i = 0; i < 2; i++) {
      // A fresh migrate initialises three embedded stores: minutes when the machine is busy.
      const r = await runCliJson<Array<{ store: string; ok: boolean; statements: number }>>(['migrate', '--json'], { cwd, timeoutMs: 300_000 })
      assert.deepEqual(r.map((s) => s.store).sort(), ['control-plane', 'eu-west-1', 'us-east-1'])
      assert.ok(r.every((s) => s.ok && s.statements > 0), JSON.stringify(r))
    }
  })

  test('region list --json', async () => {
    const r = await json<Array<Record<string, unknown>>>(['region', 'list', '--json'])
    assert.deepEqual(r, [
      { name: 'us-east-1', region: 'us-east-1', cell: 'main', driver: 'pglite', jurisdiction: 'US', reachable: true },
      { name: 'eu-west-1', region: 'eu-west-1', cell: 'main', driver: 'pglite', jurisdiction: 'EU', reachable: true },
    ])
  })

  let acmeKeyId = ''

  test('tenant add, show, list, suspend and resume', async () => {
    const acme = await json<TenantJson>(['tenant', 'add', 'acme', '--region', 'eu-west-1', '--custody', 'kms', '--json'])
    assertTenantShape(acme)
    assert.deepEqual({ ...acme, keyId: typeof acme.keyId, createdAt: '', updatedAt: '' },
      { id: 'acme', region: 'eu-west-1', cell: 'main', status: 'active', custody: 'kms', provider: 'local', keyId: 'string', keyState: 'enabled', version: 1, createdAt: '', updatedAt: '' })
    acmeKeyId = acme.keyId!
    const plain = await json<TenantJson & { nextSteps?: string[] }>(['tenant', 'add', 'plain', '--region', 'us-east-1', '--custody', 'none', '--json'])
    assert.match(plain.nextSteps?.[0] ?? '', /tenant bind-key plain/)
    delete plain.nextSteps
    assert.deepEqual([plain.custody, plain.provider, plain.keyId, plain.keyState], [null, null, null, 'none'])

    assert.deepEqual(await json<TenantJson>(['tenant', 'show', 'acme', '--json']), acme)
    const list = await json<TenantJson[]>(['tenant', 'list', '--json'])
    for (const t of list) assertTenantShape(t)
    assert.deepEqual(list.map((t) => t.id).sort(), ['acme', 'plain'])
    assert.deepEqual(list.find((t) => t.id === 'plain'), plain)

    assert.equal((await json<TenantJson>(['tenant', 'suspend', 'plain', '--json'])).status, 'suspended')
    assertFailure(await cli(['rows', 'list', 'plain', 'customers', '--json']), 1, 'ERR_TENANT_SUSPENDED')
    assert.equal((await json<TenantJson>(['tenant', 'resume', 'plain', '--json'])).status, 'active')

    assertFailure(await cli(['tenant', 'add', 'acme', '--region', 'us-east-1', '--custody', 'kms', '--json']), 1, 'ERR_TENANT_EXISTS')
    assertFailure(await cli(['tenant', 'add', 'zeta', '--region', 'ap-south-1', '--json']), 2, 'ERR_REGION_UNKNOWN')
    assertFailure(await cli(['tenant', 'add', 'zeta', '--region', 'eu-west-1', '--custody', 'kms', '--provider', 'nope', '--json']), 2, 'ERR_KEY_PROVIDER_UNKNOWN')
  })

  test('rows insert, get, find and list round trip, with pagination by nextCursor', async () => {
    const c1 = await json<Record<string, unknown>>(['rows', 'insert', 'acme', 'customers', '--json', '--data',
      JSON.stringify({ id: 'c1', name: 'Ada', email: 'ada@acme.example', tax_id: 'GB-1' })])
    assert.deepEqual(c1, { id: 'c1', name: 'Ada', email: '[sealed]', tax_id: '[sealed]', plan: null })
    const human = await runCliOk(['rows', 'insert', 'acme', 'customers', '--data', JSON.stringify({ id: 'c2', name: 'Grace', plan: 'pro' })], { cwd })
    assert.match(human.stdout, /^plan\s+pro$/m)

    assert.deepEqual(await json(['rows', 'get', 'acme', 'customers', 'c1', '--json']), c1)
    assert.deepEqual(await json(['rows', 'find', 'acme', 'customers', '--where', '{"email":"  ADA@acme.example"}', '--json']), [c1])

    const page1 = await json<{ rows: Array<{ id: string }>; nextCursor?: string }>(['rows', 'list', 'acme', 'customers', '--limit', '1', '--json'])
    assert.deepEqual(page1.rows.map((r) => r.id), ['c1'])
    assert.equal(typeof page1.nextCursor, 'string')
    const page2 = await json<{ rows: Array<{ id: string }>; nextCursor?: string }>(['rows', 'list', 'acme', 'customers', '--limit', '1', '--cursor', page1.nextCursor!, '--json'])
    assert.deepEqual(page2, { rows: [{ id: 'c2', name: 'Grace', email: null, tax_id: null, plan: 'pro' }] })

    const missing = await cli(['rows', 'get', 'acme', 'customers', 'c9', '--json'])
    assertFailure(missing, 1, 'ERR_ROW_NOT_FOUND')
    assertFailure(await cli(['rows', 'get', 'acme', 'nosuchtable', 'c1']), 2, 'ERR_TABLE_UNKNOWN')
    assertFailure(await cli(['rows', 'get', 'nobody', 'customers', 'c1', '--json']), 1, 'ERR_TENANT_UNKNOWN')
    assertFailure(await cli(['rows', 'get', 'plain', 'customers', 'c1']), 1, 'ERR_ROW_NOT_FOUND')
  })

  test('rows reveal needs a purpose; the kill switch: key revoke, status and restore', async () => {
    const reveal = ['rows', 'reveal', 'acme', 'customers', 'c1', 'email', '--purpose', 'cli test', '--actor', 'tester', '--json']
    assert.deepEqual(await json(reveal), { value: 'ada@acme.example' })
    assert.deepEqual(await json(['key', 'status', 'acme', '--json']),
      { tenant: 'acme', custody: 'kms', provider: 'local', keyId: acmeKeyId, state: 'enabled', providerState: 'enabled' })

    assert.equal((await json<TenantJson>(['key', 'revoke', 'acme', '--actor', 'tester', '--json'])).keyState, 'revoked')
    assertFailure(await cli(reveal), 1, 'ERR_KEY_REVOKED')
    assert.equal((await json<TenantJson>(['key', 'restore', 'acme', '--json'])).keyState, 'enabled')
    const text = await runCliOk(reveal.filter((a) => a !== '--json'), { cwd })
    assert.equal(text.stdout, 'ada@acme.example\n')
  })

  test('rows update changes a row (sealing sensitive columns again) and rows delete removes it', async () => {
    await runCliOk(['rows', 'insert', 'acme', 'customers', '--data', JSON.stringify({ id: 'u1', name: 'Old', email: 'old@acme.example' })], { cwd })
    const updated = await json<Record<string, unknown>>(['rows', 'update', 'acme', 'customers', 'u1', '--data', '{"name":"New","email":"new@acme.example"}', '--json'])
    assert.deepEqual(updated, { id: 'u1', name: 'New', email: '[sealed]', tax_id: null, plan: null })
    assert.deepEqual(await json(['rows', 'get', 'acme', 'customers', 'u1', '--json']), updated)
    assert.deepEqual(await json(['rows', 'find', 'acme', 'customers', '--where', '{"email":"new@acme.example"}', '--json']), [updated])
    assert.deepEqual(await json(['rows', 'find', 'acme', 'customers', '--where', '{"email":"old@acme.example"}', '--json']), [])
    assert.deepEqual(await json(['rows', 'reveal', 'acme', 'customers', 'u1', 'email', '--purpose', 'cli test', '--actor', 'tester', '--json']), { value: 'new@acme.example' })
    assertFailure(await cli(['rows', 'update', 'acme', 'customers', 'nope', '--data', '{"name":"x"}', '--json']), 1, 'ERR_ROW_NOT_FOUND')

    assert.deepEqual(await json(['rows', 'delete', 'acme', 'customers', 'u1', '--json']), { deleted: true })
    assertFailure(await cli(['rows', 'get', 'acme', 'customers', 'u1', '--json']), 1, 'ERR_ROW_NOT_FOUND')
    assertFailure(await cli(['rows', 'delete', 'acme', 'customers', 'u1', '--json']), 1, 'ERR_ROW_NOT_FOUND')
  })

  test('a reveal without --actor records the OS user; with --actor, the given name; never an empty actor', async () => {
    await runCliOk(['rows', 'reveal', 'acme', 'customers', 'c1', 'email', '--purpose', 'no actor given'], { cwd })
    await runCliOk(['rows', 'reveal', 'acme', 'customers', 'c1', 'email', '--purpose', 'actor given', '--actor', 'ops-bot'], { cwd })
    const audit = await revealAudit(join(cwd, '.domicile', 'regions', 'eu-west-1'))
    assert.deepEqual(audit.filter((a) => a.purpose === 'no actor given').map((a) => a.actor), [userInfo().username])
    assert.deepEqual(audit.filter((a) => a.purpose === 'actor given').map((a) => a.actor), ['ops-bot'])
    for (const a of audit) assert.ok(typeof a.actor === 'string' && a.actor.trim() !== '', `every reveal names its actor (${JSON.stringify(a)})`)
  })

  test('a key disabled at its provider: tenant list, tenant show and key status agree it is revoked', async () => {
    const statusOf = async (): Promise<{ list: string; show: string; status: string }> => ({
      list: (await json<TenantJson[]>(['tenant', 'list', '--json'])).find((t) => t.id === 'acme')!.keyState,
      show: (await json<TenantJson>(['tenant', 'show', 'acme', '--json'])).keyState,
      status: (await json<{ state: string }>(['key', 'status', 'acme', '--json'])).state,
    })
    assert.deepEqual(await statusOf(), { list: 'enabled', show: 'enabled', status: 'enabled' })
    // The key holder's side (as "keyproxy disable-key" or deleting BYOK material): not our kill switch.
    const provider = createLocalKeyProvider({ dir: join(cwd, '.domicile', 'keys') })
    try {
      await provider.disableKey(acmeKeyId)
      assert.deepEqual(await statusOf(), { list: 'revoked', show: 'revoked', status: 'revoked' })
      assert.match((await runCliOk(['tenant', 'list'], { cwd })).stdout, /^acme\s+eu-west-1\s+main\s+active\s+kms\s+local\s+revoked$/m)
      await provider.enableKey(acmeKeyId)
    } finally {
      await provider.close()
    }
    assert.deepEqual(await statusOf(), { list: 'enabled', show: 'enabled', status: 'enabled' })
  })

  test('BYOK: import job files, key import, then fields seal under the imported key', async () => {
    const t = await json<TenantJson>(['tenant', 'add', 'byo', '--region', 'us-east-1', '--custody', 'byok', '--json'])
    assert.equal(t.keyState, 'pending-import')
    const job = await json<{ wrappingKey: string; importToken: string; expiresAt: string }>(['key', 'import-job', 'byo', '--out', join(cwd, 'job'), '--json'])
    for (const f of [job.wrappingKey, job.importToken]) assert.equal((await stat(f)).mode & 0o777, 0o600, f)
    assert.ok(Date.parse(job.expiresAt) > Date.now())
    const wrappingKey = createPublicKey(await readFile(job.wrappingKey, 'utf8'))
    const material = publicEncrypt({ key: wrappingKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, randomBytes(32))
    await writeFile(join(cwd, 'job', 'key.wrapped'), material)

    await writeFile(join(cwd, 'job', 'empty'), '')
    assertFailure(await cli(['key', 'import', 'byo', '--material', join(cwd, 'job', 'empty'), '--token', job.importToken, '--json']), 2, 'ERR_KEY_IMPORT_INVALID')
    await writeFile(join(cwd, 'job', 'garbage'), randomBytes(384))
    assertFailure(await cli(['key', 'import', 'byo', '--material', join(cwd, 'job', 'garbage'), '--token', job.importToken, '--json']), 2, 'ERR_KEY_IMPORT_INVALID')
    const imported = await json<TenantJson>(['key', 'import', 'byo', '--material', join(cwd, 'job', 'key.wrapped'), '--token', job.importToken, '--json'])
    assert.equal(imported.keyState, 'enabled')
    await runCliOk(['rows', 'insert', 'byo', 'customers', '--data', '{"id":"b1","name":"B","email":"b@byo.example"}'], { cwd })
    assert.deepEqual(await json(['rows', 'reveal', 'byo', 'customers', 'b1', 'email', '--purpose', 'cli test', '--json']), { value: 'b@byo.example' })
  })
})
