/**
 * The key-provider conformance suite against the `local` provider, for both of its rungs:
 * kms (provider-generated key; revoke = disableKey) and byok (imported material; revoke =
 * deleteKeyMaterial, restore = re-import the same material with a fresh import job).
 */

import { constants, publicEncrypt, randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createLocalKeyProvider } from '../../src/keys/providers/local/index.js'
import type { LocalKeyProvider } from '../../src/keys/providers/local/index.js'
import { runKeyProviderSuite } from '../conformance/key-provider-suite.js'

async function fresh(): Promise<{ dir: string; provider: LocalKeyProvider }> {
  const dir = await mkdtemp(join(tmpdir(), 'domicile-local-conf-'))
  return { dir, provider: createLocalKeyProvider({ dir, rootKey: new Uint8Array(randomBytes(32)) }) }
}

/** What a BYOK customer does: wrap their material under the job's public key. */
async function importMaterial(provider: LocalKeyProvider, keyId: string, material: Uint8Array): Promise<void> {
  const job = await provider.createImportJob(keyId)
  const encryptedMaterial = publicEncrypt({ key: job.wrappingPublicKeyPem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, material)
  await provider.importKeyMaterial(keyId, { encryptedMaterial, importToken: job.importToken })
}

runKeyProviderSuite({
  name: 'local (kms: generated key)',
  async setup() {
    const { dir, provider } = await fresh()
    const { keyId } = await provider.createKey({ label: 'conformance', origin: 'generate' })
    return {
      provider,
      keyId,
      unknownKeyId: `lk_${randomBytes(16).toString('hex')}`,
      revoke: () => provider.disableKey(keyId),
      restore: () => provider.enableKey(keyId),
      disposableKey: async () => (await provider.createKey({ label: 'conformance-disposable', origin: 'generate' })).keyId,
      async teardown() {
        await provider.close()
        await rm(dir, { recursive: true, force: true })
      },
    }
  },
})

runKeyProviderSuite({
  name: 'local (byok: imported key)',
  async setup() {
    const { dir, provider } = await fresh()
    const { keyId } = await provider.createKey({ label: 'conformance', origin: 'import' })
    const material = new Uint8Array(randomBytes(32))
    await importMaterial(provider, keyId, material)
    return {
      provider,
      keyId,
      revoke: () => provider.deleteKeyMaterial(keyId),
      restore: () => importMaterial(provider, keyId, material),
      async disposableKey() {
        const { keyId: id } = await provider.createKey({ label: 'conformance-disposable', origin: 'import' })
        const m = new Uint8Array(randomBytes(32))
        await importMaterial(provider, id, m)
        m.fill(0)
        return id
      },
      async teardown() {
        material.fill(0)
        await provider.close()
        await rm(dir, { recursive: true, force: true })
      },
    }
  },
})
