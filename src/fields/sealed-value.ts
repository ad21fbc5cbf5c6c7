/**
 * SealedValue: a sealed field as the application sees it before it is revealed.
 *
 * It holds the sealed bytes and where they live (tenant, table, column, row key) in #private
 * fields, and prints as "[sealed]" everywhere a value can leak by accident: String(v), template
 * literals, JSON.stringify, console.log / util.inspect. Only the data layer reads the contents,
 * through the module functions `sealedBytes` and `sealedLocation` (not instance methods, so an
 * object dumper walking the instance finds nothing).
 *
 * `isSealedValue` checks a `Symbol.for` brand, so two copies of the package agree.
 */

import { inspect } from 'node:util'
import { DomicileError } from '../errors.js'

const BRAND = Symbol.for('domicile.sealed-value')
const SHOWN = '[sealed]'
const EMPTY = new Uint8Array(0)

/** Where a sealed value lives (the same identifiers its AAD binds). */
export interface SealedLocation {
  readonly tenantId: string
  readonly table: string
  readonly column: string
  readonly rowKey: string | number | bigint
}

/** Where a column lives: the part of a location shared by every row of a column. */
export interface SealedColumn {
  readonly tenantId: string
  readonly table: string
  readonly column: string
}

let readBytes: (v: SealedValue) => Uint8Array
let readLocation: (v: SealedValue) => SealedLocation
let isOwn: (v: unknown) => boolean
// Set only for the duration of `adoptSealed`'s constructor call.
let adopting = false
let adoptBytes: Uint8Array = new Uint8Array(0)
let adoptColumn: SealedColumn = Object.freeze({ tenantId: '', table: '', column: '' })
let adoptRowKey = ''

/**
 * A sealed field value. Never shows its contents.
 *
 * @example
 * const v = new SealedValue(sealedBytesFromDb, { tenantId: 'acme', table: 'customers', column: 'email', rowKey: 'c1' })
 * `${v}` // '[sealed]'
 */
export class SealedValue {
  readonly #bytes: Uint8Array
  /** Frozen and shared by the values of one column (the data layer's path) or this value's own. */
  readonly #column: SealedColumn
  readonly #rowKey: string | number | bigint

  static {
    readBytes = (v) => v.#bytes
    isOwn = (v) => typeof v === 'object' && v !== null && #bytes in v
    readLocation = (v) => Object.freeze({ tenantId: v.#column.tenantId, table: v.#column.table, column: v.#column.column, rowKey: v.#rowKey })
    // The brand lives on the prototype: one property for all instances, checked by isSealedValue.
    Object.defineProperty(SealedValue.prototype, BRAND, { value: true })
  }

  /** Takes its own copy of `bytes`. */
  constructor(bytes: Uint8Array, location: SealedLocation) {
    if (adopting) {
      adopting = false
      this.#bytes = adoptBytes
      this.#column = adoptColumn
      this.#rowKey = adoptRowKey
      Object.freeze(this)
      return
    }
    /* Precondition: sealed bytes are a Uint8Array. */
    if (!(bytes instanceof Uint8Array)) throw new DomicileError('ERR_INPUT_INVALID', 'SealedValue needs the sealed bytes as a Uint8Array.')
    /* Precondition: the location names tenant, table, column and row key. */
    if (typeof location !== 'object' || location === null || typeof location.tenantId !== 'string' ||
        typeof location.table !== 'string' || typeof location.column !== 'string' ||
        !['string', 'number', 'bigint'].includes(typeof location.rowKey)) {
      throw new DomicileError('ERR_INPUT_INVALID', 'SealedValue needs a location { tenantId, table, column, rowKey }.')
    }
    this.#bytes = new Uint8Array(bytes)
    this.#column = Object.freeze({ tenantId: location.tenantId, table: location.table, column: location.column })
    this.#rowKey = location.rowKey
    Object.freeze(this)
  }

  toString(): string {
    return SHOWN
  }

  toJSON(): string {
    return SHOWN
  }

  [Symbol.toPrimitive](): string {
    return SHOWN
  }

  [inspect.custom](): string {
    return SHOWN
  }

  get [Symbol.toStringTag](): string {
    return 'SealedValue'
  }
}

/**
 * For the data layer: wraps sealed bytes it owns and will not touch again (a fresh buffer from
 * the driver, or the output of a seal) without copying them. `column` must be frozen; it is
 * shared by all values of that column.
 */
export function adoptSealed(bytes: Uint8Array, column: SealedColumn, rowKey: string): SealedValue {
  adopting = true
  adoptBytes = bytes
  adoptColumn = column
  adoptRowKey = rowKey
  const v = new SealedValue(bytes, undefined as unknown as SealedLocation)
  adoptBytes = EMPTY
  return v
}

/** True for a SealedValue from any copy of this package. */
export function isSealedValue(v: unknown): v is SealedValue {
  return typeof v === 'object' && v !== null && (v as Record<symbol, unknown>)[BRAND] === true
}

function assertOwn(v: unknown): asserts v is SealedValue {
  /* Precondition: the value is a SealedValue of this copy of the package. */
  if (!isOwn(v)) throw new DomicileError('ERR_INPUT_INVALID', 'Expected a SealedValue created by this copy of domicile.')
}

/**
 * For the data layer: the sealed bytes (the stored ciphertext). Do not mutate the result.
 *
 * @example
 * await db.insertInto('customers').values({ email: sealedBytes(v) })
 */
export function sealedBytes(v: SealedValue): Uint8Array {
  assertOwn(v)
  return readBytes(v)
}

/** For the data layer: where the sealed value lives (its AAD context). */
export function sealedLocation(v: SealedValue): SealedLocation {
  assertOwn(v)
  return readLocation(v)
}
