import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createDecipheriv, randomBytes } from 'node:crypto'
import { setImmediate as tick } from 'node:timers/promises'
import { isRetiredKey, manageKey, readyCount, retireKey, takeGcm, takeHmac, RESERVE_MAX_DEPTH } from '../../../src/crypto/context-reserve.js'
import { hmacSha256 } from '../../../src/crypto/hmac.js'
import { DataKeyCache } from '../../../src/keys/data-key-cache.js'
import { openField, prepareColumn, sealField } from '../../../src/fields/field-codec.js'
import { blindIndex } from '../../../src/fields/blind-index.js'
import { isDomicileError } from '../../../src/errors.js'

function gcmOpen(key: Uint8Array, nonce: Uint8Array, ct: Uint8Array, tag: Uint8Array, aad: Uint8Array): Buffer {
  const d = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 })
  d.setAuthTag(tag)
  d.setAAD(aad)
  return Buffer.concat([d.update(ct), d.final()])
}

describe('context reserve', () => {
  test('a key nobody manages gets no prepared context (a caller buffer may be rewritten)', () => {
    const key = randomBytes(32)
    assert.equal(takeGcm(key), undefined)
    assert.equal(takeHmac(key), undefined)
  })

  test('a prepared GCM cipher encrypts under its key and the nonce it reports', () => {
    const key = randomBytes(32)
    manageKey(key)
    const ready = takeGcm(key)!
    assert.ok(ready)
    const aad = Buffer.from('aad')
    ready.cipher.setAAD(aad)
    const ct = ready.cipher.update(Buffer.from('hello'))
    ready.cipher.final()
    assert.equal(gcmOpen(key, ready.nonce, ct, ready.cipher.getAuthTag(), aad).toString(), 'hello')
    retireKey(key)
  })

  test('every prepared cipher has its own fresh nonce, across refills', async () => {
    const key = randomBytes(32)
    manageKey(key)
    const seen = new Set<string>()
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 10; i++) seen.add(takeGcm(key)!.nonce.toString('hex'))
      await tick() // refill runs between rounds, as between round trips
    }
    assert.equal(seen.size, 200)
    retireKey(key)
  })

  test('a refill runs after contexts were taken, keeps as many ready as were taken, capped', async () => {
    const key = randomBytes(32)
    manageKey(key)
    takeGcm(key)
    assert.equal(readyCount(key).gcm, 0)
    await tick()
    assert.ok(readyCount(key).gcm >= 2)
    for (let i = 0; i < 10; i++) takeGcm(key)
    await tick()
    assert.equal(readyCount(key).gcm, 10)
    for (let i = 0; i < 100; i++) takeGcm(key)
    await tick()
    assert.equal(readyCount(key).gcm, RESERVE_MAX_DEPTH)
    retireKey(key)
  })

  test('the reserve follows demand down again after a burst', async () => {
    const key = randomBytes(32)
    manageKey(key)
    for (let i = 0; i < 40; i++) takeGcm(key)
    await tick()
    assert.equal(readyCount(key).gcm, RESERVE_MAX_DEPTH)
    const depths: number[] = []
    for (let round = 0; round < 8; round++) {
      for (let i = 0; i < RESERVE_MAX_DEPTH; i++) takeGcm(key) // use all, as a burst would
      takeGcm(key)
      await tick()
      depths.push(readyCount(key).gcm)
    }
    for (let round = 0; round < 8; round++) {
      takeGcm(key) // then one per round trip
      await tick()
    }
    const after = readyCount(key).gcm
    assert.ok(after < RESERVE_MAX_DEPTH / 2, `depth decays with demand (now ${after})`)
    assert.ok(after >= 2)
    retireKey(key)
  })

  test('retiring ends the unused contexts and takes them off the process total', async () => {
    const key = randomBytes(32)
    manageKey(key)
    for (let i = 0; i < 5; i++) {
      takeGcm(key)
      takeHmac(key)
    }
    await tick()
    const before = readyCount(key)
    assert.ok(before.gcm >= 5 && before.hmac >= 5)
    retireKey(key)
    assert.equal(readyCount(key).total, before.total - before.gcm - before.hmac)
    assert.ok(isRetiredKey(key))
  })

  test('a prepared HMAC gives the same tag as a fresh one', async () => {
    const key = randomBytes(32)
    manageKey(key)
    takeHmac(key)
    await tick()
    assert.ok(readyCount(key).hmac > 0)
    const msg = Buffer.from('message')
    assert.deepEqual(takeHmac(key)!.update(msg).digest(), hmacSha256(key, msg))
    retireKey(key)
  })

  test('retiring a key drops its prepared contexts at once, and a later take throws ERR_CONFLICT', async () => {
    const key = randomBytes(32)
    manageKey(key)
    takeGcm(key)
    takeHmac(key)
    await tick()
    assert.ok(readyCount(key).gcm > 0 && readyCount(key).hmac > 0)
    retireKey(key)
    assert.deepEqual([readyCount(key).gcm, readyCount(key).hmac], [0, 0])
    assert.throws(() => takeGcm(key), (e) => isDomicileError(e, 'ERR_CONFLICT'))
    assert.throws(() => takeHmac(key), (e) => isDomicileError(e, 'ERR_CONFLICT'))
    manageKey(key) // a retired key cannot be managed again
    assert.throws(() => takeGcm(key), (e) => isDomicileError(e, 'ERR_CONFLICT'))
  })

  test('a refill scheduled before a retirement makes nothing for the retired key', async () => {
    const key = randomBytes(32)
    manageKey(key)
    takeGcm(key) // schedules a refill
    retireKey(key)
    await tick()
    assert.deepEqual([readyCount(key).gcm, readyCount(key).hmac], [0, 0])
  })

  test('the data-key cache manages the keys it holds and retires them when it zeroes them', async () => {
    const cache = new DataKeyCache()
    const key = await cache.load('k1', 'acme', 60_000, async () => randomBytes(32))
    assert.ok(takeGcm(key), 'a cached key is managed')
    await tick()
    assert.ok(readyCount(key).gcm > 0)
    cache.invalidateTenant('acme')
    assert.ok(key.every((b) => b === 0), 'the key was zeroed')
    assert.deepEqual([readyCount(key).gcm, readyCount(key).hmac], [0, 0])
    assert.throws(() => takeGcm(key), (e) => isDomicileError(e, 'ERR_CONFLICT'))
    const once = await cache.load('k2', 'acme', 0, async () => randomBytes(32))
    assert.equal(takeGcm(once), undefined, 'a key the cache does not keep (TTL 0) is not managed')
  })

  test('sealing with a managed key uses prepared ciphers and round-trips; fixed nonces still reproduce vectors', async () => {
    const cache = new DataKeyCache()
    const key = await cache.load('k', 'acme', 60_000, async () => randomBytes(32))
    const ctx = { tenantId: 'acme', table: 'customers', column: 'email', rowKey: 'c1' }
    const col = prepareColumn(ctx)
    col.seal(key, 3, 'c1', 'warm')
    await tick()
    const ready = readyCount(key).gcm
    assert.ok(ready > 0)
    col.seal(key, 3, 'c1', 'x')
    assert.equal(readyCount(key).gcm, ready - 1, 'a seal under a cached key takes a prepared cipher')
    for (let i = 0; i < 50; i++) {
      const sealed = col.seal(key, 3, 'c1', `v${i}`)
      assert.equal(col.open(key, 'c1', sealed), `v${i}`)
      if (i % 7 === 0) await tick()
    }
    const nonce = Buffer.alloc(12, 7)
    const copy = Buffer.from(key)
    assert.deepEqual(sealField(key, 3, ctx, 'x', nonce), sealField(copy, 3, ctx, 'x', nonce))
    assert.equal(openField(copy, ctx, sealField(key, 3, ctx, 'x')), 'x')
    const ck = await cache.load('c', 'acme', 60_000, async () => randomBytes(32))
    const ckCopy = Buffer.from(ck)
    blindIndex(ck, 'warm', { bytes: 8 })
    await tick()
    const readyH = readyCount(ck).hmac
    assert.ok(readyH > 0)
    blindIndex(ck, 'x', { bytes: 8 })
    assert.equal(readyCount(ck).hmac, readyH - 1, 'a blind index under a cached key takes a prepared HMAC')
    for (let i = 0; i < 5; i++) {
      assert.deepEqual(blindIndex(ck, `a${i}@b.eu`, { bytes: 8, normalize: ['lower'] }), blindIndex(ckCopy, `A${i}@b.eu`, { bytes: 8, normalize: ['lower'] }))
      await tick()
    }
    cache.clear()
  })
})
