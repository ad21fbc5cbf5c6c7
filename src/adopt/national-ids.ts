/**
 * National-id shapes for `domicile adopt inspect`'s value sample (the residency linter's detectors,
 * src/lint/personal-values.ts, cover e-mail addresses, phone numbers and IBANs):
 * - US Social Security numbers written `ddd-dd-dddd`, with the SSA's never-issued ranges excluded
 *   (area 000, 666 and 900-999; group 00; serial 0000). Nine bare digits are not counted: as likely
 *   an id or an amount.
 * - UK National Insurance numbers `AB123456C` (optionally spaced `AB 12 34 56 C`), with the
 *   prefixes HMRC never issues excluded (first letter D, F, I, Q, U, V; second D, F, I, O, Q, U, V;
 *   BG, GB, KN, NK, NT, TN, ZZ).
 * Both are found inside free text too. The detectors only count: no matched value is returned.
 *
 * @example
 * ```ts
 * countNationalIds('SSN 123-45-6789, NINO QQ 12 34 56 C') // 1 (QQ is never issued)
 * ```
 */

const SSN = /(?<![0-9A-Za-z-])(\d{3})-(\d{2})-(\d{4})(?![0-9A-Za-z-])/g
const NINO = /(?<![0-9A-Za-z])([A-CEGHJ-PR-TW-Z])([A-CEGHJ-NPR-TW-Z]) ?\d{2} ?\d{2} ?\d{2} ?[A-D](?![0-9A-Za-z])/g
const NINO_NEVER_ISSUED = new Set(['BG', 'GB', 'KN', 'NK', 'NT', 'TN', 'ZZ'])

/** How many US Social Security numbers (ddd-dd-dddd, issuable ranges only) occur in a text. */
export function countSsns(text: string): number {
  let n = 0
  for (const m of text.matchAll(SSN)) {
    const area = Number(m[1])
    if (area === 0 || area === 666 || area >= 900 || m[2] === '00' || m[3] === '0000') continue
    n++
  }
  return n
}

/** How many UK National Insurance numbers occur in a text. */
export function countNinos(text: string): number {
  let n = 0
  for (const m of text.matchAll(NINO)) if (!NINO_NEVER_ISSUED.has(`${m[1]}${m[2]}`)) n++
  return n
}

/** How many national ids of a known shape occur in a text. */
export function countNationalIds(text: string): number {
  return countSsns(text) + countNinos(text)
}
