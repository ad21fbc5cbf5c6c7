/**
 * The subset of the `pkcs11js` binding this provider uses, described structurally, and its lazy
 * loader. Nothing outside this folder sees these types: the exported API of the session and the
 * provider speaks in key ids, Buffers and DomicileErrors.
 */

import { DomicileError } from '../errors.js'

/** A PKCS#11 handle (slot, session or object) as pkcs11js represents it. */
export type Pkcs11Handle = Buffer

export interface Pkcs11Attribute {
  readonly type: number
  readonly value?: number | boolean | string | Buffer
}

export interface Pkcs11AttributeResult {
  readonly type: number
  readonly value: Buffer
}

/** CK_GCM_PARAMS as PKCS#11 v2.40 (errata) / v3 define it, which SoftHSM 2.6 implements. */
export interface Pkcs11GcmParams {
  readonly type: number
  readonly iv: Buffer
  readonly ivBits: number
  readonly aad?: Buffer
  readonly tagBits: number
}

export interface Pkcs11Mechanism {
  readonly mechanism: number
  readonly parameter?: Pkcs11GcmParams
}

/** One loaded PKCS#11 library (`new PKCS11()` + `load(path)`). */
export interface Pkcs11Module {
  load(path: string): void
  C_Initialize(options?: { flags?: number }): void
  C_Finalize(): void
  C_GetSlotList(tokenPresent?: boolean): Pkcs11Handle[]
  C_GetTokenInfo(slot: Pkcs11Handle): { readonly label: string }
  C_OpenSession(slot: Pkcs11Handle, flags: number): Pkcs11Handle
  C_CloseSession(session: Pkcs11Handle): void
  C_Login(session: Pkcs11Handle, userType: number, pin?: string): void
  C_Logout(session: Pkcs11Handle): void
  C_GenerateKey(session: Pkcs11Handle, mechanism: Pkcs11Mechanism, template: Pkcs11Attribute[]): Pkcs11Handle
  C_DestroyObject(session: Pkcs11Handle, object: Pkcs11Handle): void
  C_FindObjectsInit(session: Pkcs11Handle, template: Pkcs11Attribute[]): void
  C_FindObjects(session: Pkcs11Handle, maxObjectCount: number): Pkcs11Handle[]
  C_FindObjectsFinal(session: Pkcs11Handle): void
  C_GetAttributeValue(session: Pkcs11Handle, object: Pkcs11Handle, template: Pkcs11Attribute[]): Pkcs11AttributeResult[]
  C_SetAttributeValue(session: Pkcs11Handle, object: Pkcs11Handle, template: Pkcs11Attribute[]): void
  C_EncryptInit(session: Pkcs11Handle, mechanism: Pkcs11Mechanism, key: Pkcs11Handle): void
  C_Encrypt(session: Pkcs11Handle, inData: Buffer, outData: Buffer): Buffer
  C_DecryptInit(session: Pkcs11Handle, mechanism: Pkcs11Mechanism, key: Pkcs11Handle): void
  C_Decrypt(session: Pkcs11Handle, inData: Buffer, outData: Buffer): Buffer
}

/** The constants this provider uses (pkcs11js exports them as numbers under their PKCS#11 names). */
export const PKCS11_CONSTANTS = [
  'CKA_CLASS', 'CKA_KEY_TYPE', 'CKA_VALUE_LEN', 'CKA_TOKEN', 'CKA_PRIVATE', 'CKA_SENSITIVE',
  'CKA_EXTRACTABLE', 'CKA_ENCRYPT', 'CKA_DECRYPT', 'CKA_MODIFIABLE', 'CKA_LABEL', 'CKA_ID',
  'CKO_SECRET_KEY', 'CKK_AES', 'CKM_AES_KEY_GEN', 'CKM_AES_GCM', 'CK_PARAMS_AES_GCM_v240',
  'CKF_RW_SESSION', 'CKF_SERIAL_SESSION', 'CKF_OS_LOCKING_OK', 'CKU_USER',
] as const

export type Pkcs11ConstantName = (typeof PKCS11_CONSTANTS)[number]

export type Pkcs11Binding = { readonly PKCS11: new () => Pkcs11Module } & Readonly<Record<Pkcs11ConstantName, number>>

let loading: Promise<Pkcs11Binding> | undefined

/**
 * Import `pkcs11js` once per process. A missing or unbuilt package is ERR_KEY_PROVIDER_UNAVAILABLE
 * naming the fix.
 */
export function loadPkcs11Binding(): Promise<Pkcs11Binding> {
  loading ??= importBinding()
  return loading
}

async function importBinding(): Promise<Pkcs11Binding> {
  let imported: unknown
  try {
    imported = await import('pkcs11js')
  } catch (e) {
    loading = undefined
    throw new DomicileError('ERR_KEY_PROVIDER_UNAVAILABLE',
      'The pkcs11 key provider needs the optional package "pkcs11js" (a native addon). Install it with `npm install pkcs11js` and make sure its build step ran.',
      { cause: e })
  }
  // pkcs11js is CommonJS with computed exports: under ESM everything sits on `default`.
  const binding = ((imported as { default?: unknown }).default ?? imported) as Partial<Pkcs11Binding>
  /* Precondition: the installed pkcs11js exposes the class and every constant we use. */
  if (typeof binding.PKCS11 !== 'function' || PKCS11_CONSTANTS.some((name) => typeof binding[name] !== 'number')) {
    loading = undefined
    throw new DomicileError('ERR_KEY_PROVIDER_UNAVAILABLE',
      'The installed "pkcs11js" does not expose the PKCS#11 API this provider needs. Install pkcs11js 2.x.')
  }
  return binding as Pkcs11Binding
}

/** The CKR_* name of a pkcs11js error, or undefined when the error did not come from the library. */
export function ckrName(e: unknown): string | undefined {
  if (typeof e !== 'object' || e === null) return undefined
  const { message, stack } = e as { message?: unknown; stack?: unknown }
  for (const text of [message, stack]) {
    if (typeof text === 'string') {
      const m = /\b(CKR_[A-Z0-9_]+)\b/.exec(text)
      if (m) return m[1]
    }
  }
  return undefined
}
