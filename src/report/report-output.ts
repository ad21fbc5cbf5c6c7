/**
 * A residency report, ready to hand out: collected from the live system
 * (src/report/residency-report.ts), signed with the deployment's evidence key (the key that signs
 * shred certificates, src/ops/shred-evidence-key.ts) and rendered as JSON, Markdown or HTML, with
 * its content type and a file name. Used by `domicile report` and the admin API.
 */
import type { Domicile } from '../domicile.js'
import { internalsOf } from '../domicile-internals.js'
import { DomicileError } from '../errors.js'
import { loadOrCreateSigningKey, type SigningKey } from '../evidence/signing-key.js'
import { evidenceSigningKeyFile } from '../ops/shred-evidence-key.js'
import { renderHtml } from './report-html.js'
import { renderMarkdown } from './report-markdown.js'
import { collectResidencyReport, type ResidencyReport } from './residency-report.js'
import { REPORT_FORMATS, signReportJson, signReportRendition, type ReportFormat } from './report-signature.js'

export interface GeneratedReport {
  readonly body: string
  readonly contentType: string
  readonly fileName: string
}

const CONTENT_TYPES: Readonly<Record<ReportFormat, string>> = {
  json: 'application/json; charset=utf-8',
  md: 'text/markdown; charset=utf-8',
  html: 'text/html; charset=utf-8',
}

/** Throws ERR_INPUT_INVALID unless `format` is json, md or html. */
export function assertReportFormat(format: unknown): asserts format is ReportFormat {
  /* Precondition: the report format is json, md or html. */
  if (typeof format !== 'string' || !(REPORT_FORMATS as readonly string[]).includes(format)) {
    throw new DomicileError('ERR_INPUT_INVALID', `Unknown report format: expected one of ${REPORT_FORMATS.join(', ')}.`, { path: 'format' })
  }
}

/** The evidence signing key of the instance's configuration (created on first use). */
export function reportSigningKey(d: Domicile, signingKeyFile?: string): SigningKey {
  const { config } = internalsOf(d)
  const file = signingKeyFile ?? (config ? evidenceSigningKeyFile(config) : undefined)
  /* Precondition: a signing key file is known (from the configuration or the options). */
  if (file === undefined) throw new DomicileError('ERR_CONFIG_INVALID', 'No evidence signing key file: create the instance from a configuration, or pass signingKeyFile.')
  return loadOrCreateSigningKey(file)
}

/** Signs and renders a collected report. */
export function renderSignedReport(report: ResidencyReport, format: ReportFormat, key: SigningKey): GeneratedReport {
  assertReportFormat(format)
  const day = report.generatedAt.slice(0, 10)
  const body = format === 'json' ? signReportJson(key, report)
    : format === 'md' ? signReportRendition(key, report, 'md', renderMarkdown(report, { keyId: key.keyId }))
      : signReportRendition(key, report, 'html', renderHtml(report, { keyId: key.keyId }))
  return { body, contentType: CONTENT_TYPES[format], fileName: `residency-report-${report.tenant.id}-${day}.${format}` }
}

/**
 * Collects, signs and renders the residency report of one tenant.
 *
 * @example
 * const { body, contentType, fileName } = await generateReport(domicile, 'acme', 'html')
 * await writeFile(fileName, body)
 */
export async function generateReport(d: Domicile, tenantId: string, format: ReportFormat, opts: { signingKeyFile?: string } = {}): Promise<GeneratedReport> {
  assertReportFormat(format)
  const key = reportSigningKey(d, opts.signingKeyFile)
  return renderSignedReport(await collectResidencyReport(d, tenantId), format, key)
}

export { verifyReportFile, RESIDENCY_REPORT_KIND, type ReportFormat, type ReportVerification } from './report-signature.js'
