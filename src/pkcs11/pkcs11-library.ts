/**
 * Process-wide state of each loaded PKCS#11 library: initialisation and per-token login.
 *
 * Cryptoki state is global to the process, not to a session: C_Initialize is once per library,
 * and a login holds for every session of the application on that token (C_Logout ends it for all
 * of them). So sessions share one record per library path, counted:
 * - the library is initialised by the first session and finalised by the last one (only if we
 *   initialised it; if other code in the process did, it stays theirs);
 * - the first session on a token logs in, the last one logs out. A later session on an already
 *   logged-in token would get CKR_USER_ALREADY_LOGGED_IN for ANY pin, so we keep an HMAC of the
 *   pin that logged in (keyed with a per-process random key) and compare, and a wrong pin still
 *   fails.
 */

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { DomicileError } from '../errors.js'
import { ckrName, loadPkcs11Binding, type Pkcs11Binding, type Pkcs11Handle, type Pkcs11Module } from './pkcs11-binding.js'
import { SerialQueue } from './serial-queue.js'

/** One loaded library. Only pkcs11-session.ts uses this. */
export interface Pkcs11Library {
  readonly path: string
  readonly binding: Pkcs11Binding
  readonly module: Pkcs11Module
}

interface LibraryRecord extends Pkcs11Library {
  sessions: number
  initialized: boolean
  initializedByUs: boolean
  readonly logins: Map<string, { sessions: number; readonly pinMac: Buffer }>
}

const records = new Map<string, LibraryRecord>()
const PIN_MAC_KEY = randomBytes(32)
const pinRejections = new WeakSet<object>()

/**
 * True for the error of a login the token refused because of the pin (incorrect, locked, invalid).
 * Retrying with the same pin is pointless and counts against the token's retry limit.
 */
export function isPinRejected(e: unknown): boolean {
  return typeof e === 'object' && e !== null && pinRejections.has(e)
}

function pinRejected(error: DomicileError): DomicileError {
  pinRejections.add(error)
  return error
}

/** Serialises open/close across the process: they touch the shared records above. */
export const lifecycleQueue = new SerialQueue()

/** Names the library and token in a message; never the pin. */
export function unavailable(what: string, library: string, tokenLabel: string, cause?: unknown): DomicileError {
  const ckr = ckrName(cause)
  return new DomicileError('ERR_KEY_PROVIDER_UNAVAILABLE',
    `PKCS#11 token "${tokenLabel}" (library ${library}): ${what}${ckr === undefined ? '' : ` (${ckr})`}.`,
    cause === undefined ? undefined : { cause })
}

/** Load (once) and initialise (if needed) the library at `path`; counts one session. Call inside lifecycleQueue. */
export async function acquireLibrary(path: string, tokenLabel: string): Promise<Pkcs11Library> {
  let record = records.get(path)
  if (record === undefined) {
    const binding = await loadPkcs11Binding()
    const module = new binding.PKCS11()
    try {
      module.load(path)
    } catch (e) {
      throw unavailable('could not load the PKCS#11 library; check the library path and that the file is a PKCS#11 module', path, tokenLabel, e)
    }
    record = { path, binding, module, sessions: 0, initialized: false, initializedByUs: false, logins: new Map() }
    records.set(path, record)
  }
  if (!record.initialized) {
    try {
      record.module.C_Initialize({ flags: record.binding.CKF_OS_LOCKING_OK })
      record.initializedByUs = true
    } catch (e) {
      if (ckrName(e) !== 'CKR_CRYPTOKI_ALREADY_INITIALIZED') {
        throw unavailable('C_Initialize failed; check the library configuration (for SoftHSM: SOFTHSM2_CONF and its token directory)', path, tokenLabel, e)
      }
      record.initializedByUs = false
    }
    record.initialized = true
  }
  record.sessions++
  return record
}

/** Count one session less; the last one finalises the library if we initialised it. Call inside lifecycleQueue. */
export function releaseLibrary(library: Pkcs11Library): void {
  const record = records.get(library.path)
  if (record === undefined || record.sessions === 0) return
  record.sessions--
  if (record.sessions === 0 && record.initialized) {
    if (record.initializedByUs) {
      try { record.module.C_Finalize() } catch { /* already finalised by someone else: nothing to release */ }
    }
    record.initialized = false
    record.logins.clear()
  }
}

function slotKey(slot: Pkcs11Handle): string {
  return slot.toString('hex')
}

function pinMac(pin: string): Buffer {
  return createHmac('sha256', PIN_MAC_KEY).update(pin, 'utf8').digest()
}

/** Log the user in on `slot` through `session`, or join an existing login made with the same pin. */
export function login(library: Pkcs11Library, slot: Pkcs11Handle, session: Pkcs11Handle, pin: string, tokenLabel: string): void {
  const record = records.get(library.path)
  if (record === undefined) throw unavailable('library is not loaded', library.path, tokenLabel)
  const key = slotKey(slot)
  const mac = pinMac(pin)
  const existing = record.logins.get(key)
  if (existing !== undefined) {
    /* Precondition: a session joining an existing login presents the same pin. */
    if (!timingSafeEqual(existing.pinMac, mac)) throw pinRejected(unavailable('login failed: the pin is incorrect', library.path, tokenLabel))
    existing.sessions++
    return
  }
  try {
    library.module.C_Login(session, library.binding.CKU_USER, pin)
  } catch (e) {
    const ckr = ckrName(e)
    if (ckr === 'CKR_USER_ALREADY_LOGGED_IN' || ckr === 'CKR_USER_ANOTHER_ALREADY_LOGGED_IN') {
      throw unavailable('the token is already logged in by other code in this process, so the pin cannot be verified; use one Pkcs11Session owner per token', library.path, tokenLabel, e)
    }
    if (ckr === 'CKR_PIN_INCORRECT' || ckr === 'CKR_PIN_INVALID' || ckr === 'CKR_PIN_LEN_RANGE' || ckr === 'CKR_PIN_EXPIRED') {
      throw pinRejected(unavailable('login failed: the pin is incorrect', library.path, tokenLabel, e))
    }
    if (ckr === 'CKR_PIN_LOCKED') throw pinRejected(unavailable('login failed: the user pin is locked; unlock it with the SO pin', library.path, tokenLabel, e))
    throw unavailable('login failed', library.path, tokenLabel, e)
  }
  record.logins.set(key, { sessions: 1, pinMac: mac })
}

/** Leave the login on `slot`; the last session logs out (which ends the login for the whole process). */
export function logout(library: Pkcs11Library, slot: Pkcs11Handle, session: Pkcs11Handle): void {
  const record = records.get(library.path)
  const key = slotKey(slot)
  const existing = record?.logins.get(key)
  if (record === undefined || existing === undefined) return
  existing.sessions--
  if (existing.sessions === 0) {
    record.logins.delete(key)
    try { library.module.C_Logout(session) } catch { /* session already gone: the login went with it */ }
  }
}
