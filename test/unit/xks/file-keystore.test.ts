/**
 * The key proxy's file keystore on a real temp directory: AES-256-GCM round trip, state read fresh
 * from disk (a second instance, as another process would, flips it), key files bound to their id,
 * no path tricks through key ids, file modes.
 */
import { after, before, describe, test } from 'node:test'
import { strict as assert } from 'node:assert'
import { randomBytes } from 'node:crypto'
import { copyFile, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DecryptionFailedError, isDomicileError } from '../../../src/errors.js'
import { FileKeystore } from '../../../src/keyproxy/file-keystore.js'

describe('FileKeystore', () => {
  let parent: string
  let dir: string
  let ks: FileKeystore

  before(async () => {
    parent = await mkdtemp(join(tmpdir(), 'domicile-fks-'))
    dir = join(parent, 'd')
    await FileKeystore.initialize(dir)
    ks = new FileKeystore(dir)
  })
  after(async () => {
    await ks.close()
    await rm(parent, { recursive: true, force: true })
  })

  test('encrypt/decrypt round trip with AAD; wrong AAD or tag is the opaque failure', async () => {
    const id = await ks.createKey({ label: 't' })
    const pt = randomBytes(32)
    const aad = Buffer.from('ctx')
    const s = await ks.encrypt(id, pt, aad)
    assert.equal(s.iv.length, 12)
    assert.equal(s.tag.length, 16)
    assert.equal(s.ciphertext.length, 32)
    assert.deepEqual(Buffer.from(await ks.decrypt(id, s.iv, s.ciphertext, s.tag, aad)), pt)
    await assert.rejects(ks.decrypt(id, s.iv, s.ciphertext, s.tag, Buffer.from('other')), (e: unknown) => e instanceof DecryptionFailedError)
    const tag = Buffer.from(s.tag); tag[3]! ^= 1
    await assert.rejects(ks.decrypt(id, s.iv, s.ciphertext, tag, aad), (e: unknown) => e instanceof DecryptionFailedError)
  })

  test('state is read from disk on every call: another instance disables, this one refuses', async () => {
    const id = await ks.createKey()
    const other = new FileKeystore(dir)
    await other.setEnabled(id, false)
    assert.equal(await ks.getState(id), 'disabled')
    await assert.rejects(ks.encrypt(id, Buffer.from('x'), Buffer.alloc(0)), (e: unknown) => isDomicileError(e, 'ERR_KEY_REVOKED'))
    await other.setEnabled(id, true)
    await ks.encrypt(id, Buffer.from('x'), Buffer.alloc(0))
    await other.close()
  })

  test('unknown ids and path tricks are missing / ERR_KEY_NOT_FOUND', async () => {
    for (const id of ['nope', '../master', '..', '.hidden', 'a/b']) {
      assert.equal(await ks.getState(id), 'missing', id)
      await assert.rejects(ks.encrypt(id, Buffer.from('x'), Buffer.alloc(0)), (e: unknown) => isDomicileError(e, 'ERR_KEY_NOT_FOUND'))
    }
    await assert.rejects(ks.setEnabled('nope', false), (e: unknown) => isDomicileError(e, 'ERR_KEY_NOT_FOUND'))
  })

  test('a key file copied under another id does not open (sealed bytes are bound to the id)', async () => {
    const id = await ks.createKey()
    const fake = 'copied-key'
    const f = JSON.parse(await readFile(join(dir, 'keys', `${id}.json`), 'utf8')) as Record<string, unknown>
    await writeFile(join(dir, 'keys', `${fake}.json`), JSON.stringify({ ...f, keyId: fake }), { mode: 0o600 })
    await assert.rejects(ks.encrypt(fake, Buffer.from('x'), Buffer.alloc(0)), (e: unknown) => isDomicileError(e, 'ERR_KEY_PROVIDER_UNAVAILABLE'))
  })

  test('a key file from another proxy (other master key) does not open', async () => {
    const otherDir = join(parent, 'other')
    await FileKeystore.initialize(otherDir)
    const other = new FileKeystore(otherDir)
    const id = await other.createKey()
    await copyFile(join(otherDir, 'keys', `${id}.json`), join(dir, 'keys', `${id}.json`))
    await assert.rejects(ks.encrypt(id, Buffer.from('x'), Buffer.alloc(0)), (e: unknown) => isDomicileError(e, 'ERR_KEY_PROVIDER_UNAVAILABLE'))
    await other.close()
  })

  test('files are 0600, no temp files are left, key bytes are not stored in the clear', async () => {
    const id = await ks.createKey()
    await ks.setEnabled(id, false)
    await ks.setEnabled(id, true)
    const names = await readdir(join(dir, 'keys'))
    assert.ok(names.every((n) => n.endsWith('.json')), names.join(','))
    assert.equal((await stat(join(dir, 'master.key'))).mode & 0o777, 0o600)
    assert.equal((await stat(join(dir, 'keys', `${id}.json`))).mode & 0o777, 0o600)
    const f = JSON.parse(await readFile(join(dir, 'keys', `${id}.json`), 'utf8')) as Record<string, unknown>
    assert.deepEqual(Object.keys(f).sort(), ['createdAt', 'ct', 'enabled', 'iv', 'keyId', 'label', 'tag', 'updatedAt', 'v'])
  })

  test('initialize refuses an existing master key; a missing master key is a config error', async () => {
    await assert.rejects(FileKeystore.initialize(dir), (e: unknown) => isDomicileError(e, 'ERR_CONFIG_INVALID'))
    const none = new FileKeystore(join(parent, 'none'))
    await assert.rejects(none.createKey(), (e: unknown) => isDomicileError(e, 'ERR_CONFIG_INVALID'))
  })

  test('health check passes; a closed keystore refuses', async () => {
    const k = new FileKeystore(dir)
    await k.healthCheck()
    await k.close()
    await assert.rejects(k.getState('x'), (e: unknown) => isDomicileError(e, 'ERR_CLOSED'))
  })
  test('Precondition: the key is AES_256 and its usage allows the operation.', async () => {
    const encOnly = await ks.createKey({ keyUsage: ['ENCRYPT'] })
    const decOnly = await ks.createKey({ keyUsage: ['DECRYPT'] })
    const aes128 = await ks.createKey({ keySpec: 'AES_128' })
    assert.deepEqual(await ks.describe(encOnly), { state: 'enabled', keySpec: 'AES_256', keyUsage: ['ENCRYPT'] })
    assert.deepEqual(await ks.describe(aes128), { state: 'enabled', keySpec: 'AES_128', keyUsage: ['ENCRYPT', 'DECRYPT'] })
    assert.equal(await ks.describe('no-such-key'), undefined)
    const s = await ks.encrypt(encOnly, Buffer.from('x'), Buffer.alloc(0))
    await assert.rejects(ks.decrypt(encOnly, s.iv, s.ciphertext, s.tag, Buffer.alloc(0)), (e: unknown) => isDomicileError(e, 'ERR_KEY_INVALID'))
    await assert.rejects(ks.encrypt(decOnly, Buffer.from('x'), Buffer.alloc(0)), (e: unknown) => isDomicileError(e, 'ERR_KEY_INVALID'))
    await assert.rejects(ks.encrypt(aes128, Buffer.from('x'), Buffer.alloc(0)), (e: unknown) => isDomicileError(e, 'ERR_KEY_INVALID'))
    await assert.rejects(ks.createKey({ keySpec: 'RSA_2048' as never }), (e: unknown) => isDomicileError(e, 'ERR_INPUT_INVALID'))
    await assert.rejects(ks.createKey({ keyUsage: ['SIGN' as never] }), (e: unknown) => isDomicileError(e, 'ERR_INPUT_INVALID'))
    // A key file without keySpec/keyUsage (as written before they existed) is an AES_256 key for both operations.
    const full = await ks.createKey()
    const f = JSON.parse(await readFile(join(dir, 'keys', `${full}.json`), 'utf8')) as Record<string, unknown>
    assert.equal(f['keySpec'], undefined)
    assert.equal(f['keyUsage'], undefined)
    assert.deepEqual(await ks.describe(full), { state: 'enabled', keySpec: 'AES_256', keyUsage: ['ENCRYPT', 'DECRYPT'] })
  })

  test('a 16-byte IV or a short tag is the opaque decryption failure (aead.ts accepts 96-bit IVs only)', async () => {
    const id = await ks.createKey()
    const s = await ks.encrypt(id, Buffer.from('data'), Buffer.alloc(0))
    await assert.rejects(ks.decrypt(id, randomBytes(16), s.ciphertext, s.tag, Buffer.alloc(0)), (e: unknown) => e instanceof DecryptionFailedError)
    await assert.rejects(ks.decrypt(id, s.iv, s.ciphertext, s.tag.subarray(0, 12), Buffer.alloc(0)), (e: unknown) => e instanceof DecryptionFailedError)
  })
})
