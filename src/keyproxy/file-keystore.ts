/**
 * A keystore in a directory: the reference proxy's default, for customers without an HSM.
 *
 * Layout (all files mode 0600, directories 0700):
 *   <dir>/master.key           32 random bytes: the proxy master key
 *   <dir>/keys/<keyId>.json    one key: { v, keyId, label, enabled, keySpec?, keyUsage?, createdAt, updatedAt, iv, tag, ct }
 *
 * Each key's bytes (32 for AES_256, 16 for AES_128) are sealed with AES-256-GCM under the master
 * key, with AAD binding the sealed bytes to the key id (a key file renamed to another id does not
 * open). A file without keySpec/keyUsage is an AES_256 key allowed to ENCRYPT and DECRYPT. Files are
 * written atomically (temp file, fsync, rename). State is read from disk on every request, so
 * `domicile keyproxy disable-key` run from another process takes effect on the very next request.
 *
 * All AES-GCM runs through src/crypto/aead.ts (the primitives the Wycheproof vectors test).
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { aesGcmDecrypt, aesGcmEncrypt, GCM_TAG_BYTES } from '../crypto/aead.js'
import { defaultNonceSource } from '../crypto/nonce-source.js'
import { DecryptionFailedError, DomicileError, isDomicileError } from '../errors.js'
import {
  FULL_USAGE,
  normaliseKeyOptions,
  type CreateProxyKeyOptions,
  type GcmSealed,
  type ProxyKeyInfo,
  type ProxyKeySpec,
  type ProxyKeyState,
  type ProxyKeystore,
  type ProxyKeyUsage,
} from './proxy-keystore.js'

const MASTER_FILE = 'master.key'
const KEYS_DIR = 'keys'
// Key ids this store issues and accepts: XKS charset, and no leading dot (no '..', no hidden files).
const FILE_KEY_ID = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/

interface KeyFile {
  v: 1
  keyId: string
  label: string
  enabled: boolean
  keySpec?: ProxyKeySpec
  keyUsage?: ProxyKeyUsage[]
  createdAt: string
  updatedAt: string
  iv: string
  tag: string
  ct: string
}

const KEY_BYTES: Record<ProxyKeySpec, number> = { AES_256: 32, AES_128: 16 }

function specOf(f: KeyFile): ProxyKeySpec {
  return f.keySpec ?? 'AES_256'
}

function usageOf(f: KeyFile): readonly ProxyKeyUsage[] {
  return f.keyUsage ?? FULL_USAGE
}

function sealAad(keyId: string): Buffer {
  return Buffer.from(`domicile-keyproxy/file-keystore/v1/key/${keyId}`, 'utf8')
}

/** Writes `data` to `path` atomically with mode 0600 (temp file in the same dir, fsync, rename). */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`
  const fh = await open(tmp, 'wx', 0o600)
  try {
    await fh.writeFile(data)
    await fh.sync()
  } finally {
    await fh.close()
  }
  try {
    await rename(tmp, path)
  } catch (e) {
    await unlink(tmp).catch(() => undefined)
    throw e
  }
}

function isEnoent(e: unknown): boolean {
  return (e as { code?: unknown })?.code === 'ENOENT'
}

export class FileKeystore implements ProxyKeystore {
  readonly vendor = 'Domicile'
  readonly model = 'Domicile file keystore v1'
  readonly dir: string
  #master: Buffer | undefined
  #closed = false

  /** Opens the keystore in `dir` (created by `FileKeystore.initialize` / `domicile keyproxy init`). */
  constructor(dir: string) {
    this.dir = dir
  }

  /**
   * Creates `dir` (0700), `dir/keys` and a fresh master key (0600). Refuses to overwrite an
   * existing master key.
   *
   * @example
   * await FileKeystore.initialize('/var/lib/keyproxy')
   * const ks = new FileKeystore('/var/lib/keyproxy')
   * const keyId = await ks.createKey('acme')
   */
  static async initialize(dir: string): Promise<void> {
    await mkdir(join(dir, KEYS_DIR), { recursive: true, mode: 0o700 })
    const key = randomBytes(32)
    try {
      const fh = await open(join(dir, MASTER_FILE), 'wx', 0o600)
      try {
        await fh.writeFile(key)
        await fh.sync()
      } finally {
        await fh.close()
      }
    } catch (e) {
      if ((e as { code?: unknown })?.code === 'EEXIST') {
        throw new DomicileError('ERR_CONFIG_INVALID', 'This key proxy directory already has a master key; use another --dir or keep using this one.')
      }
      throw e
    } finally {
      key.fill(0)
    }
  }

  async #masterKey(): Promise<Buffer> {
    if (this.#closed) throw new DomicileError('ERR_CLOSED', 'The file keystore is closed.')
    if (this.#master !== undefined) return this.#master
    let k: Buffer
    try {
      k = await readFile(join(this.dir, MASTER_FILE))
    } catch (e) {
      if (isEnoent(e)) throw new DomicileError('ERR_CONFIG_INVALID', 'No master key in this key proxy directory. Run "domicile keyproxy init --dir DIR" first.')
      throw e
    }
    /* Precondition: the master key file holds exactly 32 bytes. */
    if (k.length !== 32) {
      k.fill(0)
      throw new DomicileError('ERR_CONFIG_INVALID', 'The key proxy master key file is corrupt (expected 32 bytes). Restore it from backup.')
    }
    this.#master = k
    return k
  }

  #keyPath(keyId: string): string | undefined {
    return FILE_KEY_ID.test(keyId) ? join(this.dir, KEYS_DIR, `${keyId}.json`) : undefined
  }

  async #read(keyId: string): Promise<KeyFile | undefined> {
    const p = this.#keyPath(keyId)
    if (p === undefined) return undefined
    let text: string
    try {
      text = await readFile(p, 'utf8')
    } catch (e) {
      if (isEnoent(e)) return undefined
      throw e
    }
    const f = JSON.parse(text) as KeyFile
    if (f?.v !== 1 || f.keyId !== keyId || typeof f.enabled !== 'boolean' ||
      (f.keySpec !== undefined && KEY_BYTES[f.keySpec] === undefined) ||
      (f.keyUsage !== undefined && (!Array.isArray(f.keyUsage) || f.keyUsage.some((u) => !FULL_USAGE.includes(u))))) {
      throw new DomicileError('ERR_KEY_PROVIDER_UNAVAILABLE', 'A key file in the key proxy directory is corrupt. Restore it from backup.')
    }
    return f
  }

  /** The key file of a key that may run `usage` now: present, enabled, AES_256, usage allowed. */
  async #readUsable(keyId: string, usage: ProxyKeyUsage): Promise<KeyFile> {
    const f = await this.#read(keyId)
    if (f === undefined) throw new DomicileError('ERR_KEY_NOT_FOUND', 'No such key in this key proxy.')
    if (!f.enabled) throw new DomicileError('ERR_KEY_REVOKED', 'The key is disabled in this key proxy. Enable it with "domicile keyproxy enable-key".')
    /* Precondition: the key is AES_256 and its usage allows the operation. */
    if (specOf(f) !== 'AES_256' || !usageOf(f).includes(usage)) {
      throw new DomicileError('ERR_KEY_INVALID', `This key may not ${usage}: it is ${specOf(f)} with usage [${usageOf(f).join(', ')}].`)
    }
    return f
  }

  /** Unseals a key's bytes; the caller zeroes them. */
  async #unseal(f: KeyFile): Promise<Buffer> {
    const master = await this.#masterKey()
    try {
      const sealed = Buffer.concat([Buffer.from(f.ct, 'base64'), Buffer.from(f.tag, 'base64')])
      const out = aesGcmDecrypt(master, Buffer.from(f.iv, 'base64'), sealed, sealAad(f.keyId))
      if (out.length !== KEY_BYTES[specOf(f)]) {
        out.fill(0)
        throw new Error('length')
      }
      return out
    } catch {
      throw new DomicileError('ERR_KEY_PROVIDER_UNAVAILABLE', 'A key file does not open under this directory\'s master key (corrupt or from another proxy). Restore it from backup.')
    }
  }

  async createKey(opts: CreateProxyKeyOptions = {}): Promise<string> {
    const norm = normaliseKeyOptions(opts)
    /* Precondition: the key spec and usage are ones this keystore knows. */
    if (typeof norm === 'string') throw new DomicileError('ERR_INPUT_INVALID', `create-key: ${norm}.`)
    const master = await this.#masterKey()
    const keyId = randomUUID()
    const key = randomBytes(KEY_BYTES[norm.keySpec])
    try {
      const iv = defaultNonceSource.next()
      const sealed = aesGcmEncrypt(master, iv, key, sealAad(keyId))
      const ctLen = sealed.length - GCM_TAG_BYTES
      const now = new Date().toISOString()
      const restricted = norm.keySpec !== 'AES_256' || norm.keyUsage.length !== FULL_USAGE.length
      const f: KeyFile = {
        v: 1, keyId, label: String(opts.label ?? ''), enabled: true,
        ...(restricted ? { keySpec: norm.keySpec, keyUsage: norm.keyUsage } : {}),
        createdAt: now, updatedAt: now,
        iv: Buffer.from(iv).toString('base64'), tag: sealed.subarray(ctLen).toString('base64'), ct: sealed.subarray(0, ctLen).toString('base64'),
      }
      await mkdir(join(this.dir, KEYS_DIR), { recursive: true, mode: 0o700 })
      await writeFileAtomic(this.#keyPath(keyId)!, JSON.stringify(f, null, 2) + '\n')
      return keyId
    } finally {
      key.fill(0)
    }
  }

  async getState(keyId: string): Promise<ProxyKeyState> {
    if (this.#closed) throw new DomicileError('ERR_CLOSED', 'The file keystore is closed.')
    const f = await this.#read(keyId)
    return f === undefined ? 'missing' : f.enabled ? 'enabled' : 'disabled'
  }

  async describe(keyId: string): Promise<ProxyKeyInfo | undefined> {
    if (this.#closed) throw new DomicileError('ERR_CLOSED', 'The file keystore is closed.')
    const f = await this.#read(keyId)
    if (f === undefined) return undefined
    return { state: f.enabled ? 'enabled' : 'disabled', keySpec: specOf(f), keyUsage: [...usageOf(f)] }
  }

  async setEnabled(keyId: string, enabled: boolean): Promise<void> {
    if (this.#closed) throw new DomicileError('ERR_CLOSED', 'The file keystore is closed.')
    const f = await this.#read(keyId)
    if (f === undefined) throw new DomicileError('ERR_KEY_NOT_FOUND', 'No such key in this key proxy. List the directory\'s keys/ folder for valid ids.')
    if (f.enabled === enabled) return
    await writeFileAtomic(this.#keyPath(keyId)!, JSON.stringify({ ...f, enabled, updatedAt: new Date().toISOString() }, null, 2) + '\n')
  }

  async encrypt(keyId: string, plaintext: Uint8Array, aad: Uint8Array): Promise<GcmSealed> {
    const key = await this.#unseal(await this.#readUsable(keyId, 'ENCRYPT'))
    try {
      const iv = defaultNonceSource.next()
      const sealed = aesGcmEncrypt(key, iv, plaintext, aad)
      const ctLen = sealed.length - GCM_TAG_BYTES
      return { iv, ciphertext: sealed.subarray(0, ctLen), tag: sealed.subarray(ctLen) }
    } finally {
      key.fill(0)
    }
  }

  async decrypt(keyId: string, iv: Uint8Array, ciphertext: Uint8Array, tag: Uint8Array, aad: Uint8Array): Promise<Uint8Array> {
    const key = await this.#unseal(await this.#readUsable(keyId, 'DECRYPT'))
    try {
      /* Precondition: a 16-byte tag (the 12-byte IV is checked by aesGcmDecrypt). */
      if (tag.length !== GCM_TAG_BYTES) throw new DecryptionFailedError()
      return aesGcmDecrypt(key, iv, Buffer.concat([ciphertext, tag]), aad)
    } catch (e) {
      if (e instanceof DecryptionFailedError) throw e
      // aesGcmDecrypt refuses other IV sizes before OpenSSL sees them: to the caller that is a bad ciphertext.
      if (isDomicileError(e, 'ERR_INPUT_INVALID')) throw new DecryptionFailedError()
      throw e
    } finally {
      key.fill(0)
    }
  }

  /** Proves the master key is present and AES-GCM runs. */
  async healthCheck(): Promise<void> {
    const master = await this.#masterKey()
    const iv = defaultNonceSource.next()
    const probe = randomBytes(16)
    const aad = Buffer.from('health')
    const back = aesGcmDecrypt(master, iv, aesGcmEncrypt(master, iv, probe, aad), aad)
    if (!back.equals(probe)) throw new DomicileError('ERR_KEY_PROVIDER_UNAVAILABLE', 'The file keystore failed its health check.')
  }

  async close(): Promise<void> {
    this.#closed = true
    this.#master?.fill(0)
    this.#master = undefined
  }
}
