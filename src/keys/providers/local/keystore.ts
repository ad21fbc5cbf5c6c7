/**
 * The local keystore: a directory with one JSON file per key-encryption key.
 *
 * Files are written atomically (temporary file with mode 0600, fsync, rename) and read again on
 * every operation, so a disable or delete done by another process takes effect at once. Nothing
 * is cached in memory. Key material and import-job private keys inside a file are sealed under
 * the root key (see root-key.ts); the file itself holds no plaintext secret.
 */

import { randomBytes } from 'node:crypto'
import { readdirSync } from 'node:fs'
import { mkdir, open, readdir, readFile, rename, rm, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { DomicileError } from '../../../errors.js'
import { isSealedBox } from './sealed-box.js'
import type { SealedBox } from './sealed-box.js'

export type LocalKeyState = 'enabled' | 'disabled' | 'pending-import' | 'deleted'
export type KeyOrigin = 'generate' | 'import'

/** The current BYOK import job of a key. */
export interface ImportJobRecord {
  /** The job's RSA private key (PKCS#8 DER), sealed under the root key. */
  readonly privateKey: SealedBox
  /** base64 SHA-256 of the import token; the token itself is never stored. */
  readonly tokenHash: string
  /** ISO timestamp. */
  readonly expiresAt: string
}

/** One key file. */
export interface KeyRecord {
  readonly v: 1
  readonly keyId: string
  readonly label: string
  readonly origin: KeyOrigin
  readonly state: LocalKeyState
  readonly createdAt: string
  readonly updatedAt: string
  /** KEK material sealed under the root key, AAD = keyId; null when pending import or deleted. */
  readonly material: SealedBox | null
  /** HMAC fingerprint of the material; kept after deletion so a re-import can be checked. */
  readonly fingerprint: string | null
  readonly importJob: ImportJobRecord | null
}

const KEY_ID = /^lk_[0-9a-f]{32}$/
const KEY_FILE = /^lk_[0-9a-f]{32}\.json$/
const STATES: ReadonlySet<string> = new Set(['enabled', 'disabled', 'pending-import', 'deleted'])

export class Keystore {
  readonly dir: string
  /** Per-key in-process mutation queue (read-modify-write must not interleave). */
  readonly #locks = new Map<string, Promise<unknown>>()

  constructor(dir: string) {
    this.dir = dir
  }

  /** A fresh random key id: 'lk_' + 16 random bytes as hex. */
  static newKeyId(): string {
    return `lk_${randomBytes(16).toString('hex')}`
  }

  /** True for ids this keystore could have issued (anything else is never a path). */
  static isKeyId(keyId: string): boolean {
    return KEY_ID.test(keyId)
  }

  /** Read a key file; undefined when the id is malformed or no such file exists. */
  async read(keyId: string, signal?: AbortSignal): Promise<KeyRecord | undefined> {
    /* Precondition: the key id has the keystore's format (so it can never name another path). */
    if (!Keystore.isKeyId(keyId)) return undefined
    let text: string
    try {
      text = await readFile(this.#path(keyId), signal === undefined ? { encoding: 'utf8' } : { encoding: 'utf8', signal })
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw e
    }
    return parseRecord(keyId, text)
  }

  /** Write a new key file; fails if one exists. */
  async create(record: KeyRecord): Promise<void> {
    await this.#write(record)
  }

  /**
   * Read, change and write one key file, serialised with other updates of the same key in this
   * process. `change` may throw to abort the update. Throws ERR_KEY_NOT_FOUND for a missing key.
   */
  async update(keyId: string, change: (current: KeyRecord) => KeyRecord | Promise<KeyRecord>): Promise<KeyRecord> {
    return this.#serial(keyId, async () => {
      const current = await this.read(keyId)
      if (current === undefined) throw notFound(keyId)
      const updated = await change(current)
      await this.#write(updated)
      return updated
    })
  }

  /**
   * Destroys a key file: its bytes are overwritten with zeros in place and synced, then the file is
   * removed and the directory synced; so is every temporary file a write of this key left behind
   * when its process was killed (`<id>.json.<hex>.tmp`). Throws ERR_KEY_NOT_FOUND for a missing
   * key. What this cannot reach (stated in shred certificates): earlier versions of the file left
   * in free blocks by atomic rewrites, copy-on-write or journaling file systems, SSD wear levelling,
   * and backups. Those hold the material only sealed under the root key.
   */
  async destroy(keyId: string): Promise<void> {
    /* Precondition: the key id has the keystore's format (so it can never name another path). */
    if (!Keystore.isKeyId(keyId)) throw notFound(keyId)
    await this.#serial(keyId, async () => {
      const path = this.#path(keyId)
      if (!(await this.#zero(path, keyId))) throw notFound(keyId)
      // A write of this key cut short (a killed process) left a temporary file that can hold the
      // key's sealed material: it goes the same way as the key file.
      const prefix = `${keyId}.json.`
      let names: string[]
      try {
        names = (await readdir(this.dir)).filter((n) => n.startsWith(prefix) && /^[0-9a-f]{12}\.tmp$/.test(n.slice(prefix.length)))
      } catch (e) {
        throw unwritable(this.dir, keyId, e)
      }
      for (const name of names) {
        const file = join(this.dir, name)
        if (!(await this.#zero(file, keyId))) continue
        try {
          await unlink(file)
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw unwritable(this.dir, keyId, e)
        }
      }
      try {
        await unlink(path)
        const dirHandle = await open(this.dir, 'r')
        try {
          await dirHandle.sync()
        } finally {
          await dirHandle.close()
        }
      } catch (e) {
        throw unwritable(this.dir, keyId, e)
      }
    })
  }

  /** Overwrites a file of key `keyId` with zeros in place and syncs it; false when there is no such file. */
  async #zero(file: string, keyId: string): Promise<boolean> {
    let fh
    try {
      fh = await open(file, 'r+')
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false
      throw unwritable(this.dir, keyId, e)
    }
    try {
      const { size } = await fh.stat()
      if (size > 0) await fh.write(Buffer.alloc(size), 0, size, 0)
      await fh.sync()
      return true
    } catch (e) {
      throw unwritable(this.dir, keyId, e)
    } finally {
      await fh.close()
    }
  }

  /** Runs `fn` after every earlier mutation of the same key in this process (read-modify-write must not interleave). */
  async #serial<T>(keyId: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#locks.get(keyId) ?? Promise.resolve()
    const next = prev.catch(() => {}).then(fn)
    this.#locks.set(keyId, next)
    try {
      return await next
    } finally {
      if (this.#locks.get(keyId) === next) this.#locks.delete(keyId)
    }
  }

  #path(keyId: string): string {
    return join(this.dir, `${keyId}.json`)
  }

  async #write(record: KeyRecord): Promise<void> {
    /* Precondition: only well-formed key ids become file names. */
    if (!Keystore.isKeyId(record.keyId)) throw notFound(record.keyId)
    await mkdir(this.dir, { recursive: true, mode: 0o700 })
    const target = this.#path(record.keyId)
    const tmp = `${target}.${randomBytes(6).toString('hex')}.tmp`
    try {
      const fh = await open(tmp, 'wx', 0o600)
      try {
        await fh.chmod(0o600)
        await fh.writeFile(`${JSON.stringify(record, null, 2)}\n`, 'utf8')
        await fh.sync()
      } finally {
        await fh.close()
      }
      await rename(tmp, target)
    } catch (e) {
      await rm(tmp, { force: true })
      throw new DomicileError('ERR_KEY_PROVIDER_UNAVAILABLE', `cannot write the local keystore file for key ${record.keyId}; check that ${this.dir} is writable`, { cause: e })
    }
  }
}

/** How many key files the keystore directory `dir` holds (0 when it does not exist). Synchronous: used at construction. */
export function keyFileCount(dir: string): number {
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0
    throw new DomicileError('ERR_CONFIG_INVALID', `the local keystore directory ${dir} cannot be read; check its permissions`, { path: dir, cause: e })
  }
  let n = 0
  for (const name of names) if (KEY_FILE.test(name)) n++
  return n
}

function unwritable(dir: string, keyId: string, cause: unknown): DomicileError {
  return new DomicileError('ERR_KEY_PROVIDER_UNAVAILABLE', `cannot destroy the local keystore file for key ${keyId}; check that ${dir} is writable, then run the destruction again`, { cause })
}

/** ERR_KEY_NOT_FOUND for a local key id. */
export function notFound(keyId: string): DomicileError {
  const shown = Keystore.isKeyId(keyId) ? ` ${keyId}` : ''
  return new DomicileError('ERR_KEY_NOT_FOUND', `local key${shown} does not exist in this keystore; check the key binding's keyId`)
}

function parseRecord(keyId: string, text: string): KeyRecord {
  const corrupt = (): DomicileError =>
    new DomicileError('ERR_KEY_PROVIDER_UNAVAILABLE', `the local keystore file for key ${keyId} is corrupt; restore it from backup`)
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch {
    throw corrupt()
  }
  if (typeof raw !== 'object' || raw === null) throw corrupt()
  const r = raw as Record<string, unknown>
  const job = r.importJob as Record<string, unknown> | null | undefined
  const ok =
    r.v === 1 && r.keyId === keyId && typeof r.label === 'string' &&
    (r.origin === 'generate' || r.origin === 'import') && typeof r.state === 'string' && STATES.has(r.state) &&
    typeof r.createdAt === 'string' && typeof r.updatedAt === 'string' &&
    (r.material === null || isSealedBox(r.material)) &&
    (r.fingerprint === null || typeof r.fingerprint === 'string') &&
    (job === null || (typeof job === 'object' && isSealedBox(job.privateKey) && typeof job.tokenHash === 'string' && typeof job.expiresAt === 'string'))
  if (!ok) throw corrupt()
  return r as unknown as KeyRecord
}
