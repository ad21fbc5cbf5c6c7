/**
 * `shred verify` and the shred certificate (issue #10 item 4) on a real Domicile (PGlite stores, the
 * local provider, and the reference key proxy as a real child process for HYOK): what the
 * certificate says after a revocation (reversible), a destruction (irreversible), a BYOK material
 * deletion and a HYOK destruction; that it catches unsealed values, known plaintext outside the
 * sealed columns and value fields in audit records; that it is signed with the key beside the
 * keystore and fails verification on any edit.
 */
import { after, before, describe, test } from 'node:test'
import { strict as assert } from 'node:assert'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { internalsOf } from '../../src/domicile-internals.js'
import { loadOrCreateSigningKey, loadPublicKey } from '../../src/evidence/signing-key.js'
import { checkShredCertificate, SHRED_CERTIFICATE_KIND, type ShredCertificatePayload } from '../../src/ops/shred-certificate.js'
import { destroyTenantKey } from '../../src/ops/shred-destroy.js'
import { evidenceSigningKeyFile } from '../../src/ops/shred-evidence-key.js'
import { issueShredCertificate, verifyShred } from '../../src/ops/shred-verify.js'
import { createDomicileFixture, newKeyMaterial, rejectsWithCode, type DomicileFixture } from '../support/domicile-fixture.js'
import { createKeyViaCli, initKeyProxyDir, startKeyProxyProcess, type KeyProxyDir, type KeyProxyProcess } from '../support/keyproxy-process.js'

const REGION = 'eu-west-1'
const XKS = 'customer-proxy'

const check = (p: ShredCertificatePayload, id: string) => {
  const c = p.checks.find((x) => x.id === id)
  assert.ok(c, `check ${id} is in the certificate`)
  return c
}

describe('shred verify and the shred certificate (PGlite, local provider, key proxy)', { concurrency: false }, () => {
  let fx: DomicileFixture
  let proxyDir: KeyProxyDir
  let proxy: KeyProxyProcess
  let credsDir: string

  before(async () => {
    proxyDir = await initKeyProxyDir()
    proxy = await startKeyProxyProcess({ dir: proxyDir.dir, uriPrefix: '/xks' })
    credsDir = await mkdtemp(join(tmpdir(), 'domicile-shred-creds-'))
    const credentialsFile = join(credsDir, 'xks-credentials.json')
    await writeFile(credentialsFile, JSON.stringify(proxy.credentials), { mode: 0o600 })
    fx = await createDomicileFixture({
      regions: [REGION],
      providers: { [XKS]: { kind: 'xks', endpoint: proxy.url, uriPrefix: proxy.uriPrefix, credentialsFile, timeoutMs: 2000, ...(proxy.caFile ? { caFile: proxy.caFile } : {}) } },
    })
  })
  after(async () => {
    await fx?.close()
    await proxy?.stop()
    await proxyDir?.cleanup()
    if (credsDir) await rm(credsDir, { recursive: true, force: true })
  })

  async function seed(tenant: string, opts: Parameters<DomicileFixture['addTenant']>[1] = {}): Promise<void> {
    await fx.addTenant(tenant, { region: REGION, ...opts })
    await fx.domicile.withTenant(tenant, async (s) => {
      for (let i = 1; i <= 6; i++) {
        await s.table('customers').insert({ id: `c${i}`, name: `Person ${i} of ${tenant}`, email: `p${i}@${tenant}.example`, tax_id: `TAX-${tenant}-${i}`, plan: 'pro' })
      }
    })
  }

  test('after a revocation: the certificate says suspended and reversible, signed with the key beside the keystore', async () => {
    await seed('rev')
    await fx.domicile.keys.revoke('rev', 'test-operator')
    const cert = await issueShredCertificate(fx.domicile, 'rev', { actor: 'auditor', sampleSize: 4 })
    const p = cert.payload
    assert.equal(cert.kind, SHRED_CERTIFICATE_KIND)
    assert.equal(p.verdict, 'suspended')
    assert.equal(p.erase.method, 'revoked')
    assert.equal(p.erase.reversible, true)
    assert.match(p.erase.restorableBy ?? '', /domicile key restore/)
    assert.equal(p.erase.actor, 'test-operator')
    assert.ok(p.erase.at && p.erase.auditRecordId !== null)
    assert.deepEqual([p.key.directoryState, p.key.providerState, p.key.providerKind], ['revoked', 'enabled', 'local'])
    // The keys still unwrap at the provider: recorded, not blocking, because the erase is reversible.
    const unwrap = check(p, 'unwrap-at-provider')
    assert.deepEqual([unwrap.status, unwrap.blocking, unwrap.counts.attempted, unwrap.counts.unwrapped], ['fail', false, 2, 2])
    const sample = check(p, 'sample-open')
    assert.deepEqual([sample.status, sample.counts.sampled, sample.counts.opened, sample.counts['code.ERR_KEY_REVOKED']], ['pass', 4, 0, 4])
    const sealed = check(p, 'sensitive-columns-sealed')
    assert.deepEqual([sealed.status, sealed.counts.rows, sealed.counts.values, sealed.counts.unsealed, sealed.counts.blindIndexes], ['pass', 6, 12, 0, 6])
    assert.equal(check(p, 'wrapped-copies').status, 'info')
    assert.equal(p.plaintextSearch.mode, 'structural')
    assert.ok(p.nist80088.cannotVouchFor.some((c) => c.id === 'all-key-copies-sanitized'))
    assert.ok(p.nist80088.cannotVouchFor.some((c) => c.id === 'backups-and-replicas'))
    // Every sample attempt left its reveal audit record (denied).
    const reveals = await fx.regionAdmin(REGION, (s) => s.query<{ outcome: string }>(
      "SELECT outcome FROM domicile_audit WHERE tenant_id = 'rev' AND type = 'field.reveal' AND detail->>'purpose' = 'shred-verify'"))
    assert.deepEqual(reveals.rows.map((r) => r.outcome), ['denied', 'denied', 'denied', 'denied'])
    // Signed by the evidence key beside the keystore directory.
    const file = evidenceSigningKeyFile(fx.config)
    assert.equal(file, `${fx.keysDir}.evidence-signing.key`)
    assert.ok(existsSync(file) && existsSync(`${file}.pub`))
    const { publicKey, keyId } = loadPublicKey(file)
    assert.equal(cert.signature.keyId, keyId)
    assert.deepEqual(checkShredCertificate(JSON.stringify(cert, null, 2), publicKey).payload, JSON.parse(JSON.stringify(p)))
    await fx.domicile.keys.restore('rev', 'test-operator')
  })

  test('a certificate fails verification on any edit, under another key, or as another kind', async () => {
    await seed('edit')
    await fx.domicile.keys.revoke('edit')
    const cert = await issueShredCertificate(fx.domicile, 'edit', { sampleSize: 2 })
    const { publicKey } = loadPublicKey(evidenceSigningKeyFile(fx.config))
    const text = JSON.stringify(cert)
    // A parsed copy, edited the way someone tampering with the file would.
    const edits: Array<[string, (c: any) => void]> = [
      ['verdict', (c) => { c.payload.verdict = 'erased' }],
      ['reversible', (c) => { c.payload.erase.reversible = false }],
      ['a count', (c) => { c.payload.checks[0].counts = { ...c.payload.checks[0].counts, extra: 1 } }],
      ['a check removed', (c) => { c.payload.checks.pop() }],
      ['the time', (c) => { c.payload.erase.at = '2000-01-01T00:00:00.000Z' }],
      ['the tenant', (c) => { c.payload.tenant.id = 'other' }],
      ['the kind', (c) => { c.kind = 'domicile.residency-report/v1' }],
      ['the signature', (c) => { c.signature.value = Buffer.from(c.signature.value, 'base64').reverse().toString('base64') }],
    ]
    for (const [what, edit] of edits) {
      const copy = JSON.parse(text)
      edit(copy)
      await rejectsWithCode(Promise.resolve().then(() => checkShredCertificate(copy, publicKey)), 'ERR_SIGNATURE_INVALID', `edit of ${what}`)
    }
    const other = loadOrCreateSigningKey(join(fx.dir, 'other-signing.key'))
    await rejectsWithCode(Promise.resolve().then(() => checkShredCertificate(text, other.publicKey)), 'ERR_SIGNATURE_INVALID', 'another key')
    await rejectsWithCode(Promise.resolve().then(() => checkShredCertificate('{not json', publicKey)), 'ERR_INPUT_INVALID', 'not JSON')
    assert.equal(checkShredCertificate(text, publicKey).payload.certificateId, cert.payload.certificateId)
  })

  test('after a destruction: the certificate says erased and irreversible', async () => {
    await seed('gone')
    const r = await destroyTenantKey(fx.domicile, 'gone', { actor: 'test-operator' })
    const p = await verifyShred(fx.domicile, 'gone', { sampleSize: 3 })
    assert.equal(p.verdict, 'erased', JSON.stringify(p.checks.filter((c) => c.status === 'fail')))
    assert.deepEqual([p.erase.method, p.erase.reversible, p.erase.restorableBy], ['destroyed', false, null])
    assert.equal(p.erase.at, r.destroyedAt)
    assert.equal(p.erase.actor, 'test-operator')
    assert.deepEqual([p.key.directoryState, p.key.providerState], ['destroyed', 'not-found'])
    assert.equal(p.destruction?.operationId, r.operationId)
    assert.equal(p.destruction?.wrappedKeysDestroyed, 2)
    assert.deepEqual([check(p, 'kek-destroyed').status, check(p, 'wrapped-copies').status, check(p, 'wrapped-copies').counts.left], ['pass', 'pass', 0])
    assert.equal(check(p, 'unwrap-at-provider').status, 'skipped')
    assert.deepEqual([check(p, 'sample-open').status, check(p, 'sample-open').counts.opened], ['pass', 0])
    assert.equal(check(p, 'sensitive-columns-sealed').status, 'pass')
    assert.ok(p.nist80088.meets.some((c) => c.id === 'all-key-copies-sanitized'))
    assert.ok(p.nist80088.meets.some((c) => c.id === 'verification'))
    assert.ok(p.nist80088.cannotVouchFor.some((c) => c.id === 'backups-and-replicas'))
  })

  test('after a BYOK material deletion: irreversible unless the customer re-imports the same material', async () => {
    await seed('byok-v', { custody: 'byok', byokMaterial: newKeyMaterial() })
    await fx.domicile.keys.deleteMaterial('byok-v', 'customer-admin')
    const p = await verifyShred(fx.domicile, 'byok-v', { sampleSize: 2 })
    assert.equal(p.verdict, 'erased')
    assert.deepEqual([p.erase.method, p.erase.reversible, p.erase.actor], ['material-deleted', false, 'customer-admin'])
    assert.match(p.erase.restorableBy ?? '', /same key material/)
    const unwrap = check(p, 'unwrap-at-provider')
    assert.deepEqual([unwrap.status, unwrap.counts.refused, unwrap.counts['code.ERR_KEY_REVOKED']], ['pass', 2, 2])
    assert.ok(p.nist80088.cannotVouchFor.some((c) => c.id === 'customer-key-copies'))
  })

  test('after a HYOK destruction: our wrapped copies are gone; the customer\'s key is outside our control', async () => {
    await seed('hyok-d', { custody: 'hyok', provider: XKS, keyId: await createKeyViaCli(proxyDir.dir) })
    const r = await destroyTenantKey(fx.domicile, 'hyok-d')
    assert.deepEqual(r.keks.map((k) => [k.providerKind, k.outcome]), [['xks', 'not-held']])
    const p = await verifyShred(fx.domicile, 'hyok-d', { sampleSize: 2 })
    assert.equal(p.verdict, 'erased')
    assert.equal(p.key.providerState, 'enabled', 'the customer\'s key is untouched')
    assert.match(p.erase.statement, /outside our control/)
    assert.equal(check(p, 'wrapped-copies').counts.left, 0)
    assert.match(p.nist80088.cannotVouchFor.find((c) => c.id === 'customer-key-copies')?.evidence ?? '', /outside our control/)
  })

  test('unsealed data in a sensitive column fails the verification', async () => {
    await seed('leaky')
    await fx.domicile.keys.revoke('leaky')
    await fx.regionAdmin(REGION, (s) => s.query("UPDATE customers SET tax_id = convert_to('TAX-in-clear', 'UTF8') WHERE tenant_id = 'leaky' AND id = 'c2'"))
    const p = await verifyShred(fx.domicile, 'leaky', { sampleSize: 1 })
    assert.equal(p.verdict, 'failed')
    const sealed = check(p, 'sensitive-columns-sealed')
    assert.deepEqual([sealed.status, sealed.counts.unsealed], ['fail', 1])
    assert.ok(p.nist80088.cannotVouchFor.some((c) => c.id === 'encrypted-at-rest'))
  })

  test('known samples: found in a global table and in the tenant\'s plain columns, never written into the certificate', async () => {
    await seed('known')
    await fx.domicile.keys.revoke('known')
    const samples = ['p3@known.example', 'Person 2 of known', 'Leaked Plan Of known']
    const clean = await verifyShred(fx.domicile, 'known', { sampleSize: 1, knownPlaintexts: [samples[0]!] })
    assert.deepEqual([check(clean, 'global-tables').status, check(clean, 'tenant-plain-columns').status, check(clean, 'audit-records').status], ['pass', 'pass', 'pass'])
    assert.equal(clean.plaintextSearch.mode, 'known-samples')
    // The application copied personal data into a global table: in the control plane and a region's copy.
    for (const store of ['region', 'control'] as const) {
      const sql = "INSERT INTO plans (id, name, price_cents) VALUES ('leak', 'Leaked Plan Of known', 0)"
      if (store === 'region') await fx.regionAdmin(REGION, (s) => s.query(sql))
      else await internalsOf(fx.domicile).controlPlane.withSession((s) => s.query(sql), { role: 'owner' })
    }
    const p = await verifyShred(fx.domicile, 'known', { sampleSize: 1, knownPlaintexts: samples })
    assert.equal(p.verdict, 'failed')
    assert.deepEqual([check(p, 'global-tables').status, check(p, 'global-tables').counts.hits], ['fail', 2])
    assert.deepEqual([check(p, 'tenant-plain-columns').status, check(p, 'tenant-plain-columns').counts.hits], ['fail', 1])
    const text = JSON.stringify(p)
    for (const s of samples) assert.ok(!text.includes(s), 'a known sample is not written into the certificate')
  })

  test('an audit record of the tenant carrying a value field fails the verification', async () => {
    await seed('audited')
    await fx.domicile.keys.revoke('audited')
    await fx.regionAdmin(REGION, (s) => s.query(`INSERT INTO domicile_audit (tenant_id, type, outcome, detail) VALUES ('audited', 'app.debug', 'ok', '{"value": "TAX-audited-1"}'::jsonb)`))
    const p = await verifyShred(fx.domicile, 'audited', { sampleSize: 1 })
    const a = check(p, 'audit-records')
    assert.deepEqual([a.status, a.counts.valueFields], ['fail', 1])
    assert.equal(p.verdict, 'failed')
  })

  test('Precondition: the tenant\'s key is revoked, destroyed, or deleted or disabled at its holder.', async () => {
    await seed('alive')
    await rejectsWithCode(verifyShred(fx.domicile, 'alive'), 'ERR_CONFLICT', 'verify a usable key')
  })

  test('Precondition: no operation is running for the tenant (a destruction in progress is finished first).', async () => {
    await seed('half')
    const t = await fx.domicile.getTenant('half')
    const { journal } = internalsOf(fx.domicile)
    await journal!.start({ kind: 'key-destroy', tenantId: 'half', target: 'half', state: 'kill-switch', checkpoint: { binding: { ...t.key! } } })
    await fx.domicile.keys.revoke('half')
    await rejectsWithCode(verifyShred(fx.domicile, 'half'), 'ERR_OPERATION_RUNNING', 'verify during a destruction')
    await destroyTenantKey(fx.domicile, 'half')
    assert.equal((await verifyShred(fx.domicile, 'half', { sampleSize: 1 })).verdict, 'erased')
  })

  test('Precondition: the sample size is an integer from 1 to 1000.', async () => {
    await rejectsWithCode(verifyShred(fx.domicile, 'gone', { sampleSize: 0 }), 'ERR_INPUT_INVALID', 'sample 0')
    await rejectsWithCode(verifyShred(fx.domicile, 'gone', { knownPlaintexts: [''] }), 'ERR_INPUT_INVALID', 'an empty sample')
  })
})
