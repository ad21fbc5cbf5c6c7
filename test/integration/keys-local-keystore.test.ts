/**
 * The local keystore on a real directory: root key sources, location (beside the keystore, an older
 * root.key inside it still read) and file modes, refusal to generate a root key over existing keys,
 * atomic per-key files, that a disable or delete by another provider instance or another
 * process applies at once, and destruction (the key file overwritten in place, then removed).
 */

import { describe, test, after } from 'node:test'
import { strict as assert } from 'node:assert'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmod, copyFile, link, mkdir, mkdtemp, readFile, readdir, rm, stat, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { isDomicileError } from '../../src/errors.js'
import type { DomicileErrorCode } from '../../src/errors.js'
import type { WrapContext } from '../../src/keys/key-provider.js'
import { createLocalKeyProvider, defaultRootKeyFile, ROOT_KEY_ENV } from '../../src/keys/providers/local/index.js'
import { RuntimeKeyProvider } from '../../src/keys/runtime-key-provider.js'

const ctx: WrapContext = { tenantId: 'acme', region: 'eu-west-1', dataKeyId: 'dk-1', purpose: 'data' }
const dirs: string[] = []
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'domicile-keystore-'))
  dirs.push(d)
  return d
}
/** A keystore directory inside a fresh temporary directory (so its sibling root key file is cleaned up too). */
async function keysDir(): Promise<string> {
  return join(await tempDir(), 'keys')
}
const exists = (p: string) => stat(p).then(() => true, () => false)
const newRootB64 = () => Buffer.from(randomBytes(32)).toString('base64')
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

function expectCode(fn: () => unknown, code: DomicileErrorCode, check?: (e: Error) => void): void {
  assert.throws(fn, (e) => {
    assert.ok(isDomicileError(e), String(e))
    assert.equal(e.code, code, e.message)
    check?.(e)
    return true
  })
}

/** Run fn with DOMICILE_ROOT_KEY set (or unset), restoring the previous value. */
function withEnv<T>(value: string | undefined, fn: () => T): T {
  const prev = process.env[ROOT_KEY_ENV]
  if (value === undefined) delete process.env[ROOT_KEY_ENV]
  else process.env[ROOT_KEY_ENV] = value
  try {
    return fn()
  } finally {
    if (prev === undefined) delete process.env[ROOT_KEY_ENV]
    else process.env[ROOT_KEY_ENV] = prev
  }
}

describe('local keystore', () => {
  test('without rootKey or DOMICILE_ROOT_KEY, the root key file is generated beside the keystore directory, mode 0600, and reused', async () => {
    const dir = await keysDir()
    const a = withEnv(undefined, () => createLocalKeyProvider({ dir }))
    assert.equal(defaultRootKeyFile(dir), `${dir}.root.key`)
    const st = await stat(`${dir}.root.key`)
    assert.equal(st.mode & 0o777, 0o600)
    assert.equal(await exists(join(dir, 'root.key')), false, 'nothing inside the keystore directory opens its keys')
    const { keyId } = await a.createKey({ label: 'acme', origin: 'generate' })
    assert.equal((await stat(join(dir, `${keyId}.json`))).mode & 0o777, 0o600, 'key files are 0600')
    const dek = new Uint8Array(randomBytes(32))
    const w = await a.wrapKey({ keyId, plaintextKey: dek, context: ctx })
    const b = withEnv(undefined, () => createLocalKeyProvider({ dir }))
    assert.deepEqual(await b.unwrapKey({ keyId, ciphertext: w.ciphertext, context: ctx }), dek)
    const leftovers = (await readdir(dir)).filter((f) => f.endsWith('.tmp'))
    assert.deepEqual(leftovers, [], 'atomic writes leave no temporary files')
  })

  test('Precondition: a root key is generated only for a keystore without keys.', async () => {
    const dir = await keysDir()
    const a = withEnv(undefined, () => createLocalKeyProvider({ dir }))
    const { keyId } = await a.createKey({ label: 'acme', origin: 'generate' })
    const w = await a.wrapKey({ keyId, plaintextKey: new Uint8Array(randomBytes(32)), context: ctx })
    const saved = await readFile(`${dir}.root.key`)
    await unlink(`${dir}.root.key`)
    expectCode(() => withEnv(undefined, () => createLocalKeyProvider({ dir })), 'ERR_CONFIG_INVALID', (e) => {
      assert.match(e.message, /holds 1 key file\(s\) but its root key file .*keys\.root\.key is missing/)
      assert.match(e.message, /restore/)
    })
    assert.equal(await exists(`${dir}.root.key`), false, 'no new root key was written over the existing keys')
    assert.equal(await exists(join(dir, 'root.key')), false)
    // Restored from backup, the keystore works again.
    await writeFile(`${dir}.root.key`, saved, { mode: 0o600 })
    const b = withEnv(undefined, () => createLocalKeyProvider({ dir }))
    assert.equal((await b.unwrapKey({ keyId, ciphertext: w.ciphertext, context: ctx })).length, 32)
  })

  test('an older keystore with root.key inside its directory keeps working: read, never regenerated or moved', async () => {
    const dir = await keysDir()
    await mkdir(dir, { mode: 0o700 })
    const legacy = `${newRootB64()}\n`
    await writeFile(join(dir, 'root.key'), legacy, { mode: 0o600 })
    const a = withEnv(undefined, () => createLocalKeyProvider({ dir }))
    const { keyId } = await a.createKey({ label: 'acme', origin: 'generate' })
    const dek = new Uint8Array(randomBytes(32))
    const w = await a.wrapKey({ keyId, plaintextKey: dek.slice(), context: ctx })
    const b = withEnv(undefined, () => createLocalKeyProvider({ dir }))
    assert.deepEqual(await b.unwrapKey({ keyId, ciphertext: w.ciphertext, context: ctx }), dek)
    assert.equal(await readFile(join(dir, 'root.key'), 'utf8'), legacy, 'the old root key file is unchanged')
    assert.equal(await exists(`${dir}.root.key`), false, 'no second root key is generated beside it')
    // The same refusal applies when the old file goes missing.
    await unlink(join(dir, 'root.key'))
    expectCode(() => withEnv(undefined, () => createLocalKeyProvider({ dir })), 'ERR_CONFIG_INVALID', (e) => assert.match(e.message, /missing/))
    assert.equal(await exists(`${dir}.root.key`), false)
  })

  test('Precondition: an older root key inside the keystore and a root key beside it are the same key.', async () => {
    const dir = await keysDir()
    await mkdir(dir, { mode: 0o700 })
    const root = newRootB64()
    await writeFile(join(dir, 'root.key'), root, { mode: 0o600 })
    await writeFile(`${dir}.root.key`, newRootB64(), { mode: 0o600 })
    expectCode(() => withEnv(undefined, () => createLocalKeyProvider({ dir })), 'ERR_CONFIG_INVALID', (e) => assert.match(e.message, /two different root key files/))
    await writeFile(`${dir}.root.key`, `${root}\n`, { mode: 0o600 }) // a copy (say, while moving it out) is fine
    const p = withEnv(undefined, () => createLocalKeyProvider({ dir }))
    await p.createKey({ label: 'acme', origin: 'generate' })
  })

  test('the rootKeyFile option puts the root key file where it says', async () => {
    const base = await tempDir()
    const dir = join(base, 'keys')
    const file = join(base, 'secrets', 'domicile-root.key')
    const p = withEnv(undefined, () => createLocalKeyProvider({ dir, rootKeyFile: file }))
    const { keyId } = await p.createKey({ label: 'acme', origin: 'generate' })
    assert.equal((await stat(file)).mode & 0o777, 0o600)
    assert.equal(await exists(`${dir}.root.key`), false)
    await unlink(file)
    expectCode(() => withEnv(undefined, () => createLocalKeyProvider({ dir, rootKeyFile: file })), 'ERR_CONFIG_INVALID', (e) => assert.match(e.message, /missing/))
    assert.ok(keyId)
  })

  test('Precondition: the rootKeyFile option is a non-empty path.', async () => {
    const dir = await keysDir()
    expectCode(() => withEnv(undefined, () => createLocalKeyProvider({ dir, rootKeyFile: '' })), 'ERR_CONFIG_INVALID')
  })

  test('Precondition: the root key file is readable by its owner only.', async () => {
    const dir = await keysDir()
    withEnv(undefined, () => createLocalKeyProvider({ dir }))
    await chmod(`${dir}.root.key`, 0o644)
    expectCode(() => withEnv(undefined, () => createLocalKeyProvider({ dir })), 'ERR_CONFIG_INVALID', (e) => assert.match(e.message, /chmod 600/))
  })

  test('Precondition: the root key file holds the base64 of exactly 32 bytes.', async () => {
    const dir = await keysDir()
    const bad = Buffer.from(randomBytes(16)).toString('base64')
    await writeFile(`${dir}.root.key`, bad, { mode: 0o600 })
    expectCode(() => withEnv(undefined, () => createLocalKeyProvider({ dir })), 'ERR_CONFIG_INVALID', (e) => assert.ok(!e.message.includes(bad)))
  })

  test('Precondition: DOMICILE_ROOT_KEY is the base64 of exactly 32 bytes.', async () => {
    const dir = await keysDir()
    for (const bad of [Buffer.from(randomBytes(31)).toString('base64'), Buffer.from(randomBytes(33)).toString('base64'), 'not base64 at all!', '']) {
      expectCode(() => withEnv(bad, () => createLocalKeyProvider({ dir })), 'ERR_CONFIG_INVALID', (e) => {
        assert.match(e.message, /DOMICILE_ROOT_KEY/)
        if (bad !== '') assert.ok(!e.message.includes(bad) && !JSON.stringify(e).includes(bad), 'the value is never echoed')
      })
    }
    const good = Buffer.from(randomBytes(32)).toString('base64')
    const p = withEnv(good, () => createLocalKeyProvider({ dir }))
    await p.createKey({ label: 'acme', origin: 'generate' })
    assert.equal(await exists(join(dir, 'root.key')), false, 'with DOMICILE_ROOT_KEY set no root key file is written')
    assert.equal(await exists(`${dir}.root.key`), false, 'with DOMICILE_ROOT_KEY set no root key file is written')
  })

  test('Precondition: the rootKey option is exactly 32 bytes.', async () => {
    const dir = await tempDir()
    expectCode(() => createLocalKeyProvider({ dir, rootKey: new Uint8Array(16) }), 'ERR_CONFIG_INVALID')
  })

  test('a keystore opened with another root key refuses to use its keys (provider error, not a decrypt oracle)', async () => {
    const dir = await tempDir()
    const a = createLocalKeyProvider({ dir, rootKey: new Uint8Array(randomBytes(32)) })
    const { keyId } = await a.createKey({ label: 'acme', origin: 'generate' })
    const b = new RuntimeKeyProvider(createLocalKeyProvider({ dir, rootKey: new Uint8Array(randomBytes(32)) }))
    await assert.rejects(b.wrapKey({ keyId, plaintextKey: new Uint8Array(32), context: ctx }), (e) => isDomicileError(e, 'ERR_KEY_PROVIDER_UNAVAILABLE') && /root key/.test(e.message))
  })

  test('a corrupt key file is reported as such', async () => {
    const dir = await tempDir()
    const a = createLocalKeyProvider({ dir, rootKey: new Uint8Array(randomBytes(32)) })
    const { keyId } = await a.createKey({ label: 'acme', origin: 'generate' })
    await writeFile(join(dir, `${keyId}.json`), '{"v":1,', { mode: 0o600 })
    await assert.rejects(a.keyStatus(keyId), (e) => isDomicileError(e, 'ERR_KEY_PROVIDER_UNAVAILABLE') && /corrupt/.test(e.message))
  })

  test('a second provider instance on the same directory sees a disable by the first at once', async () => {
    const dir = await tempDir()
    const root = new Uint8Array(randomBytes(32))
    const first = createLocalKeyProvider({ dir, rootKey: root })
    const second = new RuntimeKeyProvider(createLocalKeyProvider({ dir, rootKey: root }))
    const { keyId } = await first.createKey({ label: 'acme', origin: 'generate' })
    const dek = new Uint8Array(randomBytes(32))
    const w = await second.wrapKey({ keyId, plaintextKey: dek.slice(), context: ctx })
    assert.deepEqual(await second.unwrapKey({ keyId, ciphertext: w.ciphertext, context: ctx }), dek)
    await first.disableKey(keyId)
    await assert.rejects(second.unwrapKey({ keyId, ciphertext: w.ciphertext, context: ctx }), (e) => isDomicileError(e, 'ERR_KEY_REVOKED'))
    assert.equal((await second.keyStatus(keyId)).state, 'disabled')
    await first.enableKey(keyId)
    assert.deepEqual(await second.unwrapKey({ keyId, ciphertext: w.ciphertext, context: ctx }), dek)
  })

  test('a delete done by another process applies at once', async () => {
    const dir = await tempDir()
    const rootB64 = Buffer.from(randomBytes(32)).toString('base64')
    const here = new RuntimeKeyProvider(withEnv(rootB64, () => createLocalKeyProvider({ dir })))
    const created = await here.createKey!({ label: 'acme', origin: 'generate' })
    const keyId = created.keyId
    const dek = new Uint8Array(randomBytes(32))
    const w = await here.wrapKey({ keyId, plaintextKey: dek.slice(), context: ctx })

    const moduleUrl = pathToFileURL(resolve('src/keys/providers/local/index.ts')).href
    const script = join(dir, 'revoke.mts')
    await writeFile(script, `import { createLocalKeyProvider } from ${JSON.stringify(moduleUrl)}\n` +
      `const p = createLocalKeyProvider({ dir: process.argv[2]! })\nawait p.deleteKeyMaterial(process.argv[3]!)\nconsole.log('deleted')\n`)
    const out = await new Promise<{ code: number | null; stdout: string; stderr: string }>((res, rej) => {
      const child = spawn(process.execPath, ['--import', 'tsx', script, dir, keyId], { env: { ...process.env, [ROOT_KEY_ENV]: rootB64 }, stdio: ['ignore', 'pipe', 'pipe'] })
      let stdout = ''
      let stderr = ''
      child.stdout.on('data', (d) => { stdout += String(d) })
      child.stderr.on('data', (d) => { stderr += String(d) })
      child.on('error', rej)
      child.on('close', (code) => res({ code, stdout, stderr }))
    })
    assert.equal(out.code, 0, out.stderr)
    assert.match(out.stdout, /deleted/)
    await assert.rejects(here.unwrapKey({ keyId, ciphertext: w.ciphertext, context: ctx }), (e) => isDomicileError(e, 'ERR_KEY_REVOKED'))
    assert.equal((await here.keyStatus(keyId)).state, 'deleted')
  })

  test('destroyKey overwrites the key file in place with zeros, then removes it', async () => {
    const dir = await tempDir()
    const p = new RuntimeKeyProvider(createLocalKeyProvider({ dir, rootKey: new Uint8Array(randomBytes(32)) }))
    const { keyId } = await p.createKey!({ label: 'acme', origin: 'generate' })
    const w = await p.wrapKey({ keyId, plaintextKey: new Uint8Array(randomBytes(32)), context: ctx })
    const file = join(dir, `${keyId}.json`)
    // A second name for the same inode sees what the destruction wrote into the file before unlinking it.
    const witness = join(dir, 'witness')
    await link(file, witness)
    const size = (await stat(file)).size
    assert.deepEqual(await p.destroyKey!(keyId), { keyId, state: 'destroyed' })
    assert.equal(await exists(file), false)
    const left = await readFile(witness)
    assert.equal(left.length, size)
    assert.ok(left.every((b) => b === 0), 'the key file\'s bytes were overwritten with zeros')
    await assert.rejects(p.unwrapKey({ keyId, ciphertext: w.ciphertext, context: ctx }), (e) => isDomicileError(e, 'ERR_KEY_NOT_FOUND'))
    await assert.rejects(p.destroyKey!(keyId), (e) => isDomicileError(e, 'ERR_KEY_NOT_FOUND'))
  })

  test('destroyKey also overwrites and removes what a write of that key cut short left behind; other keys\' files are untouched', async () => {
    const dir = await tempDir()
    const p = new RuntimeKeyProvider(createLocalKeyProvider({ dir, rootKey: new Uint8Array(randomBytes(32)) }))
    const { keyId } = await p.createKey!({ label: 'acme', origin: 'generate' })
    const { keyId: other } = await p.createKey!({ label: 'other', origin: 'generate' })
    // What a process killed between writing its temporary file and renaming it leaves: a full copy.
    const file = join(dir, `${keyId}.json`)
    const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`
    const otherTmp = join(dir, `${other}.json.${randomBytes(6).toString('hex')}.tmp`)
    await copyFile(file, tmp)
    await copyFile(join(dir, `${other}.json`), otherTmp)
    const witness = join(dir, 'witness')
    await link(tmp, witness)
    const size = (await stat(tmp)).size
    assert.deepEqual(await p.destroyKey!(keyId), { keyId, state: 'destroyed' })
    assert.equal(await exists(tmp), false, 'the temporary copy is gone')
    const left = await readFile(witness)
    assert.equal(left.length, size)
    assert.ok(left.every((b) => b === 0), 'its bytes were overwritten with zeros first')
    assert.equal(await exists(otherTmp), true, 'another key\'s temporary file is not touched')
    assert.equal((await p.keyStatus(other)).state, 'enabled')
  })

  test('Precondition: the key id has the keystore\'s format (so it can never name another path). (destroyKey)', async () => {
    const dir = await tempDir()
    const p = createLocalKeyProvider({ dir, rootKey: new Uint8Array(randomBytes(32)) })
    const victim = join(dir, 'victim.json')
    await writeFile(victim, 'keep me')
    for (const id of ['victim', '../victim', `lk_${'0'.repeat(31)}`]) {
      await assert.rejects(p.destroyKey(id), (e) => isDomicileError(e, 'ERR_KEY_NOT_FOUND'))
    }
    assert.equal(await readFile(victim, 'utf8'), 'keep me')
  })

  test('closed provider refuses work', async () => {
    const dir = await tempDir()
    const p = createLocalKeyProvider({ dir, rootKey: new Uint8Array(randomBytes(32)) })
    const { keyId } = await p.createKey({ label: 'acme', origin: 'generate' })
    await p.close()
    await assert.rejects(p.keyStatus(keyId), (e) => isDomicileError(e, 'ERR_CLOSED'))
  })
})
