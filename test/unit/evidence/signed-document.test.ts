/**
 * Signed evidence: canonical JSON, Ed25519 signatures that fail on any edit, and a signing key that
 * is never replaced silently.
 */
import { strict as assert } from 'node:assert'
import { existsSync, mkdtempSync, rmSync, unlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import fc from 'fast-check'
import { canonicalJson } from '../../../src/evidence/canonical-json.js'
import { loadOrCreateSigningKey, loadPublicKey } from '../../../src/evidence/signing-key.js'
import { signDocument, verifyDocument } from '../../../src/evidence/signed-document.js'
import { isDomicileError } from '../../../src/errors.js'

const dir = mkdtempSync(join(tmpdir(), 'domicile-evidence-'))
after(() => rmSync(dir, { recursive: true, force: true }))

describe('canonical JSON', () => {
  test('sorts keys at every depth and drops undefined', () => {
    assert.equal(canonicalJson({ b: 1, a: { d: [1, { z: 2, y: null }], c: 'x' }, u: undefined }), '{"a":{"c":"x","d":[1,{"y":null,"z":2}]},"b":1}')
  })
  test('equal content, equal bytes: key order does not matter', () => {
    fc.assert(fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (o) => {
      const reversed = Object.fromEntries(Object.entries(o).reverse())
      assert.equal(canonicalJson(reversed), canonicalJson(o))
      assert.deepEqual(JSON.parse(canonicalJson(o)), JSON.parse(JSON.stringify(o)))
    }))
  })
  test('Precondition: numbers in evidence are finite.', () => {
    assert.throws(() => canonicalJson({ n: Number.NaN }), (e: unknown) => isDomicileError(e, 'ERR_INPUT_INVALID'))
  })
})

describe('signed documents', () => {
  const file = join(dir, 'signing.key')
  test('a signed document verifies, and any edit of payload, kind or signature fails', () => {
    const key = loadOrCreateSigningKey(file)
    const doc = signDocument(key, 'domicile.test/v1', { tenant: 'acme', counts: { keys: 2, values: 10 }, reversible: false })
    const { publicKey } = loadPublicKey(file)
    assert.deepEqual(verifyDocument(JSON.parse(JSON.stringify(doc)), publicKey, 'domicile.test/v1'), { ok: true, keyId: key.keyId })
    const edits: Array<(d: any) => void> = [
      (d) => (d.payload.tenant = 'acmf'),
      (d) => (d.payload.counts.keys = 3),
      (d) => (d.payload.reversible = true),
      (d) => (d.payload.extra = 1),
      (d) => (d.kind = 'domicile.other/v1'),
      (d) => (d.signature.value = Buffer.from('x'.repeat(64)).toString('base64')),
    ]
    for (const edit of edits) {
      const copy = JSON.parse(JSON.stringify(doc))
      edit(copy)
      assert.equal(verifyDocument(copy, publicKey).ok, false, edit.toString())
    }
    assert.equal(verifyDocument(doc, publicKey, 'domicile.report/v1').ok, false, 'a document of another kind')
  })

  test('re-formatting the JSON does not break the signature', () => {
    const key = loadOrCreateSigningKey(file)
    const doc = signDocument(key, 'domicile.test/v1', { b: 2, a: 1 })
    const reformatted = JSON.parse(JSON.stringify({ signature: doc.signature, payload: { a: 1, b: 2 }, kind: doc.kind }, null, 2))
    assert.equal(verifyDocument(reformatted, key.publicKey).ok, true)
  })

  test('another key does not verify', () => {
    const other = loadOrCreateSigningKey(join(dir, 'other.key'))
    const doc = signDocument(loadOrCreateSigningKey(file), 'domicile.test/v1', { a: 1 })
    const r = verifyDocument(doc, other.publicKey)
    assert.equal(r.ok, false)
  })

  test('Precondition: a published signing key is never replaced silently.', () => {
    const f = join(dir, 'lost.key')
    const first = loadOrCreateSigningKey(f)
    assert.equal(loadOrCreateSigningKey(f).keyId, first.keyId, 'loaded again, not regenerated')
    unlinkSync(f)
    assert.throws(() => loadOrCreateSigningKey(f), (e: unknown) => isDomicileError(e, 'ERR_CONFIG_INVALID'))
    assert.equal(existsSync(f), false, 'no new private key was written')
  })
})
