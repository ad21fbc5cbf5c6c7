/**
 * Exact decimal arithmetic on the text form PostgreSQL gives for integer, bigint and numeric
 * values, so that sums merged from several regions equal the sum one database would compute (no
 * floating-point drift, no 2^53 limit while merging). Only what merging needs: add, compare,
 * normalise.
 */
import { DomicileError } from '../errors.js'

const DECIMAL = /^(-?)(\d+)(?:\.(\d+))?$/

interface Scaled {
  readonly units: bigint
  readonly scale: number
}

function parse(text: string): Scaled {
  const m = DECIMAL.exec(text)
  /* Precondition: a merged figure is a finite decimal (numeric NaN and infinities are not aggregated). */
  if (!m) {
    throw new DomicileError('ERR_QUERY_UNSUPPORTED',
      'A region returned a non-finite aggregate (numeric NaN or Infinity in the measured column). Filter those rows out with a range filter and run the query again.')
  }
  const frac = m[3] ?? ''
  const units = BigInt(`${m[2]}${frac}`)
  return { units: m[1] === '-' ? -units : units, scale: frac.length }
}

function rescale(x: Scaled, scale: number): bigint {
  return x.units * 10n ** BigInt(scale - x.scale)
}

function format(units: bigint, scale: number): string {
  const neg = units < 0n
  let digits = (neg ? -units : units).toString()
  if (scale > 0) {
    digits = digits.padStart(scale + 1, '0')
    digits = `${digits.slice(0, -scale)}.${digits.slice(-scale)}`
  }
  return neg ? `-${digits}` : digits
}

/** a + b, exactly. */
export function addDecimal(a: string, b: string): string {
  const x = parse(a)
  const y = parse(b)
  const scale = Math.max(x.scale, y.scale)
  return format(rescale(x, scale) + rescale(y, scale), scale)
}

/** Negative, zero or positive as a < b, a = b, a > b (numerically: "1.50" equals "1.5"). */
export function compareDecimal(a: string, b: string): number {
  const x = parse(a)
  const y = parse(b)
  const scale = Math.max(x.scale, y.scale)
  const d = rescale(x, scale) - rescale(y, scale)
  return d < 0n ? -1 : d > 0n ? 1 : 0
}

/** The canonical text of a decimal: no trailing fractional zeros, no "-0" ("1.50" → "1.5"). */
export function normalizeDecimal(text: string): string {
  const x = parse(text)
  let { units, scale } = x
  while (scale > 0 && units % 10n === 0n) {
    units /= 10n
    scale--
  }
  return format(units, scale)
}
