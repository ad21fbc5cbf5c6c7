/**
 * Values that look personal, for the residency linter's sample of global tables: e-mail
 * addresses, IBANs (with the mod-97 check, src/lint/iban.ts) and international phone numbers
 * (E.164-ish: a leading "+", then 8 to 15 digits, optionally grouped by single spaces or hyphens
 * and one parenthesised group, as in "+44 (0)20 7946 0958" or "+1-202-555-0143"). Numbers without a
 * "+" are not counted: a bare run of digits is as likely an id, an amount or a SKU. Each is found
 * inside free text too. The detectors only count: no matched value is ever returned.
 */
import { countIbans } from './iban.js'

export type PersonalValueKind = 'email' | 'iban' | 'phone'

export const PERSONAL_VALUE_KINDS: readonly PersonalValueKind[] = ['email', 'iban', 'phone']

const EMAIL = /(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![A-Za-z0-9-])/g

/** How many e-mail addresses occur in a text. */
export function countEmails(text: string): number {
  return text.match(EMAIL)?.length ?? 0
}

/** How many international phone numbers ("+" and 8..15 digits) occur in a text. */
export function countPhones(text: string): number {
  let n = 0
  for (let i = text.indexOf('+'); i !== -1; i = text.indexOf('+', i + 1)) {
    if (i > 0 && /[A-Za-z0-9+]/.test(text[i - 1]!)) continue
    const end = phoneEnd(text, i + 1)
    if (end > 0) {
      n++
      i = end - 1
    }
  }
  return n
}

/** The index after a phone number whose digits start at `from` (after the "+"), or -1. */
function phoneEnd(text: string, from: number): number {
  let digits = 0
  let parens = 0
  let open = false
  let prevSep = true // the "+" itself: a separator may not follow it
  let i = from
  let lastDigitEnd = -1
  if (!/[1-9]/.test(text[i] ?? '')) return -1
  for (; i < text.length; i++) {
    const ch = text[i]!
    if (ch >= '0' && ch <= '9') {
      digits++
      prevSep = false
      lastDigitEnd = i + 1
    } else if (ch === '(' && !open && parens === 0 && digits > 0) {
      open = true
      parens++
      prevSep = true
    } else if (ch === ')' && open && !prevSep) {
      open = false
      lastDigitEnd = i + 1
    } else if ((ch === ' ' || ch === '-') && !prevSep && /[0-9(]/.test(text[i + 1] ?? '')) {
      prevSep = true
    } else break
  }
  if (open || digits < 8 || digits > 15) return -1
  const after = text[lastDigitEnd] ?? ''
  if (/[A-Za-z0-9]/.test(after)) return -1
  return lastDigitEnd
}

/** Which kinds of personal value a text contains. */
export function personalValueKinds(text: string): PersonalValueKind[] {
  const kinds: PersonalValueKind[] = []
  if (countEmails(text) > 0) kinds.push('email')
  if (countIbans(text) > 0) kinds.push('iban')
  if (countPhones(text) > 0) kinds.push('phone')
  return kinds
}
