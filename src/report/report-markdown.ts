/**
 * The residency report as Markdown, written for a security questionnaire: a summary, the answers of
 * src/report/report-answers.ts, the tables, columns, key binding and recent events, and the signed
 * JSON in one marked fenced block (src/report/report-signature.ts) so `domicile report verify`
 * checks the whole file. Every value is escaped: it cannot open a link, an HTML element, a code
 * fence or a table cell of its own.
 */
import { questionnaire, formatDuration, HOLDER_TEXT, summaryRows } from './report-answers.js'
import type { ReportEvent, ResidencyReport } from './residency-report.js'
import { SLOT } from './report-signature.js'

/** Escapes text for Markdown: no HTML, no emphasis, links, code spans, table cells or line breaks of its own. */
export function mdEscape(s: string): string {
  return s
    .replace(/[\r\n\u2028\u2029]+/g, ' ')
    .replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
    .replace(/([\\`*_[\]|~])/g, '\\$1')
}

function table(headers: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number | null>>): string {
  const cell = (v: string | number | null) => (v === null ? '-' : mdEscape(String(v)))
  return [
    `| ${headers.map(cell).join(' | ')} |`,
    `|${headers.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`),
  ].join('\n')
}

function detailText(d: ReportEvent['detail']): string {
  return Object.entries(d).filter(([k]) => k !== 'ms').map(([k, v]) => `${k}=${String(v)}`).join(', ')
}

function events(title: string, rows: ReadonlyArray<ReadonlyArray<string | number | null>>, headers: readonly string[]): string {
  return `### ${title}\n\n${rows.length === 0 ? 'None recorded.' : table(headers, rows)}\n`
}

/**
 * Renders the report with an empty signed slot (src/report/report-signature.ts fills it).
 *
 * @example
 * const template = renderMarkdown(report, { keyId: key.keyId })
 */
export function renderMarkdown(r: ResidencyReport, opts: { keyId: string }): string {
  const k = r.key
  const out: string[] = []
  out.push(`# Data residency report: tenant ${mdEscape(r.tenant.id)}\n`)
  out.push(`Generated ${mdEscape(r.generatedAt)} from the live system by domicile ${mdEscape(r.generator.version)}. Report ${mdEscape(r.reportId)}, signed with Ed25519 by evidence key ${mdEscape(opts.keyId)}.\n`)
  out.push(table(['Summary', ''], summaryRows(r)))
  out.push('')
  for (const a of questionnaire(r)) {
    out.push(`## ${mdEscape(a.question)}\n`)
    for (const w of a.warnings) out.push(`> **Attention:** ${mdEscape(w)}\n`)
    for (const p of a.paragraphs) out.push(`${mdEscape(p)}\n`)
  }
  out.push('## Tables\n')
  out.push(table(['Table', 'Classification', 'Rows', 'Sealed columns'], r.tables.map((t) => [
    t.name, t.classification, t.classification === 'tenant' ? `${t.rowCount} (this tenant)` : `${t.rowCount} (region copy)`, t.sensitiveColumns.join(', ') || '-',
  ])))
  out.push('')
  out.push('## Sensitive columns\n')
  out.push(r.sensitiveColumns.length === 0 ? 'None declared.' : table(['Table', 'Column', 'Encryption', 'Search', 'Stored as'], r.sensitiveColumns.map((c) => [
    c.table, c.column, c.encryption, c.search === 'blind-index' ? `blind index (${c.blindIndexBytes} bytes${c.normalize.length ? `, ${c.normalize.join('+')}` : ''})` : 'none', c.storage,
  ])))
  out.push('')
  out.push('## Key binding\n')
  out.push(table(['Field', 'Value'], [
    ['Custody', k.custody], ['Provider', k.provider], ['Provider kind', k.providerKind], ['Key reference', k.keyReference],
    ['Holder', HOLDER_TEXT[k.holder]], ['Key service endpoint', k.holderEndpoint],
    ['State', k.state], ['Domicile state', k.directoryState], ['Key service state', k.providerState],
    ['Data-key cache TTL', `${formatDuration(r.revocation.cacheTtlMs)} (${r.revocation.cacheTtlSource})`],
    ['Wrapped keys in the region', k.dataKeys.map((d) => `${d.purpose} #${d.keyNumber} ${d.status}`).join(', ') || 'none'],
  ]))
  out.push('')
  out.push(`## Recent events (newest first, at most ${r.events.limit} each)\n`)
  out.push(events('Key events (control plane)', r.events.key.map((e) => [e.at, e.type, e.outcome, e.actor, detailText(e.detail)]), ['At', 'Event', 'Outcome', 'Actor', 'Detail']))
  out.push(events('Tenant lifecycle (control plane)', r.events.tenant.map((e) => [e.at, e.type, e.outcome, e.actor, detailText(e.detail)]), ['At', 'Event', 'Outcome', 'Actor', 'Detail']))
  out.push(events('Moves between regions', r.events.moves.map((e) => [e.at, e.type, e.outcome, e.actor, detailText(e.detail)]), ['At', 'Event', 'Outcome', 'Actor', 'Detail']))
  out.push(events('Operations (journal)', r.events.operations.map((o) => [o.startedAt, o.kind, o.status, o.state, o.actor, o.finishedAt]), ['Started', 'Kind', 'Status', 'Step', 'Actor', 'Finished']))
  out.push(events(`Reveals of sealed fields (region ${r.residency.region}; row keys omitted)`, r.events.reveals.map((e) => [e.at, e.table && e.column ? `${e.table}.${e.column}` : null, e.outcome, e.actor, e.purpose, e.code]), ['At', 'Field', 'Outcome', 'Actor', 'Purpose', 'Code']))
  out.push('## Verifying this report\n')
  out.push('The signed JSON report below is the evidence; it also carries a hash of the text around it, so an edit anywhere in this file fails verification. Check it with "domicile report verify FILE", or elsewhere with the publisher\'s public key ("domicile shred public-key" prints it): "domicile report verify FILE --public-key KEY.pem".\n')
  out.push(`${SLOT.md.begin}${SLOT.md.end}\n`)
  return out.join('\n')
}
