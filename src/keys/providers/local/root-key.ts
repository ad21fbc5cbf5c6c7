/**
 * The local provider's root key and the keys derived from it.
 *
 * The root key protects everything in a local keystore directory: key-encryption-key material and
 * import-job private keys are sealed under HKDF-derived subkeys, and material fingerprints are
 * HMACs under another. Where it comes from, in order:
 *   1. the `rootKey` option (32 bytes);
 *   2. the DOMICILE_ROOT_KEY environment variable (base64 of exactly 32 bytes);
 *   3. `<dir>/root.key` (base64 text), generated with mode 0600 on first use; refused if group or
 *      others can read it.
 * The derived keys live in #private fields; `destroy()` zeroes them.
 */

import { chmodSync, closeSync, fstatSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs'
import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto'
import { join } from 'node:path'
import { DomicileError } from '../../../errors.js'
import { open, seal } from './sealed-box.js'
import type { SealedBox } from './sealed-box.js'

export const ROOT_KEY_ENV = 'DOMICILE_ROOT_KEY'
export const ROOT_KEY_FILE = 'root.key'

const ROOT_KEY_BYTES = 32
const BASE64_32 = /^[A-Za-z0-9+/]{43}=$/
const enc = new TextEncoder()

export interface RootKeySource {
  readonly dir: string
  readonly rootKey?: Uint8Array
  /** Environment to read DOMICILE_ROOT_KEY from. Default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>
}

/** Keys derived from the root key, with the operations the keystore needs. */
export class RootKey {
  readonly #materialKey: Buffer
  readonly #jobKey: Buffer
  readonly #fingerprintKey: Buffer

  /** Derive the subkeys; `root` is not kept (the caller zeroes its own copy). */
  constructor(root: Uint8Array) {
    /* Precondition: the root key is exactly 32 bytes. */
    if (!(root instanceof Uint8Array) || root.length !== ROOT_KEY_BYTES) {
      throw new DomicileError('ERR_CONFIG_INVALID', `the local provider root key must be exactly ${ROOT_KEY_BYTES} bytes`, { path: 'rootKey' })
    }
    this.#materialKey = derive(root, 'kek-material')
    this.#jobKey = derive(root, 'import-job-private-key')
    this.#fingerprintKey = derive(root, 'material-fingerprint')
  }

  /** Seal KEK material for the key file of `keyId` (AAD = keyId). */
  sealMaterial(keyId: string, material: Uint8Array): SealedBox {
    return seal(this.#materialKey, material, enc.encode(keyId))
  }

  /** Open KEK material; the caller must zero the result. Throws DecryptionFailedError. */
  openMaterial(keyId: string, box: SealedBox): Buffer {
    return open(this.#materialKey, box, enc.encode(keyId))
  }

  /** Seal an import job's private key (PKCS#8 DER) for `keyId`. */
  sealJobKey(keyId: string, der: Uint8Array): SealedBox {
    return seal(this.#jobKey, der, enc.encode(`${keyId}/import-job`))
  }

  /** Open an import job's private key; the caller must zero the result. */
  openJobKey(keyId: string, box: SealedBox): Buffer {
    return open(this.#jobKey, box, enc.encode(`${keyId}/import-job`))
  }

  /** HMAC-SHA256 fingerprint of key material (base64): recognises the same material without storing it. */
  fingerprint(keyId: string, material: Uint8Array): string {
    return createHmac('sha256', this.#fingerprintKey).update(enc.encode(keyId)).update(new Uint8Array([0])).update(material).digest('base64')
  }

  /** Constant-time check that `material` has the stored fingerprint. */
  fingerprintMatches(keyId: string, material: Uint8Array, stored: string): boolean {
    const want = Buffer.from(stored, 'base64')
    const got = Buffer.from(this.fingerprint(keyId, material), 'base64')
    return want.length === got.length && timingSafeEqual(want, got)
  }

  /** Zero the derived keys. */
  destroy(): void {
    this.#materialKey.fill(0)
    this.#jobKey.fill(0)
    this.#fingerprintKey.fill(0)
  }
}

function derive(root: Uint8Array, label: string): Buffer {
  const ab = hkdfSync('sha256', root, enc.encode('domicile-local-keystore-v1'), enc.encode(label), 32)
  const out = Buffer.alloc(32)
  const view = new Uint8Array(ab)
  out.set(view)
  view.fill(0)
  return out
}

/**
 * Find the root key (option, then environment, then `<dir>/root.key`) and derive the keystore keys.
 * Synchronous so that a misconfiguration fails at construction time.
 */
export function loadRootKey(src: RootKeySource): RootKey {
  if (src.rootKey !== undefined) {
    /* Precondition: the rootKey option is exactly 32 bytes. */
    if (!(src.rootKey instanceof Uint8Array) || src.rootKey.length !== ROOT_KEY_BYTES) {
      throw new DomicileError('ERR_CONFIG_INVALID', `rootKey must be exactly ${ROOT_KEY_BYTES} bytes`, { path: 'rootKey' })
    }
    return new RootKey(src.rootKey)
  }
  const env = src.env ?? process.env
  const fromEnv = env[ROOT_KEY_ENV]
  if (fromEnv !== undefined) {
    const trimmed = fromEnv.trim()
    /* Precondition: DOMICILE_ROOT_KEY is the base64 of exactly 32 bytes. */
    if (!BASE64_32.test(trimmed)) {
      throw new DomicileError('ERR_CONFIG_INVALID', `${ROOT_KEY_ENV} must be the base64 encoding of exactly ${ROOT_KEY_BYTES} bytes (generate one with: openssl rand -base64 32)`, { path: ROOT_KEY_ENV })
    }
    return withBytes(Buffer.from(trimmed, 'base64'))
  }
  return withBytes(readOrCreateRootKeyFile(src.dir))
}

function withBytes(root: Buffer): RootKey {
  try {
    return new RootKey(root)
  } finally {
    root.fill(0)
  }
}

function readOrCreateRootKeyFile(dir: string): Buffer {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const path = join(dir, ROOT_KEY_FILE)
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw unreadable(path, e)
    const created = createRootKeyFile(path)
    if (created !== undefined) return created
    fd = openSync(path, 'r') // another process created it first
  }
  try {
    const st = fstatSync(fd)
    /* Precondition: root.key is readable by its owner only. */
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
      throw new DomicileError('ERR_CONFIG_INVALID', `the local provider root key file ${path} is readable by group or others; run: chmod 600 ${path}`, { path })
    }
    const text = readFileSync(fd, 'utf8').trim()
    /* Precondition: root.key holds the base64 of exactly 32 bytes. */
    if (!BASE64_32.test(text)) {
      throw new DomicileError('ERR_CONFIG_INVALID', `the local provider root key file ${path} must hold the base64 encoding of exactly ${ROOT_KEY_BYTES} bytes`, { path })
    }
    return Buffer.from(text, 'base64')
  } finally {
    closeSync(fd)
  }
}

/**
 * Create root.key with mode 0600, atomically: the key is written to a temporary file which is then
 * hard-linked into place (fails if it exists), so no other process ever sees a half-written file.
 * Returns undefined when another process created it first.
 */
function createRootKeyFile(path: string): Buffer | undefined {
  const root = Buffer.alloc(ROOT_KEY_BYTES)
  randomBytes(ROOT_KEY_BYTES).copy(root)
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`
  try {
    const fd = openSync(tmp, 'wx', 0o600)
    try {
      if (process.platform !== 'win32') chmodSync(tmp, 0o600)
      writeSync(fd, `${root.toString('base64')}\n`)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    linkSync(tmp, path)
    return root
  } catch (e) {
    root.fill(0)
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return undefined
    throw unreadable(path, e)
  } finally {
    rmSync(tmp, { force: true })
  }
}

function unreadable(path: string, cause: unknown): DomicileError {
  return new DomicileError('ERR_CONFIG_INVALID', `the local provider root key file ${path} cannot be read or created; check the directory exists and is writable`, { path, cause })
}
