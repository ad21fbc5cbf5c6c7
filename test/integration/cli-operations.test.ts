/**
 * The online-operation commands, end to end through the real `domicile` command on embedded
 * regions (the example config of `domicile init`): key rotation, shredding evidence, destruction
 * and a tenant move, each with --json, as a script would drive them.
 */
import { strict as assert } from 'node:assert'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { makeTempDir, runCli, runCliJson, runCliOk, type TempDir } from '../support/cli.js'

describe('CLI: online operations', () => {
  let dir: TempDir
  const cwd = () => ({ cwd: dir.path, timeoutMs: 180_000 })
  before(async () => {
    dir = await makeTempDir('cli-ops-')
    await runCliOk(['init'], cwd())
    await runCliOk(['migrate'], cwd())
    for (const t of ['acme', 'globex']) {
      await runCliOk(['tenant', 'add', t, '--region', 'eu-west-1', '--custody', 'kms'], cwd())
      await runCliOk(['rows', 'insert', t, 'customers', '--data', JSON.stringify({ id: 'c1', name: 'Ada', email: `ada@${t}.example`, tax_id: 'DE1' })], cwd())
    }
  })
  after(async () => {
    await dir?.cleanup()
  })

  test('key rotate, rotate-data and rotate-index finish and the data stays readable', async () => {
    const kek = await runCliJson<{ state: string; keys: number }>(['key', 'rotate', 'acme', '--json'], cwd())
    assert.equal(kek.state, 'done')
    assert.ok(kek.keys >= 2)
    const data = await runCliJson<{ state: string; rows: number }>(['key', 'rotate-data', 'acme', '--json'], cwd())
    assert.equal(data.state, 'done')
    const index = await runCliJson<{ state: string }>(['key', 'rotate-index', 'acme', '--json'], cwd())
    assert.equal(index.state, 'done')
    const found = await runCliJson<unknown[]>(['rows', 'find', 'acme', 'customers', '--where', '{"email":"ADA@acme.example"}', '--json'], cwd())
    assert.equal(found.length, 1)
    const revealed = await runCliJson<{ value: unknown }>(['rows', 'reveal', 'acme', 'customers', 'c1', 'tax_id', '--purpose', 'test', '--json'], cwd())
    assert.equal(revealed.value, 'DE1')
  })

  test('shred verify after a revoke writes a signed certificate that check accepts and an edit breaks', async () => {
    await runCliOk(['key', 'revoke', 'globex'], cwd())
    const out = join(dir.path, 'globex-cert.json')
    await runCli(['shred', 'verify', 'globex', '--out', out, '--json'], cwd())
    const cert = JSON.parse(await readFile(out, 'utf8')) as { payload: { erase: { reversible: boolean } } }
    assert.equal(cert.payload.erase.reversible, true, 'a revoked key can be restored: the erase is reversible')
    const pub = await runCliOk(['shred', 'public-key'], cwd())
    assert.match(pub.stdout, /BEGIN PUBLIC KEY/)
    await runCliOk(['shred', 'check', out], cwd())
    const edited = join(dir.path, 'edited.json')
    await writeFile(edited, JSON.stringify({ ...cert, payload: { ...cert.payload, erase: { ...cert.payload.erase, reversible: false } } }))
    const bad = await runCli(['shred', 'check', edited], cwd())
    assert.equal(bad.code, 1, 'a certificate that does not verify exits 1 (not an input error)')
    assert.match(bad.stderr, /^domicile: ERR_SIGNATURE_INVALID: /)
  })

  test('key destroy --yes is irreversible: restore is refused and the data is gone', async () => {
    await runCliJson(['key', 'destroy', 'globex', '--yes', '--json'], cwd())
    const restore = await runCli(['key', 'restore', 'globex', '--json'], cwd())
    assert.equal(restore.code, 1)
    assert.equal((JSON.parse(restore.stdout) as { error: { code: string } }).error.code, 'ERR_KEY_DESTROYED')
    const reveal = await runCli(['rows', 'reveal', 'globex', 'customers', 'c1', 'tax_id', '--purpose', 'test', '--json'], cwd())
    assert.notEqual(reveal.code, 0)
  })

  test('tenant move --to another region, with --json', async () => {
    const r = await runCliJson<{ state: string; rows: number; freezeMs: number }>(['tenant', 'move', 'acme', '--to', 'us-east-1', '--json'], cwd())
    assert.equal(r.state, 'done')
    assert.equal(typeof r.freezeMs, 'number')
    const shown = await runCliJson<{ region: string }>(['tenant', 'show', 'acme', '--json'], cwd())
    assert.equal(shown.region, 'us-east-1')
    const revealed = await runCliJson<{ value: unknown }>(['rows', 'reveal', 'acme', 'customers', 'c1', 'tax_id', '--purpose', 'after move', '--json'], cwd())
    assert.equal(revealed.value, 'DE1')
  })
})
