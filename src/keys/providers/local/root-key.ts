/**
 * The local provider's root key and the keys derived from it.
 *
 * The root key protects everything in a local keystore directory: key-encryption-key material and
 * import-job private keys are sealed under HKDF-derived subkeys, and material fingerprints are
 * HMACs under another. Where it comes from, in order:
 *   1. the `rootKey` option (32 bytes);
 *   2. the DOMICILE_ROOT_KEY environment variable (base64 of exactly 32 bytes);
 *   3. a root key file (base64 text, mode 0600; refused if group or others can read it):
 *      - the `rootKeyFile` option, when given;
 *      - else `<dir>/root.key` when it exists (where earlier releases kept it; read, never rewritten);
 *      - else the default, `<dir>.root.key`: BESIDE the keystore directory, not inside it, so a copy
 *        of the keystore directory alone opens nothing (for the default keystore `.domicile/keys`
 *        this is `.domicile/keys.root.key`). In production prefer DOMICILE_ROOT_KEY from a secret store.
 *    A missing root key file is generated (0600, atomically) only while the keystore holds no key
 *    file: a new root key cannot open existing keys, so with keys present a missing root key is
 *    refused with ERR_CONFIG_INVALID and nothing is written.
 * The derived keys live in #private fields; `destroy()` zeroes them.
 */

import { chmodSync, closeSync, existsSync, fstatSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs'
import { randomBytes, timingSafeEqual } from 'node:crypto'
import { dirname, resolve } from 'node:path'
import { hkdfSha256 } from '../../../crypto/hkdf.js'
import { hmacSha256 } from '../../../crypto/hmac.js'
import { DomicileError } from '../../../errors.js'
import { keyFileCount } from './keystore.js'
import { open, seal } from './sealed-box.js'
import type { SealedBox } from './sealed-box.js'

export const ROOT_KEY_ENV = 'DOMICILE_ROOT_KEY'
/** File name of a root key kept inside the keystore directory (the layout of earlier releases; still read). */
export const ROOT_KEY_FILE = 'root.key'
/** Suffix of the default root key file, a sibling of the keystore directory: `<dir>.root.key`. */
export const ROOT_KEY_SUFFIX = '.root.key'

const ROOT_KEY_BYTES = 32
const BASE64_32 = /^[A-Za-z0-9+/]{43}=$/
const enc = new TextEncoder()
const ZERO = new Uint8Array(1)
const HKDF_SALT = enc.encode('domicile-local-keystore-v1')

/** The default root key file of keystore directory `dir`: `<dir>.root.key`, beside it. */
export function defaultRootKeyFile(dir: string): string {
  return `${resolve(dir)}${ROOT_KEY_SUFFIX}`
}

export interface RootKeySource {
  readonly dir: string
  readonly rootKey?: Uint8Array
  /** Root key file to use instead of the default `<dir>.root.key`. */
  readonly rootKeyFile?: string
  /** Environment to read DOMICILE_ROOT_KEY from. Default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>
}

/** Keys derived from the root key, with the operations the keystore needs. */
export class RootKey {
  /** Where the root key came from, for error messages: an option, the variable, or a file path. */
  readonly source: string
  readonly #materialKey: Buffer
  readonly #jobKey: Buffer
  readonly #fingerprintKey: Buffer

  /** Derive the subkeys; `root` is not kept (the caller zeroes its own copy). */
  constructor(root: Uint8Array, source = 'the rootKey option') {
    /* Precondition: the root key is exactly 32 bytes. */
    if (!(root instanceof Uint8Array) || root.length !== ROOT_KEY_BYTES) {
      throw new DomicileError('ERR_CONFIG_INVALID', `the local provider root key must be exactly ${ROOT_KEY_BYTES} bytes`, { path: 'rootKey' })
    }
    this.source = source
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
    return hmacSha256(this.#fingerprintKey, keyId, ZERO, material).toString('base64')
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
  return hkdfSha256(root, HKDF_SALT, enc.encode(label), 32) // its own memory (not pooled)
}

/**
 * Find the root key (option, then environment, then the root key file) and derive the keystore keys.
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
    return withBytes(Buffer.from(trimmed, 'base64'), ROOT_KEY_ENV)
  }
  mkdirSync(src.dir, { recursive: true, mode: 0o700 })
  const path = rootKeyPath(src)
  return withBytes(readOrCreateRootKeyFile(path, src.dir), path)
}

/** The root key file to use: the option, else an older `<dir>/root.key` that exists, else `<dir>.root.key`. */
function rootKeyPath(src: RootKeySource): string {
  if (src.rootKeyFile !== undefined) {
    /* Precondition: the rootKeyFile option is a non-empty path. */
    if (typeof src.rootKeyFile !== 'string' || src.rootKeyFile === '') {
      throw new DomicileError('ERR_CONFIG_INVALID', 'rootKeyFile must be a non-empty path', { path: 'rootKeyFile' })
    }
    return resolve(src.rootKeyFile)
  }
  const inside = resolve(src.dir, ROOT_KEY_FILE)
  const beside = defaultRootKeyFile(src.dir)
  if (!existsSync(inside)) return beside
  if (existsSync(beside)) {
    const a = readRootKeyFile(inside)
    const b = readRootKeyFile(beside)
    const same = timingSafeEqual(a, b)
    a.fill(0)
    b.fill(0)
    /* Precondition: an older root key inside the keystore and a root key beside it are the same key. */
    if (!same) {
      throw new DomicileError('ERR_CONFIG_INVALID', `the local keystore ${resolve(src.dir)} has two different root key files, ${inside} and ${beside}; keep the one its keys were sealed under (the older one, inside, unless you moved it) and remove the other`, { path: beside })
    }
  }
  return inside
}

function withBytes(root: Buffer, source: string): RootKey {
  try {
    return new RootKey(root, source)
  } finally {
    root.fill(0)
  }
}

function readOrCreateRootKeyFile(path: string, dir: string): Buffer {
  if (existsSync(path)) return readRootKeyFile(path)
  const keys = keyFileCount(dir)
  /* Precondition: a root key is generated only for a keystore without keys. */
  if (keys > 0) {
    throw new DomicileError('ERR_CONFIG_INVALID',
      `the local keystore ${resolve(dir)} holds ${keys} key file(s) but its root key file ${path} is missing; restore that file from backup (or set ${ROOT_KEY_ENV} to the root key). A new root key would not open the existing keys, so none is generated`,
      { path })
  }
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
  return createRootKeyFile(path) ?? readRootKeyFile(path) // another process created it first
}

function readRootKeyFile(path: string): Buffer {
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch (e) {
    throw unreadable(path, e)
  }
  try {
    const st = fstatSync(fd)
    /* Precondition: the root key file is readable by its owner only. */
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
      throw new DomicileError('ERR_CONFIG_INVALID', `the local provider root key file ${path} is readable by group or others; run: chmod 600 ${path}`, { path })
    }
    const text = readFileSync(fd, 'utf8').trim()
    /* Precondition: the root key file holds the base64 of exactly 32 bytes. */
    if (!BASE64_32.test(text)) {
      throw new DomicileError('ERR_CONFIG_INVALID', `the local provider root key file ${path} must hold the base64 encoding of exactly ${ROOT_KEY_BYTES} bytes`, { path })
    }
    return Buffer.from(text, 'base64')
  } finally {
    closeSync(fd)
  }
}

/**
 * Create the root key file with mode 0600, atomically: the key is written to a temporary file which is then
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
