/**
 * One-step onboarding from the library (`onboardTenant`, `bindTenantKey`), on a real Domicile over
 * PGlite with the example schema: the default custody (kms) can write the sealed columns; custody
 * 'none' cannot, and the error says what to run; BYOK with the local provider is pending import
 * with the CLI's import commands as next steps; BYOK with a key in the customer's cloud account
 * (aws-kms, contract test on test/support/fake-kms-server.ts) is bound after a round trip; every
 * refusal leaves no directory row and no key behind. HYOK: onboarding-hyok.test.ts.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readdir } from 'node:fs/promises'
import { onboardTenant, bindTenantKey } from '../../src/index.js'
import { internalsOf } from '../../src/domicile-internals.js'
import { createDomicileFixture, importByokMaterial, newKeyMaterial, rejectsWithCode, type DomicileFixture } from '../support/domicile-fixture.js'
import { FakeKmsServer } from '../support/fake-kms-server.js'

describe('onboarding (library)', () => {
  let fx: DomicileFixture
  let kms: FakeKmsServer
  const savedEnv = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY }

  before(async () => {
    kms = await FakeKmsServer.start({ region: 'eu-west-1' })
    // The aws-kms provider signs with the SDK's default credential chain; the fake checks a signature is present.
    process.env.AWS_ACCESS_KEY_ID = 'AKIAFAKEFAKEFAKEFAKE'
    process.env.AWS_SECRET_ACCESS_KEY = 'fake-secret-access-key-for-contract-tests'
    fx = await createDomicileFixture({ regions: ['eu-west-1'], providers: { 'aws-kms': { kind: 'aws-kms', region: 'eu-west-1', endpoint: kms.endpoint } } })
  })
  after(async () => {
    await fx?.close()
    await kms?.close()
    if (savedEnv.id === undefined) delete process.env.AWS_ACCESS_KEY_ID
    else process.env.AWS_ACCESS_KEY_ID = savedEnv.id
    if (savedEnv.secret === undefined) delete process.env.AWS_SECRET_ACCESS_KEY
    else process.env.AWS_SECRET_ACCESS_KEY = savedEnv.secret
  })

  const keyFiles = async (): Promise<string[]> => (await readdir(fx.keysDir).catch(() => [] as string[])).filter((f) => f.endsWith('.json')).sort()
  const tenantRows = async (id: string): Promise<number> =>
    internalsOf(fx.domicile).controlPlane.withSession(async (s) => (await s.query('SELECT 1 FROM domicile_tenants WHERE id = $1', [id])).rows.length, { role: 'owner' })

  test('default custody is kms: the tenant can write and read the example table\'s sensitive column', async () => {
    const r = await onboardTenant(fx.domicile, { id: 'acme', region: 'eu-west-1' })
    assert.equal(r.tenant.key?.custody, 'kms')
    assert.equal(r.tenant.key?.provider, 'local')
    assert.equal(r.keyState, 'enabled')
    assert.deepEqual(r.nextSteps, [])
    await fx.domicile.withTenant('acme', (s) => s.table('customers').insert({ id: 'c1', name: 'Ada', email: 'ada@acme.example' }))
    const email = await fx.domicile.withTenant('acme', async (s) => {
      const row = await s.table('customers').get('c1')
      return s.reveal(row!.email as never, { purpose: 'onboarding test' })
    })
    assert.equal(email, 'ada@acme.example')
  })

  test('custody none: a sensitive write fails with ERR_KEY_NOT_FOUND naming the command to run; bind-key makes it work', async () => {
    const r = await onboardTenant(fx.domicile, { id: 'plain', region: 'eu-west-1', custody: 'none' })
    assert.equal(r.tenant.key, null)
    assert.equal(r.keyState, 'none')
    assert.match(r.nextSteps.join('\n'), /domicile tenant bind-key plain --custody kms/)
    // Columns that are not sensitive still work.
    await fx.domicile.withTenant('plain', (s) => s.table('customers').insert({ id: 'p0', name: 'No secrets' }))
    const e = await rejectsWithCode(fx.domicile.withTenant('plain', (s) => s.table('customers').insert({ id: 'p1', name: 'Bo', email: 'bo@plain.example' })), 'ERR_KEY_NOT_FOUND')
    assert.match(e.message, /domicile tenant bind-key plain --custody kms/)
    assert.doesNotMatch(e.message, /bo@plain/)

    const bound = await bindTenantKey(fx.domicile, { id: 'plain' })
    assert.equal(bound.tenant.key?.custody, 'kms')
    assert.equal(bound.keyState, 'enabled')
    await fx.domicile.withTenant('plain', (s) => s.table('customers').insert({ id: 'p1', name: 'Bo', email: 'bo@plain.example' }))
    await rejectsWithCode(bindTenantKey(fx.domicile, { id: 'plain' }), 'ERR_INPUT_INVALID', 'binding a second key')
  })

  test('byok with the local provider: pending import, next steps are this CLI\'s import commands', async () => {
    const r = await onboardTenant(fx.domicile, { id: 'byo', region: 'eu-west-1', custody: 'byok' })
    assert.equal(r.keyState, 'pending-import')
    assert.deepEqual(r.nextSteps.map((s) => s.split(' ').slice(0, 3).join(' ')), [
      'domicile key import-job', 'openssl rand -out', 'openssl pkeyutl -encrypt', 'domicile key import',
    ])
    assert.match(r.nextSteps[2]!, /-pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256/)
    await rejectsWithCode(fx.domicile.withTenant('byo', (s) => s.table('customers').insert({ id: 'b1', name: 'B', email: 'b@byo.example' })), 'ERR_KEY_PENDING_IMPORT')
    await importByokMaterial(fx.domicile, 'byo', newKeyMaterial())
    assert.equal((await fx.domicile.keys.status('byo')).state, 'enabled')
    await fx.domicile.withTenant('byo', (s) => s.table('customers').insert({ id: 'b1', name: 'B', email: 'b@byo.example' }))
  })

  test('byok with a key in the customer\'s cloud account (aws-kms contract, fake KMS): bound after a round trip', async () => {
    const keyId = kms.createKey()
    const before = kms.requests.length
    const r = await onboardTenant(fx.domicile, { id: 'cloud', region: 'eu-west-1', custody: 'byok', provider: 'aws-kms', keyId: kms.arn(keyId) })
    assert.deepEqual(r.tenant.key, { custody: 'byok', provider: 'aws-kms', keyId: kms.arn(keyId) })
    assert.equal(r.keyState, 'enabled')
    const ops = kms.requests.slice(before).map((q) => q.operation)
    assert.ok(ops.includes('Encrypt') && ops.includes('Decrypt'), `a test round trip ran before acceptance: ${ops.join(',')}`)
    await fx.domicile.withTenant('cloud', (s) => s.table('customers').insert({ id: 'k1', name: 'K', tax_id: 'DE-1' }))
  })

  test('refusals leave no directory row and no key behind', async () => {
    const keysBefore = await keyFiles()
    const disabled = kms.createKey('Disabled')
    await rejectsWithCode(onboardTenant(fx.domicile, { id: 'cloud2', region: 'eu-west-1', custody: 'byok', provider: 'aws-kms', keyId: kms.arn(disabled) }), 'ERR_KEY_REVOKED')
    await rejectsWithCode(onboardTenant(fx.domicile, { id: 'cloud3', region: 'eu-west-1', custody: 'byok', provider: 'aws-kms', keyId: kms.arn('00000000-0000-4000-8000-000000000000') }), 'ERR_KEY_NOT_FOUND')
    await rejectsWithCode(onboardTenant(fx.domicile, { id: 'zeta', region: 'ap-south-1' }), 'ERR_REGION_UNKNOWN')
    await rejectsWithCode(onboardTenant(fx.domicile, { id: 'acme', region: 'eu-west-1' }), 'ERR_TENANT_EXISTS')
    await rejectsWithCode(onboardTenant(fx.domicile, { id: 'Bad Id', region: 'eu-west-1' }), 'ERR_TENANT_INVALID')
    await rejectsWithCode(onboardTenant(fx.domicile, { id: 'zeta', region: 'eu-west-1', custody: 'none', keyId: 'k' }), 'ERR_INPUT_INVALID')
    await rejectsWithCode(onboardTenant(fx.domicile, { id: 'zeta', region: 'eu-west-1', custody: 'kms', provider: 'nope' }), 'ERR_KEY_PROVIDER_UNKNOWN')
    await rejectsWithCode(onboardTenant(fx.domicile, { id: 'zeta', region: 'eu-west-1', custody: 'hyok' }), 'ERR_INPUT_INVALID')
    await rejectsWithCode(onboardTenant(fx.domicile, {
      id: 'zeta', region: 'eu-west-1', custody: 'kms', keyId: 'k',
      xks: { endpoint: 'https://127.0.0.1:1', credentials: { accessKeyId: 'A', secretAccessKey: 'S' } },
    }), 'ERR_INPUT_INVALID')
    for (const id of ['cloud2', 'cloud3', 'zeta']) assert.equal(await tenantRows(id), 0, `no directory row for ${id}`)
    assert.deepEqual(await keyFiles(), keysBefore, 'no key was left in the local keystore')
  })
})
