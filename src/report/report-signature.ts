/**
 * Signing and verifying residency reports, with the project's one evidence scheme
 * (src/evidence/signed-document.ts: Ed25519 over the canonical JSON of `{ kind, payload }`, the key
 * of src/ops/shred-evidence-key.ts).
 *
 * - JSON: the file is the signed document itself.
 * - Markdown and HTML: the file embeds the signed document in one marked slot (a fenced `json` block
 *   between two comments; a `<script type="application/json">` element). The payload carries the
 *   SHA-256 of the whole file with that slot empty (`rendition`), so the signature covers every byte
 *   of the human-readable text too: an edit anywhere in the file fails verification.
 */
import { createHash, type KeyObject } from 'node:crypto'
import { DomicileError } from '../errors.js'
import { signDocument, verifyDocument, type SignedDocument } from '../evidence/signed-document.js'
import type { SigningKey } from '../evidence/signing-key.js'
import type { ResidencyReport } from './residency-report.js'

export const RESIDENCY_REPORT_KIND = 'domicile.residency-report/v1'

export type ReportFormat = 'json' | 'md' | 'html'
export const REPORT_FORMATS: readonly ReportFormat[] = ['json', 'md', 'html']

/** What a Markdown or HTML file looked like around its signed slot. */
export interface Rendition {
  readonly format: 'md' | 'html'
  /** SHA-256 (hex) of the file's text with the slot's content empty. */
  readonly sha256: string
}

export type SignedReportPayload = ResidencyReport & { readonly rendition?: Rendition }
export type SignedReport = SignedDocument<SignedReportPayload>

/** The slot markers; the slot is what lies between BEGIN and the first END after it. */
export const SLOT = {
  md: { begin: '<!-- domicile-signed-report: begin -->\n```json\n', end: '\n```\n<!-- domicile-signed-report: end -->' },
  html: { begin: '<script type="application/json" id="domicile-signed-report">', end: '</script>' },
} as const

/**
 * JSON text safe inside an HTML `<script>` element and a Markdown fence: `<`, `>`, `&` and the backtick
 * are written as \u escapes (they only ever occur inside JSON strings, so the parsed value is the same).
 */
export function embeddableJson(doc: unknown): string {
  return JSON.stringify(doc, null, 2).replace(/[<>&`\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex')

function count(text: string, needle: string): number {
  let n = 0
  for (let i = text.indexOf(needle); i !== -1; i = text.indexOf(needle, i + needle.length)) n++
  return n
}

/** Signs a report as a JSON file. */
export function signReportJson(key: SigningKey, report: ResidencyReport): string {
  return `${JSON.stringify(signDocument(key, RESIDENCY_REPORT_KIND, report), null, 2)}\n`
}

/**
 * Signs a rendered Markdown or HTML report: `template` is the whole file with its slot empty
 * (BEGIN immediately followed by END, exactly once); returns the file with the signed document in the slot.
 */
export function signReportRendition(key: SigningKey, report: ResidencyReport, format: 'md' | 'html', template: string): string {
  const { begin, end } = SLOT[format]
  /* Precondition: a rendered report has exactly one empty signed slot. */
  if (count(template, begin) !== 1 || !template.includes(begin + end)) throw new DomicileError('ERR_INPUT_INVALID', `A ${format} report template must hold exactly one empty signed slot.`)
  const payload: SignedReportPayload = { ...report, rendition: { format, sha256: sha256(template) } }
  const doc = signDocument(key, RESIDENCY_REPORT_KIND, payload)
  const at = template.indexOf(begin) + begin.length
  return template.slice(0, at) + embeddableJson(doc) + template.slice(at)
}

export type ReportVerification =
  | { readonly valid: true; readonly format: ReportFormat; readonly keyId: string; readonly report: SignedReportPayload }
  | { readonly valid: false; readonly format: ReportFormat | null; readonly reason: string }

function parse(text: string): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch {
    return undefined
  }
}

/**
 * Verifies a residency report file (JSON, Markdown or HTML, detected from its content) against the
 * publisher's Ed25519 public key. Never throws for the file's content: an unsigned, edited or
 * foreign file is `{ valid: false, reason }`.
 *
 * @example
 * const r = verifyReportFile(await readFile('acme.report.html', 'utf8'), loadPublicKey(evidenceSigningKeyFile(config)).publicKey)
 * if (!r.valid) console.error(r.reason)
 */
export function verifyReportFile(text: string, publicKey: KeyObject): ReportVerification {
  let format: ReportFormat
  let doc: unknown
  let template: string | undefined
  if (text.trimStart().startsWith('{')) {
    format = 'json'
    doc = parse(text)
    if (doc === undefined) return { valid: false, format, reason: 'the file is not valid JSON' }
  } else {
    const found = (['html', 'md'] as const).filter((f) => text.includes(SLOT[f].begin))
    if (found.length !== 1) return { valid: false, format: null, reason: 'no embedded signed report found (expected a JSON, Markdown or HTML file written by "domicile report")' }
    format = found[0]!
    const { begin, end } = SLOT[format]
    /* Precondition: exactly one signed slot, so the verified JSON is the one the file shows. */
    if (count(text, begin) !== 1) return { valid: false, format, reason: 'the file holds more than one signed slot' }
    const start = text.indexOf(begin) + begin.length
    const stop = text.indexOf(end, start)
    if (stop === -1) return { valid: false, format, reason: 'the signed slot is not closed' }
    doc = parse(text.slice(start, stop))
    if (doc === undefined) return { valid: false, format, reason: 'the embedded signed report is not valid JSON' }
    template = text.slice(0, start) + text.slice(stop)
  }
  const sig = (doc as { signature?: { value?: unknown } } | null)?.signature?.value
  // Node decodes base64 leniently: an edited spare bit or padding would still decode to the signed bytes.
  /* Precondition: the signature is canonical base64. */
  if (typeof sig === 'string' && Buffer.from(sig, 'base64').toString('base64') !== sig) return { valid: false, format, reason: 'the signature is not canonical base64: it was edited' }
  const r = verifyDocument(doc, publicKey, RESIDENCY_REPORT_KIND)
  if (!r.ok) return { valid: false, format, reason: r.reason }
  const payload = (doc as SignedReport).payload
  if (template !== undefined) {
    const rend = payload.rendition
    /* Precondition: the text around the signed slot is the text that was signed. */
    if (rend === undefined || rend.format !== format) return { valid: false, format, reason: `the embedded report was not signed as a ${format} file` }
    if (sha256(template) !== rend.sha256) return { valid: false, format, reason: 'the text of the file was edited after it was signed (the embedded report is intact, the words around it are not)' }
  }
  return { valid: true, format, keyId: r.keyId, report: payload }
}
