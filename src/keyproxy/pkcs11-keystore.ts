/**
 * A keystore in a PKCS#11 token (an HSM, or SoftHSM2 for tests): keys are generated inside the
 * token as non-extractable AES-256 objects and AES-GCM runs inside it. Disabling a key clears its
 * CKA_ENCRYPT/CKA_DECRYPT attributes in the token, so a `disable-key` from another process is seen
 * by the serving proxy on its next request.
 *
 * Keys are AES_256. A key restricted to ENCRYPT or DECRYPT (or neither) keeps both attributes in
 * the token, which are this keystore's enabled/disabled switch, and carries its restriction at the
 * end of its CKA_LABEL (` [xks-usage=ENCRYPT]`); the proxy enforces it before the token is asked.
 *
 * Built on Pkcs11Session (src/pkcs11/pkcs11-session.ts), imported lazily so the
 * file-keystore proxy never loads the PKCS#11 binding. The subset used is described structurally.
 */
import { DomicileError } from '../errors.js'
import {
  FULL_USAGE,
  normaliseKeyOptions,
  type CreateProxyKeyOptions,
  type GcmSealed,
  type ProxyKeyInfo,
  type ProxyKeyState,
  type ProxyKeystore,
  type ProxyKeyUsage,
} from './proxy-keystore.js'

const USAGE_TAG = / \[xks-usage=((?:ENCRYPT|DECRYPT)(?:,(?:ENCRYPT|DECRYPT))?)?\]$/

function usageFromLabel(label: string | undefined): readonly ProxyKeyUsage[] {
  const m = label === undefined ? null : USAGE_TAG.exec(label)
  if (m === null) return FULL_USAGE
  const listed = (m[1] ?? '').split(',')
  return FULL_USAGE.filter((u) => listed.includes(u))
}

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
    const { Pkcs11Session } = await import('../pkcs11/pkcs11-session.js')
    const session = await Pkcs11Session.open({ library: opts.library, tokenLabel: opts.tokenLabel, pin: opts.pin })
    return new Pkcs11Keystore(session, `PKCS#11 token ${opts.tokenLabel}`)
  }

  async createKey(opts: CreateProxyKeyOptions = {}): Promise<string> {
    const norm = normaliseKeyOptions(opts)
    /* Precondition: the PKCS#11 keystore creates AES_256 keys only. */
    if (typeof norm === 'string' || norm.keySpec !== 'AES_256') {
      throw new DomicileError('ERR_INPUT_INVALID', `create-key: ${typeof norm === 'string' ? norm : 'the PKCS#11 keystore creates AES_256 keys only'}.`)
    }
    const base = opts.label !== undefined && opts.label !== '' ? opts.label : 'domicile-keyproxy'
    const restricted = norm.keyUsage.length !== FULL_USAGE.length
    const label = restricted ? `${base.slice(0, 100)} [xks-usage=${norm.keyUsage.join(',')}]` : base
    return this.#session.generateAesKey(label)
  }

  async describe(keyId: string): Promise<ProxyKeyInfo | undefined> {
    const info = await this.#session.keyInfo(keyId)
    if (!info.exists) return undefined
    return { state: info.enabled ? 'enabled' : 'disabled', keySpec: 'AES_256', keyUsage: [...usageFromLabel(info.label)] }
  }

  /** Refuses a key whose label restricts `usage`; the token's own checks (disabled, missing) come after. */
  async #checkUsage(keyId: string, usage: ProxyKeyUsage): Promise<void> {
    const info = await this.#session.keyInfo(keyId)
    if (!info.exists) throw new DomicileError('ERR_KEY_NOT_FOUND', 'No such key in this token.')
    if (!info.enabled) throw new DomicileError('ERR_KEY_REVOKED', 'The key is disabled in this token.')
    /* Precondition: the key's usage allows the operation. */
    if (!usageFromLabel(info.label).includes(usage)) throw new DomicileError('ERR_KEY_INVALID', `This key may not ${usage}.`)
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
    await this.#checkUsage(keyId, 'ENCRYPT')
    return this.#session.encryptGcm(keyId, plaintext, aad)
  }

  async decrypt(keyId: string, iv: Uint8Array, ciphertext: Uint8Array, tag: Uint8Array, aad: Uint8Array): Promise<Uint8Array> {
    await this.#checkUsage(keyId, 'DECRYPT')
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
