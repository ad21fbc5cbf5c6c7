/**
 * A keystore in a PKCS#11 token (an HSM, or SoftHSM2 for tests): keys are generated inside the
 * token as non-extractable AES-256 objects and AES-GCM runs inside it. Disabling a key clears its
 * CKA_ENCRYPT/CKA_DECRYPT attributes in the token, so a `disable-key` from another process is seen
 * by the serving proxy on its next request.
 *
 * Built on Pkcs11Session (src/keys/providers/pkcs11/pkcs11-session.ts), imported lazily so the
 * file-keystore proxy never loads the PKCS#11 binding. The subset used is described structurally.
 */
import { DomicileError } from '../errors.js'
import type { GcmSealed, ProxyKeyState, ProxyKeystore } from './proxy-keystore.js'

/** The part of Pkcs11Session this keystore uses. */
interface SessionLike {
  generateAesKey(label: string): Promise<string>
  encryptGcm(keyId: string, plaintext: Uint8Array, aad: Uint8Array): Promise<{ iv: Uint8Array; ciphertext: Uint8Array; tag: Uint8Array }>
  decryptGcm(keyId: string, iv: Uint8Array, ciphertext: Uint8Array, tag: Uint8Array, aad: Uint8Array): Promise<Uint8Array>
  setEnabled(keyId: string, enabled: boolean): Promise<void>
  keyInfo(keyId: string): Promise<{ exists: boolean; enabled: boolean; label: string | undefined }>
  close(): Promise<void>
}

export interface Pkcs11KeystoreOptions {
  /** Path of the PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so. */
  readonly library: string
  readonly tokenLabel: string
  /** User PIN; used to log in, never stored or shown. */
  readonly pin: string
}

export class Pkcs11Keystore implements ProxyKeystore {
  readonly vendor = 'PKCS#11'
  readonly model: string
  readonly #session: SessionLike

  private constructor(session: SessionLike, model: string) {
    this.#session = session
    this.model = model
  }

  /**
   * Opens a logged-in session on the token.
   *
   * @example
   * const ks = await Pkcs11Keystore.open({ library: '/usr/lib/softhsm/libsofthsm2.so', tokenLabel: 'xks', pin: process.env.XKS_PIN ?? '' })
   */
  static async open(opts: Pkcs11KeystoreOptions): Promise<Pkcs11Keystore> {
    const { Pkcs11Session } = await import('../keys/providers/pkcs11/pkcs11-session.js')
    const session = await Pkcs11Session.open({ library: opts.library, tokenLabel: opts.tokenLabel, pin: opts.pin })
    return new Pkcs11Keystore(session, `PKCS#11 token ${opts.tokenLabel}`)
  }

  async createKey(label?: string): Promise<string> {
    return this.#session.generateAesKey(label !== undefined && label !== '' ? label : 'domicile-keyproxy')
  }

  async getState(keyId: string): Promise<ProxyKeyState> {
    const info = await this.#session.keyInfo(keyId)
    return !info.exists ? 'missing' : info.enabled ? 'enabled' : 'disabled'
  }

  async setEnabled(keyId: string, enabled: boolean): Promise<void> {
    const info = await this.#session.keyInfo(keyId)
    if (!info.exists) throw new DomicileError('ERR_KEY_NOT_FOUND', 'No such key in this token.')
    await this.#session.setEnabled(keyId, enabled)
  }

  async encrypt(keyId: string, plaintext: Uint8Array, aad: Uint8Array): Promise<GcmSealed> {
    return this.#session.encryptGcm(keyId, plaintext, aad)
  }

  async decrypt(keyId: string, iv: Uint8Array, ciphertext: Uint8Array, tag: Uint8Array, aad: Uint8Array): Promise<Uint8Array> {
    return this.#session.decryptGcm(keyId, iv, ciphertext, tag, aad)
  }

  /** Proves the session is alive: a key search on the token (for a key id that cannot exist). */
  async healthCheck(): Promise<void> {
    await this.#session.keyInfo(`hsm_${'0'.repeat(32)}`)
  }

  async close(): Promise<void> {
    await this.#session.close()
  }
}
