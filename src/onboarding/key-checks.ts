/**
 * Checks a key must pass before a tenant is bound to it: the key service answers its health
 * check (XKS), the key is enabled, and a test data key wraps and unwraps through it (the round
 * trip proves the credentials, the TLS trust, the key's usage and the provider's grants at once).
 * The test key is random, bound to a context no real data key uses, and zeroed afterwards.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto'
import { DomicileError, isDomicileError } from '../errors.js'
import type { KeyProvider, WrapContext } from '../keys/key-provider.js'
import type { XksKeyProvider } from '../keys/providers/xks/xks-key-provider.js'

/** The deadline of each onboarding check (an interactive admin step, cold TLS included). */
export const CHECK_TIMEOUT_MS = 5000

/** The XKS health check (GetHealthStatus), with the onboarding deadline. */
export async function checkXksHealth(provider: XksKeyProvider): Promise<void> {
  await provider.health({ signal: AbortSignal.timeout(CHECK_TIMEOUT_MS) })
}

/**
 * Refuses a key that is not enabled, then wraps and unwraps a random 32-byte key through it.
 * Errors keep the provider's code (ERR_KEY_NOT_FOUND, ERR_KEY_REVOKED, ERR_KEY_INVALID,
 * ERR_KEY_PROVIDER_UNAVAILABLE); a round trip that returns other bytes is ERR_KEY_INVALID.
 */
export async function checkKeyRoundTrip(provider: KeyProvider, keyId: string, tenantId: string, region: string): Promise<void> {
  const signal = (): AbortSignal => AbortSignal.timeout(CHECK_TIMEOUT_MS)
  const st = await provider.keyStatus(keyId, { signal: signal() })
  /* Precondition: the key the tenant is bound to is enabled at its holder. */
  if (st.state === 'unavailable') {
    throw new DomicileError('ERR_KEY_PROVIDER_UNAVAILABLE', `Key provider "${provider.name}" could not be asked about the key. Check that the key service is running and reachable, then run the command again.`)
  }
  if (st.state !== 'enabled') {
    throw new DomicileError('ERR_KEY_REVOKED', `Key "${keyId}" at provider "${provider.name}" is ${st.state}. Enable it at the key holder, then run the command again.`)
  }
  const context: WrapContext = { tenantId, region, dataKeyId: 'onboarding-check', purpose: 'data' }
  const probe = new Uint8Array(randomBytes(32))
  let back: Uint8Array | undefined
  try {
    const wrapped = await provider.wrapKey({ keyId, plaintextKey: probe, context }, { signal: signal() })
    try {
      back = await provider.unwrapKey({ keyId, ciphertext: wrapped.ciphertext, context }, { signal: signal() })
    } catch (e) {
      if (isDomicileError(e, 'ERR_DECRYPTION_FAILED')) throw roundTripFailed(provider.name)
      throw e
    }
    /* Precondition: the test key comes back unchanged. */
    if (back.length !== probe.length || !timingSafeEqual(back, probe)) throw roundTripFailed(provider.name)
  } finally {
    probe.fill(0)
    back?.fill(0)
  }
}

function roundTripFailed(name: string): DomicileError {
  return new DomicileError('ERR_KEY_INVALID', `The test encrypt/decrypt round trip through key provider "${name}" did not return the test key. The key service is not usable for this tenant; check it with its holder.`)
}
