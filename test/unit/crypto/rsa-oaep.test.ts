import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto'
import { rsaOaepSha256Decrypt, rsaOaepSha256Encrypt } from '../../../src/crypto/rsa-oaep.js'
import { isDomicileError } from '../../../src/errors.js'
import { hex, loadWycheproof } from './wycheproof.js'

interface OaepGroup {
  keySize: number
  sha: string
  mgfSha: string
  privateKeyPem: string
  tests: { tcId: number; msg: string; ct: string; label: string; result: string; comment: string }[]
}

const isDecryptFailure = (e: unknown) => isDomicileError(e, 'ERR_DECRYPTION_FAILED') && (e as Error).cause === undefined

describe('RSAES-OAEP SHA-256/MGF1-SHA-256: Wycheproof rsa_oaep_3072_sha256_mgf1sha256_test.json', () => {
  const file = loadWycheproof<OaepGroup>('rsa_oaep_3072_sha256_mgf1sha256_test.json')

  test('every case: 18 valid decrypt to msg, 19 invalid are rejected with one opaque error', () => {
    let valid = 0, invalid = 0
    const messages = new Set<string>()
    for (const g of file.testGroups) {
      assert.equal(g.keySize, 3072)
      assert.equal(g.sha, 'SHA-256')
      assert.equal(g.mgfSha, 'SHA-256')
      const priv = createPrivateKey(g.privateKeyPem)
      for (const t of g.tests) {
        const label = t.label === '' ? undefined : hex(t.label)
        if (t.result === 'valid') {
          assert.equal(Buffer.from(rsaOaepSha256Decrypt(priv, hex(t.ct), label)).toString('hex'), t.msg, `tcId ${t.tcId}`)
          valid++
        } else {
          assert.throws(() => rsaOaepSha256Decrypt(priv, hex(t.ct), label), (e) => {
            messages.add((e as Error).message)
            return isDecryptFailure(e)
          }, `tcId ${t.tcId}`)
          invalid++
        }
      }
    }
    assert.equal(file.numberOfTests, 37)
    assert.deepEqual({ valid, invalid }, { valid: 18, invalid: 19 })
    assert.equal(messages.size, 1, 'padding and length failures must look the same')
  })

  test('encrypt then decrypt round-trips with the vector key, with and without a label', () => {
    const g = file.testGroups[0]!
    const priv = createPrivateKey(g.privateKeyPem)
    const pub = createPublicKey(priv)
    const msg = randomBytes(32)
    assert.deepEqual(Buffer.from(rsaOaepSha256Decrypt(priv, rsaOaepSha256Encrypt(pub, msg))), msg)
    const label = Buffer.from('domicile byok import')
    const ct = rsaOaepSha256Encrypt(pub, msg, label)
    assert.deepEqual(Buffer.from(rsaOaepSha256Decrypt(priv, ct, label)), msg)
    assert.throws(() => rsaOaepSha256Decrypt(priv, ct), isDecryptFailure)
  })

  test('Precondition: an RSA KeyObject of at least 3072 bits, of the expected type.', () => {
    const small = generateKeyPairSync('rsa', { modulusLength: 2048 })
    assert.throws(() => rsaOaepSha256Encrypt(small.publicKey, Buffer.alloc(32)), (e) => isDomicileError(e, 'ERR_KEY_INVALID'))
    assert.throws(() => rsaOaepSha256Decrypt(small.privateKey, Buffer.alloc(256)), (e) => isDomicileError(e, 'ERR_KEY_INVALID'))
    const pub = createPublicKey(createPrivateKey(file.testGroups[0]!.privateKeyPem))
    assert.throws(() => rsaOaepSha256Decrypt(pub, Buffer.alloc(384)), (e) => isDomicileError(e, 'ERR_KEY_INVALID'))
  })

  test('Precondition: the message fits: at most k - 2*hLen - 2 bytes.', () => {
    const pub = createPublicKey(createPrivateKey(file.testGroups[0]!.privateKeyPem))
    assert.equal(rsaOaepSha256Encrypt(pub, Buffer.alloc(318)).length, 384)
    assert.throws(() => rsaOaepSha256Encrypt(pub, Buffer.alloc(319)), (e) => isDomicileError(e, 'ERR_INPUT_INVALID'))
  })
})
