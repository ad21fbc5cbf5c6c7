/**
 * Chaos, issue #14 item 6: leak checks. A representative workload runs with everything the process
 * emits captured (stdout, stderr, console.*, process.emitWarning; test/support/chaos-leaks.ts),
 * every error it meets handed to the capture (message, code, path, toJSON, the whole cause chain),
 * the audit records read back from the stores, and the output of CLI commands run with --json.
 * Nothing of it may hold a plaintext the test wrote into a sensitive field, or key bytes the test
 * knows (the BYOK material it imported, the local root keys, every data and index key unwrapped
 * from the stores), in any of the forms the capture looks for.
 *
 * Workload (real PostgreSQL, one cluster holding the region and the control plane, the README's
 * two-role setup: test/support/chaos-env.ts; the CLI runs against the same config): inserts, blind-index finds, reveals, updates, one-shot
 * calls, hostile SQL in a scope with a plaintext as the parameter, failed reveals after a
 * revocation, a tampered ciphertext, bad input carrying plaintexts, duplicate keys; then the CLI
 * (tenant add, rows insert/get/find/reveal/update, key revoke/restore, a refused reveal and a
 * refused insert, audit tail and verify, report).
 *
 * Budget: about 20 s wall (one initdb, a dozen CLI commands). Seeded; the seed is printed.
 */
import { after, before, describe, test } from 'node:test'
import { strict as assert } from 'node:assert'
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { isDomicileError } from '../../src/errors.js'
import { internalsOf } from '../../src/domicile-internals.js'
import { keyWrapContext } from '../../src/keys/keyring.js'
import type { Domicile } from '../../src/index.js'
import { importByokMaterial, newKeyMaterial } from '../support/domicile-fixture.js'
import { makeTempDir, runCli, type CliResult, type TempDir } from '../support/cli.js'
import { postgresUnavailable } from '../support/pg-cluster.js'
import { startChaosEnv, type ChaosEnv } from '../support/chaos-env.js'
import { EXAMPLE_SCHEMA } from '../../src/cli/templates.js'
import { chaosRng } from '../support/chaos-rng.js'
import { recordFigures } from '../support/chaos-figures.js'
import { startLeakCapture, type LeakCapture } from '../support/chaos-leaks.js'

const rng = chaosRng('leak-check')
const EU = 'eu-west-1'

/** A distinctive plaintext (no false positives): the seed's stream makes it reproducible. */
function canary(kind: string): string {
  const tag = Math.floor(rng.next() * 2 ** 48).toString(36)
  return kind === 'email' ? `lk-${tag}@canary.example` : `LK-${kind}-${tag}`
}

describe('chaos: leak capture self-check', () => {
  test('the capture finds a plaintext and key bytes written to the console, stderr, a warning and an error', async () => {
    const c = startLeakCapture('self-check')
    const key = randomBytes(32)
    const plain = canary('self')
    c.plaintext(plain)
    c.keyBytes('self-check key', key)
    try {
      console.log('# leak self-check: %s', Buffer.from(plain).toString('hex'))
      process.stderr.write(`# leak self-check: ${key.toString('base64')}\n`)
      process.emitWarning(`leak self-check ${key.subarray(4, 20).toString('hex')}`)
      c.error('self', new Error('outer', { cause: new Error(`inner ${JSON.stringify(plain)}`) }))
      await new Promise((r) => setImmediate(r))
    } finally {
      c.stop()
    }
    const forms = c.findings().map((f) => `${f.source}/${f.form}`)
    assert.ok(forms.includes('console.log/hex'), forms.join(' '))
    assert.ok(forms.includes('stderr/base64'), forms.join(' '))
    assert.ok(forms.some((f) => f.startsWith('emitWarning/hex window')), forms.join(' '))
    assert.ok(forms.includes('error:self/raw'), forms.join(' '))
  })
})

describe('chaos: no plaintext or key bytes in anything the process emits', { skip: postgresUnavailable() ?? false }, () => {
  let leaks: LeakCapture
  let env: ChaosEnv
  let d: Domicile
  let cliDir: TempDir
  const figures = { writes: 0, verified: 0, errors: 0, cli: 0, keys: 0 }
  const written = new Map<string, { tenant: string; email: string; taxId: string }>()

  /** The region's store read directly as the superuser (no Domicile, no RLS). */
  const storeRows = async (sql: string, params: unknown[] = [], where = EU): Promise<Array<Record<string, unknown>>> =>
    env.withDirect(where, async (c) => (await c.query(sql, params)).rows as Array<Record<string, unknown>>)

  /** Runs `f`, which must fail; hands the error to the capture and returns it. */
  async function refused(what: string, f: () => Promise<unknown>): Promise<unknown> {
    try {
      await f()
    } catch (e) {
      leaks.error(what, e)
      figures.errors++
      return e
    }
    assert.fail(`${what}: expected a failure`)
  }

  before(async () => {
    leaks = startLeakCapture('leak-check')
    const material = newKeyMaterial()
    leaks.keyBytes('BYOK material (lk-byok)', material)
    env = await startChaosEnv({ name: 'leak-check', clusters: 1, regions: { [EU]: 0 }, schemaSource: EXAMPLE_SCHEMA })
    d = await env.open()
    for (const [id, custody] of [['lk-kms', 'kms'], ['lk-byok', 'byok']] as const) {
      const p = await d.keys.provision(id, { custody })
      await d.addTenant(id, { region: EU, key: p.key, keyState: p.keyState })
    }
    await importByokMaterial(d, 'lk-byok', material)
    const rootKey = (await readFile(`${join(env.dir, 'keys')}.root.key`, 'utf8')).trim()
    leaks.keyBytes('local root key', Buffer.from(rootKey, 'base64'))
    cliDir = await makeTempDir('leak-check-cli-')
  })

  after(async () => {
    try {
      if (leaks) {
        leaks.stop()
        const found = leaks.findings()
        const s = leaks.stats()
        recordFigures({
          scenario: 'leak-check', title: 'Leak check: logs, warnings, errors, audit records and CLI output hold no plaintext and no key bytes',
          faultsInjected: figures.errors, writesAcknowledged: figures.writes, writesVerified: figures.verified, leaksFound: found.length,
          extra: { seed: rng.seed, capturedChunks: s.chunks, capturedBytes: s.bytes, errorsInspected: s.errors, secretsWatched: s.secrets, cliCommands: figures.cli, keysWatched: figures.keys },
        })
        assert.deepEqual(found, [], 'leaks found')
      }
    } finally {
      leaks?.stop()
      await d?.close()
      await env?.destroy()
      await cliDir?.cleanup()
    }
  })

  test('library workload: inserts, finds, reveals, updates, revocation, tampering, hostile SQL and bad input', async () => {
    for (const tenant of ['lk-kms', 'lk-byok']) {
      for (let i = 0; i < 12; i++) {
        const row = { id: `${tenant}-${i}`, email: canary('email'), taxId: canary('tax') }
        leaks.plaintext(row.email)
        leaks.plaintext(row.taxId)
        if (i % 2 === 0) await d.withTenant(tenant, (s) => s.table('customers').insert({ id: row.id, name: `n${i}`, email: row.email, tax_id: row.taxId }))
        else await d.tenant(tenant).table('customers').insert({ id: row.id, name: `n${i}`, email: row.email, tax_id: row.taxId })
        written.set(row.id, { tenant, ...row })
        figures.writes++
      }
    }
    // Reads: blind-index finds, reveals, revealRows, lists, one-shot reads; their results are not emitted.
    for (const [id, w] of written) {
      const found = await d.tenant(w.tenant).table('customers').find({ email: w.email.toUpperCase() })
      assert.deepEqual(found.map((r) => r.id), [id])
      const back = await d.withTenant(w.tenant, async (s) => {
        const [r] = await s.revealRows([(await s.table('customers').get(id))!], { purpose: 'leak check', actor: 'chaos' })
        return r!
      })
      assert.deepEqual([back.email, back.tax_id], [w.email, w.taxId])
    }
    // Rows printed the way an application would log them: sealed fields print as [sealed].
    const page = await d.tenant('lk-kms').table('customers').list({ limit: 5 })
    console.log('# leak-check: rows as an application logs them: %o %s', page.rows[0], JSON.stringify(page.rows.slice(0, 2)))
    // Updates of sealed fields.
    for (const [id, w] of [...written].filter((_, i) => i % 5 === 0)) {
      const taxId = canary('tax')
      leaks.plaintext(taxId)
      await d.tenant(w.tenant).table('customers').update(id, { tax_id: taxId })
      w.taxId = taxId // the same row: its final value is what the last check reads
    }

    // Hostile SQL in a scope, with a plaintext as its parameter: the database's error text names the value.
    const some = [...written.values()][0]!
    await refused('sql cast', () => d.withTenant('lk-kms', (s) => s.sql('SELECT $1::int', [some.email])))
    await refused('sql jsonb', () => d.withTenant('lk-kms', (s) => s.sql("SELECT ('x' || $1)::jsonb", [some.taxId])))
    await refused('sql raise', () => d.withTenant('lk-kms', (s) => s.sql(`DO $$ BEGIN RAISE EXCEPTION '%', '${some.taxId}'; END $$`)))
    // Bad input that carries plaintexts: wrong types, unknown columns, a duplicate key, predicates on sealed columns.
    const p = canary('email')
    leaks.plaintext(p)
    await refused('wrong type', () => d.tenant('lk-kms').table('customers').insert({ id: 'bad1', name: 'n', email: { nested: p } } as never))
    await refused('unknown column', () => d.tenant('lk-kms').table('customers').insert({ id: 'bad2', name: 'n', email: p, nope: p } as never))
    await refused('duplicate', () => d.tenant('lk-kms').table('customers').insert({ id: 'lk-kms-0', name: 'n', email: p, tax_id: p }))
    await refused('range on sealed', () => d.tenant('lk-kms').table('customers').find({ email: { $gt: p } } as never))
    await refused('hostile tenant', () => d.withTenant(`${p}'; --`, (s) => s.table('customers').get('x')))
    await refused('reveal of a non-sealed value', () => d.withTenant('lk-kms', (s) => s.reveal(p, { purpose: 'leak check' })))

    // Tampered ciphertext: another row's value copied over one (AAD binds the row), and a flipped bit.
    const [a, b] = [...written.entries()].filter(([, w]) => w.tenant === 'lk-kms')
    const [srcRow] = await storeRows('SELECT tax_id FROM customers WHERE tenant_id = $1 AND id = $2', ['lk-kms', b![0]])
    await storeRows('UPDATE customers SET tax_id = $1 WHERE tenant_id = $2 AND id = $3', [srcRow!.tax_id, 'lk-kms', a![0]])
    const e1 = await refused('tampered copy', () => d.withTenant('lk-kms', async (s) => s.reveal((await s.table('customers').get(a![0]))!.tax_id, { purpose: 'leak check' })))
    assert.ok(isDomicileError(e1, 'ERR_DECRYPTION_FAILED'))
    const t = Buffer.from(srcRow!.tax_id as Uint8Array)
    t[t.length - 3] = t[t.length - 3]! ^ 0x10
    await storeRows('UPDATE customers SET tax_id = $1 WHERE tenant_id = $2 AND id = $3', [t, 'lk-kms', a![0]])
    await refused('tampered bit', () => d.withTenant('lk-kms', async (s) => s.reveal((await s.table('customers').get(a![0]))!.tax_id, { purpose: 'leak check' })))
    written.delete(a![0]) // its value is gone for good: not part of the final check
    figures.writes-- // destroyed on purpose (a fault this test injected), not a write the system lost

    // Revocation: reveals are refused (and audited as denied), other columns stay readable; then restored.
    await d.keys.revoke('lk-byok', 'chaos')
    for (const [id, w] of [...written].filter(([, w]) => w.tenant === 'lk-byok').slice(0, 4)) {
      const e = await refused('reveal after revoke', () => d.withTenant('lk-byok', async (s) => s.reveal((await s.table('customers').get(id))!.tax_id, { purpose: 'leak check' })))
      assert.ok(isDomicileError(e, 'ERR_KEY_REVOKED'), String(e))
      await refused('find after revoke', () => d.tenant('lk-byok').table('customers').find({ email: w.email }))
      assert.equal((await d.tenant('lk-byok').table('customers').get(id))?.id, id)
    }
    await d.keys.restore('lk-byok', 'chaos')

    // The stores: every data and index key of both tenants, unwrapped here, is a needle too.
    const keyRows = await storeRows('SELECT tenant_id, purpose, key_number, wrapped, provider, key_id FROM domicile_data_keys')
    const providers = internalsOf(d).providers!
    for (const k of keyRows) {
      const provider = await providers.runtime(String(k.provider))
      const plain = await provider.unwrapKey({ keyId: String(k.key_id), ciphertext: new Uint8Array(k.wrapped as Uint8Array), context: keyWrapContext(String(k.tenant_id), EU, k.purpose as 'data' | 'index', Number(k.key_number)) })
      leaks.keyBytes(`${String(k.purpose)} key #${String(k.key_number)} of ${String(k.tenant_id)}`, plain)
      figures.keys++
    }
    assert.ok(figures.keys >= 4, 'data and index keys of both tenants are watched')
    // Audit records, as stored.
    leaks.text('region audit', JSON.stringify(await storeRows('SELECT * FROM domicile_audit'), (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v)))
    const control = await storeRows('SELECT * FROM domicile_control_audit', [], 'control')
    leaks.text('control audit', JSON.stringify(control, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v)))
    // Every sealed column holds ciphertext only.
    const stored = await storeRows('SELECT id, email, tax_id FROM customers')
    for (const r of stored) for (const col of ['email', 'tax_id'] as const) {
      const v = r[col] as Uint8Array | null
      if (v === null) continue
      leaks.text(`stored ${col}`, Buffer.from(v))
    }
    // The final state: every acknowledged row that the test did not destroy on purpose opens to its last value.
    for (const [id, w] of written) {
      assert.equal(await d.withTenant(w.tenant, async (s) => s.reveal((await s.table('customers').get(id))!.tax_id, { purpose: 'leak check' })), w.taxId)
      figures.verified++
    }
  })

  test('CLI commands with --json: output, errors and audit hold no plaintext and no key bytes', async () => {
    const cwd = cliDir.path
    const cli = async (args: readonly string[], scan = true): Promise<CliResult> => {
      const r = await runCli([...args, '--config', env.configPath], { cwd, timeoutMs: 90_000 })
      figures.cli++
      if (scan) leaks.text(`cli ${args.slice(0, 2).join(' ')}`, r.stdout + r.stderr)
      return r
    }
    const ok = async (args: readonly string[], scan = true): Promise<CliResult> => {
      const r = await cli(args, scan)
      assert.equal(r.code, 0, `domicile ${args.join(' ')}: ${r.stderr}`)
      return r
    }
    await ok(['tenant', 'add', 'cli-acme', '--region', EU, '--json'])
    const row = { id: 'c1', name: 'Ada', email: canary('email'), tax_id: canary('tax') }
    leaks.plaintext(row.email)
    leaks.plaintext(row.tax_id)
    await ok(['rows', 'insert', 'cli-acme', 'customers', '--data', JSON.stringify(row), '--json'])
    figures.writes++
    await ok(['rows', 'get', 'cli-acme', 'customers', 'c1', '--json'])
    const found = await ok(['rows', 'find', 'cli-acme', 'customers', '--where', JSON.stringify({ email: row.email.toUpperCase() }), '--json'])
    assert.match(found.stdout, /"c1"/)
    // A reveal prints the plaintext by design (that is what it is for): checked, not scanned.
    const rev = await ok(['rows', 'reveal', 'cli-acme', 'customers', 'c1', 'tax_id', '--purpose', 'leak check', '--json'], false)
    assert.deepEqual(JSON.parse(rev.stdout), { value: row.tax_id })
    assert.equal(rev.stderr.includes(row.tax_id), false, 'the reveal prints the value on stdout only')
    figures.verified++
    const newTax = canary('tax')
    leaks.plaintext(newTax)
    await ok(['rows', 'update', 'cli-acme', 'customers', 'c1', '--data', JSON.stringify({ tax_id: newTax }), '--json'])
    // Refused commands: bad data carrying a plaintext, then a reveal after the kill switch.
    const bad = await cli(['rows', 'insert', 'cli-acme', 'customers', '--data', JSON.stringify({ id: 'c2', name: 'x', email: { v: newTax } }), '--json'])
    assert.equal(bad.code, 2, bad.stderr)
    await ok(['key', 'revoke', 'cli-acme', '--json'])
    const denied = await cli(['rows', 'reveal', 'cli-acme', 'customers', 'c1', 'tax_id', '--purpose', 'leak check', '--json'])
    assert.equal(denied.code, 1)
    assert.equal((JSON.parse(denied.stdout) as { error: { code: string } }).error.code, 'ERR_KEY_REVOKED')
    await ok(['key', 'restore', 'cli-acme', '--json'])
    await ok(['audit', 'tail', '--tenant', 'cli-acme', '--json'])
    await ok(['audit', 'verify', '--json'])
    await ok(['report', 'cli-acme', '--format', 'json'])
  })
})
