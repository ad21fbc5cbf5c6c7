/**
 * IBAN recognition for the residency linter: the country's registered length (ISO 13616 / SWIFT
 * IBAN registry) and the ISO 7064 mod-97-10 check (the number, with its first four characters moved
 * to the end and letters read as 10..35, leaves remainder 1). Found inside free text too, written
 * compact or in groups separated by single spaces.
 */

/** IBAN length per country code (SWIFT IBAN registry). */
const IBAN_LENGTHS: Readonly<Record<string, number>> = {
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BI: 27, BR: 29, BY: 28,
  CH: 21, CR: 22, CY: 28, CZ: 24, DE: 22, DJ: 27, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18,
  FK: 18, FO: 18, FR: 27, GB: 22, GE: 22, GI: 23, GL: 18, GR: 27, GT: 28, HR: 21, HU: 28, IE: 22,
  IL: 23, IQ: 23, IS: 26, IT: 27, JO: 30, KW: 30, KZ: 20, LB: 28, LC: 32, LI: 21, LT: 20, LU: 20,
  LV: 21, LY: 25, MC: 27, MD: 24, ME: 22, MK: 19, MN: 20, MR: 27, MT: 31, MU: 30, NI: 28, NL: 18,
  NO: 15, OM: 23, PK: 24, PL: 28, PS: 29, PT: 25, QA: 29, RO: 24, RS: 22, RU: 33, SA: 24, SC: 31,
  SD: 18, SE: 24, SI: 19, SK: 24, SM: 27, SO: 23, ST: 25, SV: 28, TL: 23, TN: 24, TR: 26, UA: 29,
  VA: 22, VG: 24, XK: 20, YE: 30,
}

/** ISO 7064 mod-97-10 over a compact, upper-case IBAN: true when the remainder is 1. */
export function ibanChecksumValid(compact: string): boolean {
  if (!/^[A-Z]{2}\d{2}[A-Z0-9]+$/.test(compact)) return false
  const rearranged = compact.slice(4) + compact.slice(0, 4)
  let rem = 0
  for (const ch of rearranged) {
    const code = ch.charCodeAt(0)
    const digits = code >= 65 ? String(code - 55) : ch
    for (const d of digits) rem = (rem * 10 + (d.charCodeAt(0) - 48)) % 97
  }
  return rem === 1
}

/** Whether `value` (compact or grouped with single spaces) is exactly one valid IBAN. */
export function isIban(value: string): boolean {
  const compact = value.trim().replace(/ /g, '').toUpperCase()
  return IBAN_LENGTHS[compact.slice(0, 2)] === compact.length && ibanChecksumValid(compact)
}

const ALNUM = /[A-Za-z0-9]/

/** How many valid IBANs occur in a text (a candidate must end at a word boundary at its country's length). */
export function countIbans(text: string): number {
  let n = 0
  const start = /(?<![A-Za-z0-9])([A-Za-z]{2})\d{2}/g
  for (let m = start.exec(text); m !== null; m = start.exec(text)) {
    const length = IBAN_LENGTHS[m[1]!.toUpperCase()]
    if (length === undefined) continue
    let compact = ''
    let i = m.index
    for (; i < text.length && compact.length < length; i++) {
      const ch = text[i]!
      if (ALNUM.test(ch)) compact += ch
      else if (ch === ' ' && compact.length > 0 && i + 1 < text.length && ALNUM.test(text[i + 1]!)) continue
      else break
    }
    if (compact.length !== length || (i < text.length && ALNUM.test(text[i]!))) continue
    if (ibanChecksumValid(compact.toUpperCase())) {
      n++
      start.lastIndex = i
    }
  }
  return n
}
