/**
 * The sealed-field format, version 1: how one field value is encrypted under a tenant data key.
 *
 * Layout (docs/FORMAT.md has the byte-by-byte spec and test vectors):
 *
 *   [0x01 version][data-key number, uint32 BE][12-byte nonce][ciphertext][16-byte GCM tag]
 *
 * The ciphertext is AES-256-GCM of [1-byte type tag][value bytes], so `open` returns the type that
 * was sealed (string, bytes, or a JSON value). The AAD binds the value to where it lives:
 *
 *   AAD = lp("domicile/sealed-field") || lp(tenantId) || lp(table) || lp(column)
 *         || lp(header: the 5 bytes version + data-key number) || lp(rowKey as a string)
 *
 * where lp(x) = uint32 BE byte length of x, then x (strings UTF-8). A value copied to another
 * row, column, table or tenant, or relabelled with another key number, fails to open.
 *
 * Every header field is checked before anything else reads it (`readKeyNumber`, `open`): at least 34
 * bytes, version 0x01, data-key number 1..2^31-1 (the keyring numbers keys from 1 in an `integer`
 * column, so no other number can name a key). Every failure to open (truncated, unknown version, key
 * number out of range, bit flipped, wrong key, wrong place) is the one opaque `DecryptionFailedError`.
 *
 * AES-GCM itself is src/crypto/aead.ts (`gcmCipher`, `gcmSealInto`, `gcmOpenAt`); seal uses a cipher
 * prepared ahead when the data-key cache manages the key (`takeGcm`). `sealedFieldLayer` exposes the
 * codec's framing and cipher steps without the column/value encoding, for the Wycheproof vectors.
 *
 * Speed: `prepareColumn` precomputes the constant AAD prefix for a column, nonces come from a
 * bulk-drawn pool, and the output is built in one buffer. `sealField` / `openField` use a small
 * bounded memo of prepared columns, so they are nearly as fast.
 */

import type { CipherGCM } from 'node:crypto'
import { takeGcm, type ReadyGcm } from '../crypto/context-reserve.js'
import { DecryptionFailedError, DomicileError } from '../errors.js'
import { AES_KEY_BYTES, assertAesKey, GCM_NONCE_BYTES, gcmCipher, gcmOpenAt, gcmSealInto } from '../crypto/aead.js'
import { encodeLengthPrefixed } from '../crypto/length-prefix.js'
import { defaultNonceSource, type NonceSource } from '../crypto/nonce-source.js'
import { isSealedValue } from './sealed-value.js'

/** Format version byte of sealed fields written by this module. */
export const SEALED_FIELD_VERSION = 0x01
/** Domain-separation label, the first AAD element. */
export const SEALED_FIELD_AAD_LABEL = 'domicile/sealed-field'
/** Header (5) + nonce (12) + tag (16) + type tag (1): bytes added to the value's own bytes. */
export const SEALED_FIELD_OVERHEAD = 34

/** Type tags, the first plaintext byte. */
export const FIELD_TYPE_STRING = 0x01
export const FIELD_TYPE_BYTES = 0x02
export const FIELD_TYPE_JSON = 0x03

// Hot-path copies of imported constants (module-local bindings are the cheapest to read).
const KEY_BYTES = AES_KEY_BYTES
const DEFAULT_NONCES: NonceSource = defaultNonceSource
const typedFill = Uint8Array.prototype.fill // skips Buffer#fill's argument parsing
/** Zeroes a buffer that held plaintext. */
const wipe = (b: Uint8Array): void => {
  typedFill.call(b, 0)
}
const HEADER_BYTES = 5
const NONCE_OFFSET = 5
const BODY_OFFSET = 17
const TAG_BYTES = 16
/** Data-key numbers are 1..2^31-1: the keyring numbers keys from 1 in a PostgreSQL `integer` column. */
export const MIN_KEY_NUMBER = 1
export const MAX_KEY_NUMBER = 0x7fff_ffff
/** Longest tenant id / table / column name, in UTF-8 bytes. */
const MAX_NAME_BYTES = 1024
/** Row keys up to this many UTF-16 units are encoded into the prepared AAD buffer in place. */
const ROW_KEY_INLINE_UNITS = 128

/** Where a column lives: the constant part of a field's AAD. */
export interface ColumnRef {
  readonly tenantId: string
  readonly table: string
  readonly column: string
}

/** A row's primary key. Numbers and bigints are bound as their decimal string. */
export type RowKey = string | number | bigint

/** Where a field value lives: the whole AAD context. */
export interface FieldContext extends ColumnRef {
  readonly rowKey: RowKey
}

/**
 * What a field can hold. Strings and bytes are stored natively; numbers, booleans, null, arrays
 * and objects as JSON (so they come back as `JSON.parse(JSON.stringify(v))`).
 */
export type FieldPlain = string | Uint8Array | number | boolean | null | object

export interface SealOptions {
  /** Fixed nonce, for test vectors only. Never reuse a nonce under one key. */
  readonly nonce?: Uint8Array
}

// Scratch for [type tag][value bytes] of small values: no allocation per seal. It is zeroed after
// each use. Seal runs synchronously and calls no user code while the scratch is in use.
const PLAIN_SCRATCH = Buffer.alloc(8192)
const PLAIN_SCRATCH_UNITS = Math.floor((PLAIN_SCRATCH.length - 1) / 3)

const hasIsWellFormed = typeof (String.prototype as { isWellFormed?: unknown }).isWellFormed === 'function'
const LONE_SURROGATE = /\p{Surrogate}/u
function isWellFormed(s: string): boolean {
  return hasIsWellFormed ? (s as unknown as { isWellFormed(): boolean }).isWellFormed() : !LONE_SURROGATE.test(s)
}

function assertName(v: unknown, what: string): asserts v is string {
  /* Precondition: tenant id, table and column are non-empty, well-formed strings of at most 1024 bytes. */
  if (typeof v !== 'string' || v.length === 0 || Buffer.byteLength(v, 'utf8') > MAX_NAME_BYTES || !isWellFormed(v)) {
    throw new DomicileError('ERR_INPUT_INVALID', `The field context's ${what} must be a non-empty string of at most 1024 bytes.`, { path: what })
  }
}

function rowKeyString(rowKey: RowKey): string {
  if (typeof rowKey === 'string') {
    /* Precondition: a string row key is well-formed UTF-16 (no lone surrogates). */
    if (!isWellFormed(rowKey)) throw new DomicileError('ERR_INPUT_INVALID', 'The row key contains a lone surrogate; row keys must be well-formed strings.', { path: 'rowKey' })
    return rowKey
  }
  if (typeof rowKey === 'bigint') return rowKey.toString(10)
  /* Precondition: a numeric row key is a safe integer. */
  if (typeof rowKey === 'number' && Number.isSafeInteger(rowKey)) return String(rowKey)
  throw new DomicileError('ERR_INPUT_INVALID', 'The row key must be a string, a safe integer or a bigint.', { path: 'rowKey' })
}

function assertKeyNumber(keyNumber: number): void {
  /* Precondition: the data-key number is an integer in 1..2^31-1. */
  if (!Number.isInteger(keyNumber) || keyNumber < MIN_KEY_NUMBER || keyNumber > MAX_KEY_NUMBER) {
    throw new DomicileError('ERR_INPUT_INVALID', 'The data-key number must be an integer from 1 to 2147483647.')
  }
}

function checkKey(key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.byteLength !== KEY_BYTES) assertAesKey(key)
}

/**
 * Checks every header field of a sealed value and returns its data-key number; anything else is the
 * opaque `DecryptionFailedError`. Header: length >= 34 (header, nonce, type byte, tag), version
 * 0x01, key number 1..2^31-1 (top bit clear, not zero). The type byte is inside the ciphertext and
 * is checked after authentication (`decodePlain`).
 */
function parseHeader(sealed: Uint8Array): number {
  /* Precondition: sealed is a v1 sealed field: a byte array of at least 34 bytes, version byte 0x01, key number 1..2^31-1. */
  if (!(sealed instanceof Uint8Array) || sealed.byteLength < SEALED_FIELD_OVERHEAD || sealed[0] !== SEALED_FIELD_VERSION || sealed[1]! > 0x7f) {
    throw new DecryptionFailedError()
  }
  const n = (sealed[1]! << 24) | (sealed[2]! << 16) | (sealed[3]! << 8) | sealed[4]!
  if (n === 0) throw new DecryptionFailedError()
  return n
}

function checkFixedNonce(nonce: Uint8Array): void {
  /* Precondition: a fixed nonce is 12 bytes. */
  if (!(nonce instanceof Uint8Array) || nonce.byteLength !== GCM_NONCE_BYTES) {
    throw new DomicileError('ERR_INPUT_INVALID', 'A fixed nonce must be 12 bytes.')
  }
}

/** A fresh buffer for a value of `ptLen` plaintext bytes, with its 5 header bytes written. */
function frame(keyNumber: number, ptLen: number): Buffer {
  const out = Buffer.allocUnsafe(BODY_OFFSET + ptLen + TAG_BYTES)
  out[0] = SEALED_FIELD_VERSION
  out[1] = keyNumber >>> 24
  out[2] = (keyNumber >>> 16) & 0xff
  out[3] = (keyNumber >>> 8) & 0xff
  out[4] = keyNumber & 0xff
  return out
}

function invalidValue(): DomicileError {
  return new DomicileError('ERR_INPUT_INVALID',
    'A field value must be a string, a Uint8Array, a finite number, a boolean, null, or a JSON-serialisable array or object.')
}

/** Encodes [type tag][bytes] into the scratch when it fits, else a fresh buffer. */
function encodePlain(value: FieldPlain): Buffer {
  let tag: number
  let text: string
  if (typeof value === 'string') {
    /* Precondition: a string value is well-formed UTF-16, so it round-trips exactly. */
    if (!isWellFormed(value)) {
      throw new DomicileError('ERR_INPUT_INVALID', 'The string contains a lone surrogate and would not round-trip. Pass well-formed text, or bytes.')
    }
    tag = FIELD_TYPE_STRING
    text = value
  } else if (value instanceof Uint8Array) {
    const n = value.byteLength + 1
    const buf = n <= PLAIN_SCRATCH.length ? PLAIN_SCRATCH.subarray(0, n) : Buffer.allocUnsafe(n)
    buf[0] = FIELD_TYPE_BYTES
    buf.set(value, 1)
    return buf
  } else {
    /* Precondition: the value is JSON-serialisable (finite numbers, no undefined/function/symbol/bigint) and not already sealed. */
    if (value === undefined || typeof value === 'function' || typeof value === 'symbol' || typeof value === 'bigint' ||
        (typeof value === 'number' && !Number.isFinite(value)) || isSealedValue(value)) {
      throw invalidValue()
    }
    let json: string | undefined
    try {
      json = JSON.stringify(value)
    } catch {
      throw invalidValue() // cycles, bigint inside: no cause, it could carry values
    }
    if (json === undefined) throw invalidValue()
    tag = FIELD_TYPE_JSON
    text = json
  }
  if (text.length <= PLAIN_SCRATCH_UNITS) {
    PLAIN_SCRATCH[0] = tag
    const n = PLAIN_SCRATCH.write(text, 1, 'utf8')
    return PLAIN_SCRATCH.subarray(0, n + 1)
  }
  const len = Buffer.byteLength(text, 'utf8')
  const buf = Buffer.allocUnsafe(len + 1)
  buf[0] = tag
  buf.write(text, 1, 'utf8')
  return buf
}

/** Decodes [type tag][bytes] and zeroes `pt`. Unknown tags are an opaque failure. */
function decodePlain(pt: Buffer): FieldPlain {
  const tag = pt[0]
  try {
    if (tag === FIELD_TYPE_STRING) return pt.toString('utf8', 1)
    if (tag === FIELD_TYPE_BYTES) return new Uint8Array(pt.subarray(1))
    if (tag === FIELD_TYPE_JSON) return JSON.parse(pt.toString('utf8', 1)) as FieldPlain
  } catch {
    // authenticated but undecodable: written by a broken writer; same opaque failure
  } finally {
    wipe(pt)
  }
  throw new DecryptionFailedError()
}

/**
 * A column with its constant AAD prefix precomputed. Create one per (tenant, table, column) and
 * reuse it for every row; it holds no key material.
 *
 * @example
 * const email = prepareColumn({ tenantId: 'acme', table: 'customers', column: 'email' })
 * const sealed = email.seal(dataKey, 7, 'cust-42', 'ada@example.com')
 * email.open(dataKey, 'cust-42', sealed) // 'ada@example.com'
 */
export class PreparedColumn implements ColumnRef {
  readonly tenantId: string
  readonly table: string
  readonly column: string
  /** lp(label) lp(tenant) lp(table) lp(column) lp-len(5), then room for header and row key. */
  readonly #aad: Buffer
  /** Offset of the 5 header bytes inside #aad. */
  readonly #headerAt: number
  /** Last AAD view handed out; reused while row keys keep the same byte length (UUIDs, ids). */
  #view: Buffer

  constructor(ref: ColumnRef) {
    assertName(ref.tenantId, 'tenantId')
    assertName(ref.table, 'table')
    assertName(ref.column, 'column')
    this.tenantId = ref.tenantId
    this.table = ref.table
    this.column = ref.column
    const prefix = encodeLengthPrefixed([SEALED_FIELD_AAD_LABEL, ref.tenantId, ref.table, ref.column])
    this.#headerAt = prefix.length + 4
    this.#aad = Buffer.alloc(this.#headerAt + HEADER_BYTES + 4 + ROW_KEY_INLINE_UNITS * 3)
    this.#aad.set(prefix, 0)
    this.#aad.writeUInt32BE(HEADER_BYTES, prefix.length)
    this.#view = this.#aad.subarray(0, 0)
    Object.freeze(this) // #private fields stay writable
  }

  /**
   * Seals `value` for row `rowKey` of this column under data key `key`, whose number in the
   * tenant's keyring is `keyNumber`. Returns the sealed bytes (34 bytes more than the value).
   */
  seal(key: Uint8Array, keyNumber: number, rowKey: RowKey, value: FieldPlain, options?: SealOptions): Buffer {
    checkKey(key)
    assertKeyNumber(keyNumber)
    const rk = rowKeyString(rowKey)
    const fixedNonce = options?.nonce
    if (fixedNonce !== undefined) checkFixedNonce(fixedNonce)
    // Encode first: JSON.stringify may run user code (toJSON); nothing after this does.
    const pt = encodePlain(value)
    try {
      const out = frame(keyNumber, pt.length)
      // A cipher prepared ahead (keys the data-key cache manages), else one made in sealBody.
      sealBody(out, key, fixedNonce === undefined ? takeGcm(key) : undefined, fixedNonce, pt, this.#aadFor(out, rk))
      return out
    } finally {
      wipe(pt)
    }
  }

  /**
   * Opens a sealed value of row `rowKey` of this column. Any failure throws the opaque
   * `DecryptionFailedError`.
   */
  open(key: Uint8Array, rowKey: RowKey, sealed: Uint8Array): FieldPlain {
    checkKey(key)
    const rk = rowKeyString(rowKey)
    /* Precondition: sealed is a byte array. */
    if (!(sealed instanceof Uint8Array)) throw new DomicileError('ERR_INPUT_INVALID', 'A sealed field must be a Uint8Array.')
    parseHeader(sealed)
    return decodePlain(openBody(key, sealed, this.#aadFor(sealed, rk)))
  }

  /** AAD for this column: copies the 5 header bytes from `header[0..5]` and appends lp(rowKey). */
  #aadFor(header: Uint8Array, rk: string): Buffer {
    const inline = rk.length <= ROW_KEY_INLINE_UNITS
    const h = this.#headerAt
    let aad = this.#aad
    if (!inline) {
      // Long row key: a one-off buffer with the same prefix.
      const big = Buffer.allocUnsafe(h + HEADER_BYTES + 4 + Buffer.byteLength(rk, 'utf8'))
      aad.copy(big, 0, 0, h)
      aad = big
    }
    aad[h] = header[0]!
    aad[h + 1] = header[1]!
    aad[h + 2] = header[2]!
    aad[h + 3] = header[3]!
    aad[h + 4] = header[4]!
    const at = h + HEADER_BYTES
    const n = aad.write(rk, at + 4, 'utf8')
    aad.writeUInt32BE(n, at)
    const end = at + 4 + n
    if (!inline) return aad
    if (this.#view.length !== end) this.#view = aad.subarray(0, end)
    return this.#view
  }
}

/**
 * Prepares a column for repeated seal/open (precomputes its AAD prefix).
 *
 * @example
 * const col = prepareColumn({ tenantId: 'acme', table: 'customers', column: 'email' })
 */
export function prepareColumn(ref: ColumnRef): PreparedColumn {
  return ref instanceof PreparedColumn ? ref : new PreparedColumn(ref)
}

// Bounded memo of prepared columns for sealField/openField. Holds only public identifiers.
const MEMO_LIMIT = 1024
const memo = new Map<string, Map<string, Map<string, PreparedColumn>>>()
let memoSize = 0
/** The column used last: bulk work on one column skips the map lookups. */
let lastColumn: PreparedColumn | undefined

function memoized(ctx: ColumnRef): PreparedColumn {
  const last = lastColumn
  if (last !== undefined && last.column === ctx.column && last.table === ctx.table && last.tenantId === ctx.tenantId) return last
  const col = lookupOrPrepare(ctx)
  lastColumn = col
  return col
}

function lookupOrPrepare(ctx: ColumnRef): PreparedColumn {
  const byTable = memo.get(ctx.tenantId)
  const byColumn = byTable?.get(ctx.table)
  const hit = byColumn?.get(ctx.column)
  if (hit !== undefined) return hit
  const col = new PreparedColumn(ctx) // validates
  if (memoSize >= MEMO_LIMIT) {
    memo.clear()
    memoSize = 0
  }
  let t = memo.get(col.tenantId)
  if (t === undefined) memo.set(col.tenantId, (t = new Map()))
  let c = t.get(col.table)
  if (c === undefined) t.set(col.table, (c = new Map()))
  c.set(col.column, col)
  memoSize++
  return col
}

/**
 * Seals one field value. `nonce` is for test vectors only; leave it out in real use.
 *
 * @example
 * const sealed = sealField(dataKey, 7, { tenantId: 'acme', table: 'customers', column: 'email', rowKey: 'cust-42' }, 'ada@example.com')
 */
export function sealField(key: Uint8Array, keyNumber: number, ctx: FieldContext, value: FieldPlain, nonce?: Uint8Array): Buffer {
  /* Precondition: a field context is an object. */
  if (typeof ctx !== 'object' || ctx === null) throw new DomicileError('ERR_INPUT_INVALID', 'A field context { tenantId, table, column, rowKey } is required.')
  return memoized(ctx).seal(key, keyNumber, ctx.rowKey, value, nonce === undefined ? undefined : { nonce })
}

/**
 * Opens one sealed field value; returns what was sealed (string, Uint8Array or JSON value).
 * Throws the opaque `DecryptionFailedError` on any failure.
 *
 * @example
 * openField(dataKey, { tenantId: 'acme', table: 'customers', column: 'email', rowKey: 'cust-42' }, sealed) // 'ada@example.com'
 */
export function openField(key: Uint8Array, ctx: FieldContext, sealed: Uint8Array): FieldPlain {
  if (typeof ctx !== 'object' || ctx === null) throw new DomicileError('ERR_INPUT_INVALID', 'A field context { tenantId, table, column, rowKey } is required.')
  return memoized(ctx).open(key, ctx.rowKey, sealed)
}

/**
 * The data-key number in a sealed value's header, so the caller can fetch that key.
 * Throws the opaque `DecryptionFailedError` if the bytes are not a v1 sealed field.
 *
 * @example
 * const keyNumber = readKeyNumber(sealed) // e.g. 7
 */
export function readKeyNumber(sealed: Uint8Array): number {
  return parseHeader(sealed)
}

/**
 * The encryption step of `seal`: writes the nonce and ciphertext || tag into `out` (from `frame`).
 * A prepared cipher brings its own nonce; else the fixed nonce, else one from the process pool.
 */
function sealBody(out: Buffer, key: Uint8Array, ready: ReadyGcm | undefined, fixedNonce: Uint8Array | undefined, pt: Uint8Array, aad: Uint8Array): void {
  let cipher: CipherGCM
  if (ready !== undefined) {
    out.set(ready.nonce, NONCE_OFFSET)
    cipher = ready.cipher
  } else {
    if (fixedNonce !== undefined) out.set(fixedNonce, NONCE_OFFSET)
    else DEFAULT_NONCES.nextInto(out, NONCE_OFFSET)
    cipher = gcmCipher(key, out.subarray(NONCE_OFFSET, BODY_OFFSET))
  }
  gcmSealInto(cipher, pt, aad, out, BODY_OFFSET)
}

/** The decryption step of `open`: nonce at 5..17, ciphertext from 17, tag in the last 16 bytes. */
function openBody(key: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Buffer {
  return gcmOpenAt(key, sealed.subarray(NONCE_OFFSET, BODY_OFFSET), sealed, BODY_OFFSET, aad)
}

/**
 * The AEAD layer of the codec alone, for the Wycheproof vectors (test/unit/crypto/aead.test.ts):
 * the same framing, header checks and cipher steps as `seal` / `open`, with the AAD and the
 * plaintext (type byte included) given instead of built from a column, row key and value.
 * Not for application use: `seal` draws nonces itself.
 */
export const sealedFieldLayer = Object.freeze({
  /** header(keyNumber) || nonce || AES-256-GCM(key, nonce, aad, plaintext) || tag. */
  seal(key: Uint8Array, keyNumber: number, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Buffer {
    checkKey(key)
    assertKeyNumber(keyNumber)
    checkFixedNonce(nonce)
    const out = frame(keyNumber, plaintext.byteLength)
    sealBody(out, key, undefined, nonce, plaintext, aad)
    return out
  },
  /** Checks the header and returns the authenticated plaintext (type byte included); else the opaque error. */
  open(key: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Buffer {
    checkKey(key)
    parseHeader(sealed)
    return openBody(key, sealed, aad)
  },
})

/**
 * The AAD for a field, built the slow, obvious way from the spec (for tests, tools and second
 * implementations; the codec uses a precomputed equivalent).
 */
export function encodeFieldAad(ctx: FieldContext, keyNumber: number): Buffer {
  assertName(ctx.tenantId, 'tenantId')
  assertName(ctx.table, 'table')
  assertName(ctx.column, 'column')
  assertKeyNumber(keyNumber)
  const header = Buffer.alloc(HEADER_BYTES)
  header[0] = SEALED_FIELD_VERSION
  header.writeUInt32BE(keyNumber, 1)
  return encodeLengthPrefixed([SEALED_FIELD_AAD_LABEL, ctx.tenantId, ctx.table, ctx.column, header, rowKeyString(ctx.rowKey)])
}
