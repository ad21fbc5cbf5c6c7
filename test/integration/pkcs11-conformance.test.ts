/**
 * The key-provider conformance suite against the pkcs11 provider on a fresh SoftHSM2 token.
 * Revoke = disableKey (CKA_ENCRYPT/CKA_DECRYPT off on the key object), restore = enableKey.
 */

import { randomBytes, randomUUID } from 'node:crypto'
import { createPkcs11KeyProvider } from '../../src/keys/providers/pkcs11/index.js'
import { runKeyProviderSuite } from '../conformance/key-provider-suite.js'
import { createSoftHsmToken, softHsmSkip } from '../support/softhsm.js'

runKeyProviderSuite({
  name: 'pkcs11 (SoftHSM2)',
  skip: softHsmSkip(),
  async setup() {
    const pin = `user-${randomBytes(4).toString('hex')}`
    const token = await createSoftHsmToken({ label: `conformance-${randomUUID().slice(0, 8)}`, pin, soPin: `so-${randomBytes(4).toString('hex')}` })
    const provider = createPkcs11KeyProvider({ name: 'hsm-conformance', library: token.library, tokenLabel: token.label, pin })
    const { keyId } = await provider.createKey({ label: 'conformance-tenant', origin: 'generate' })
    return {
      provider,
      keyId,
      unknownKeyId: `hsm_${randomBytes(16).toString('hex')}`,
      revoke: () => provider.disableKey(keyId),
      restore: () => provider.enableKey(keyId),
      disposableKey: async () => (await provider.createKey({ label: 'conformance-disposable', origin: 'generate' })).keyId,
      async teardown() {
        await provider.close()
        await token.cleanup()
      },
    }
  },
})
