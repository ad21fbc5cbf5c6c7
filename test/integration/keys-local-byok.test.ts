/**
 * The local provider's BYOK import flow end to end, on a real keystore directory: create key
 * (origin 'import'), import job, RSAES-OAEP-SHA-256 wrapped material, delete material (the kill
 * switch), re-import of the same material only.
 */

import { describe, test, before, after } from 'node:test'
import { strict as assert } from 'node:assert'
import { constants, createPublicKey, generateKeyPairSync, publicEncrypt, randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isDomicileError } from '../../src/errors.js'
import type { DomicileErrorCode } from '../../src/errors.js'
import type { WrapContext } from '../../src/keys/key-provider.js'
import { createLocalKeyProvider } from '../../src/keys/providers/local/index.js'
import type { ImportJob, LocalKeyProvider } from '../../src/keys/providers/local/index.js'
import { RuntimeKeyProvider } from '../../src/keys/runtime-key-provider.js'

const ctx: WrapContext = { tenantId: 'acme', region: 'eu-west-1', dataKeyId: 'dk-1', purpose: 'data' }
const DAY = 24 * 60 * 60 * 1000

function oaep(job: ImportJob, material: Uint8Array): Buffer {
  return publicEncrypt({ key: job.wrappingPublicKeyPem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, material)
}

async function rejectsWith(p: Promise<unknown>, code: DomicileErrorCode, message?: RegExp): Promise<void> {
  await assert.rejects(p, (e) => {
    assert.ok(isDomicileError(e), String(e))
    assert.equal(e.code, code, e.message)
    if (message) assert.match(e.message, message)
    return true
  })
}

describe('local provider BYOK import flow', () => {
  let dir: string
  let now = Date.parse('2026-03-01T10:00:00Z')
  let local: LocalKeyProvider
  let rt: RuntimeKeyProvider
  const material = new Uint8Array(randomBytes(32))

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'domicile-byok-'))
    local = createLocalKeyProvider({ dir, rootKey: new Uint8Array(randomBytes(32)), now: () => now })
    rt = new RuntimeKeyProvider(local)
  })
  after(async () => {
    await rt.close()
    await rm(dir, { recursive: true, force: true })
  })

  test('the whole flow, with every wrong turn refused', async () => {
    const { keyId } = await local.createKey({ label: 'acme', origin: 'import' })
    assert.match(keyId, /^lk_[0-9a-f]{32}$/)
    assert.equal((await rt.keyStatus(keyId)).state, 'pending-import')
    await rejectsWith(rt.wrapKey({ keyId, plaintextKey: new Uint8Array(randomBytes(32)), context: ctx }), 'ERR_KEY_PENDING_IMPORT')
    await rejectsWith(local.importKeyMaterial(keyId, { encryptedMaterial: new Uint8Array(384), importToken: 'x' }), 'ERR_KEY_IMPORT_INVALID', /createImportJob first/)

    const job = await local.createImportJob(keyId)
    const pub = createPublicKey(job.wrappingPublicKeyPem)
    assert.equal(pub.asymmetricKeyType, 'rsa')
    assert.equal(pub.asymmetricKeyDetails?.modulusLength, 3072)
    assert.match(job.importToken, /^[A-Za-z0-9_-]{43}$/)
    assert.equal(job.expiresAt.getTime(), now + DAY)

    // Wrong token.
    await rejectsWith(local.importKeyMaterial(keyId, { encryptedMaterial: oaep(job, material), importToken: job.importToken.slice(0, -1) + (job.importToken.endsWith('A') ? 'B' : 'A') }), 'ERR_KEY_IMPORT_INVALID', /import token does not match/)
    // Wrong length material (16 and 33 bytes).
    for (const len of [16, 33]) {
      await rejectsWith(local.importKeyMaterial(keyId, { encryptedMaterial: oaep(job, new Uint8Array(randomBytes(len))), importToken: job.importToken }), 'ERR_KEY_IMPORT_INVALID', /exactly 32 bytes/)
    }
    // Material wrapped under some other RSA key.
    const stranger = generateKeyPairSync('rsa', { modulusLength: 3072 })
    const foreign = publicEncrypt({ key: stranger.publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, material)
    await rejectsWith(local.importKeyMaterial(keyId, { encryptedMaterial: foreign, importToken: job.importToken }), 'ERR_KEY_IMPORT_INVALID', /does not decrypt/)
    assert.equal((await rt.keyStatus(keyId)).state, 'pending-import', 'failed imports change nothing')

    // Expired job (clock).
    now += DAY
    await rejectsWith(local.importKeyMaterial(keyId, { encryptedMaterial: oaep(job, material), importToken: job.importToken }), 'ERR_KEY_IMPORT_INVALID', /expired/)

    // A new job replaces the old one: the old token no longer works.
    const job2 = await local.createImportJob(keyId)
    await rejectsWith(local.importKeyMaterial(keyId, { encryptedMaterial: oaep(job2, material), importToken: job.importToken }), 'ERR_KEY_IMPORT_INVALID', /import token/)
    await local.importKeyMaterial(keyId, { encryptedMaterial: oaep(job2, material), importToken: job2.importToken })
    assert.equal((await rt.keyStatus(keyId)).state, 'enabled')
    // The job is consumed.
    await rejectsWith(local.importKeyMaterial(keyId, { encryptedMaterial: oaep(job2, material), importToken: job2.importToken }), 'ERR_KEY_IMPORT_INVALID', /no current import job/)

    const dek = new Uint8Array(randomBytes(32))
    const wrapped = await rt.wrapKey({ keyId, plaintextKey: dek.slice(), context: ctx })
    assert.deepEqual(await rt.unwrapKey({ keyId, ciphertext: wrapped.ciphertext, context: ctx }), dek)

    // The key file holds neither the material nor the data key in clear.
    const file = await readFile(join(dir, `${keyId}.json`), 'utf8')
    for (const secret of [material, dek]) {
      assert.ok(!file.includes(Buffer.from(secret).toString('hex')) && !file.includes(Buffer.from(secret).toString('base64')))
    }

    // Kill switch: delete the material; unwrap fails at once.
    await local.deleteKeyMaterial(keyId)
    await rejectsWith(rt.unwrapKey({ keyId, ciphertext: wrapped.ciphertext, context: ctx }), 'ERR_KEY_REVOKED')
    assert.equal((await rt.keyStatus(keyId)).state, 'deleted')
    const afterDelete = JSON.parse(await readFile(join(dir, `${keyId}.json`), 'utf8')) as Record<string, unknown>
    assert.equal(afterDelete.material, null)
    assert.equal(typeof afterDelete.fingerprint, 'string')
    await rejectsWith(local.enableKey(keyId), 'ERR_KEY_REVOKED', /import/)

    // Different material is refused; the same material restores the key.
    const job3 = await local.createImportJob(keyId)
    await rejectsWith(local.importKeyMaterial(keyId, { encryptedMaterial: oaep(job3, new Uint8Array(randomBytes(32))), importToken: job3.importToken }), 'ERR_KEY_IMPORT_INVALID', /different key material/)
    assert.equal((await rt.keyStatus(keyId)).state, 'deleted')
    await local.importKeyMaterial(keyId, { encryptedMaterial: oaep(job3, material), importToken: job3.importToken })
    assert.deepEqual(await rt.unwrapKey({ keyId, ciphertext: wrapped.ciphertext, context: ctx }), dek)
  })

  test('error messages of the import flow never echo the token or the material', async () => {
    const { keyId } = await local.createKey({ label: 'acme', origin: 'import' })
    const job = await local.createImportJob(keyId)
    const wrongToken = Buffer.from(randomBytes(32)).toString('base64url')
    const secretMaterial = new Uint8Array(randomBytes(33))
    for (const p of [
      local.importKeyMaterial(keyId, { encryptedMaterial: oaep(job, material), importToken: wrongToken }),
      local.importKeyMaterial(keyId, { encryptedMaterial: oaep(job, secretMaterial), importToken: job.importToken }),
    ]) {
      await assert.rejects(p, (e) => {
        const text = `${(e as Error).message}\n${(e as Error).stack}`
        for (const s of [wrongToken, job.importToken, Buffer.from(secretMaterial).toString('hex'), Buffer.from(material).toString('hex')]) assert.ok(!text.includes(s))
        return true
      })
    }
  })

  test('createImportJob refuses keys created with origin generate', async () => {
    const { keyId } = await local.createKey({ label: 'acme', origin: 'generate' })
    await rejectsWith(local.createImportJob(keyId), 'ERR_KEY_IMPORT_INVALID', /origin 'generate'/)
  })

  test('ids that are not keystore ids (e.g. paths) are not found', async () => {
    for (const id of ['../root', 'root', 'lk_../../etc/passwd', `lk_${'A'.repeat(32)}`]) {
      await rejectsWith(rt.keyStatus(id), 'ERR_KEY_NOT_FOUND')
      await rejectsWith(local.disableKey(id), 'ERR_KEY_NOT_FOUND')
    }
  })
})
