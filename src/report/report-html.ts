/**
 * The residency report as one self-contained HTML file: inline CSS, the inline SVG diagram of
 * src/report/report-diagram.ts, the questionnaire answers, the tables and events, and the signed
 * JSON in a `<script type="application/json">` element (src/report/report-signature.ts), so
 * `domicile report verify` checks the whole file. No external request of any kind (a Content
 * Security Policy of `default-src 'none'` says so to the browser too); every value is escaped;
 * readable when printed to PDF (@media print).
 */
import { questionnaire, formatDuration, HOLDER_TEXT, summaryRows } from './report-answers.js'
import { escapeXml, residencyDiagram } from './report-diagram.js'
import type { ReportEvent, ResidencyReport } from './residency-report.js'
import { SLOT } from './report-signature.js'

const h = (v: string | number | null): string => (v === null ? '–' : escapeXml(String(v)))

const CSS = `
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f3f5f8; color: #1d232b; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1000px; margin: 0 auto; padding: 28px 32px 48px; background: #fff; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 28px 0 8px; border-bottom: 2px solid #dde3ea; padding-bottom: 4px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.meta { color: #526070; font-size: 13px; margin: 0 0 18px; word-break: break-all; }
dl.summary { display: grid; grid-template-columns: 240px 1fr; gap: 4px 16px; margin: 0; padding: 14px 16px; background: #f7f9fb; border: 1px solid #dde3ea; border-radius: 8px; }
dl.summary dt { font-weight: 600; color: #3a4654; }
dl.summary dd { margin: 0; word-break: break-word; }
.warn { border-left: 4px solid #b3261e; background: #fdecec; padding: 8px 12px; margin: 8px 0; border-radius: 0 6px 6px 0; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 12px; font-size: 13.5px; }
th, td { text-align: left; vertical-align: top; padding: 5px 8px; border-bottom: 1px solid #e3e8ee; word-break: break-word; }
th { background: #f1f4f7; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.none { color: #6a7685; font-style: italic; }
.diagram { display: block; margin: 8px 0 4px; }
.diagram text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; fill: #1d232b; }
.diagram .heading { font-size: 15px; font-weight: 700; }
.diagram .title { font-size: 14px; font-weight: 600; }
.diagram .line { font-size: 12.5px; }
.diagram .label { font-size: 12px; fill: #3a4654; }
.diagram .box rect { fill: #f5f7fa; stroke: #7a8898; stroke-width: 1.5; }
.diagram .tenant rect, .diagram .region rect, .diagram .store rect { fill: #eaf2fb; stroke: #2f6db3; }
.diagram .ladder rect { fill: #fafbfc; stroke: #b8c2cd; stroke-dasharray: 4 3; }
.diagram .ladder.active rect { fill: #e5f4e8; stroke: #1f7a3a; stroke-width: 3; stroke-dasharray: none; }
.diagram .kek rect, .diagram .keys rect { fill: #fff7e6; stroke: #a86a00; }
.diagram .fields rect { fill: #f0ecfa; stroke: #5b3fa8; }
.diagram .global rect { fill: #f2f4f6; stroke: #7a8898; }
.diagram .bad rect, .diagram .ladder.active.bad rect { fill: #fdecec; stroke: #b3261e; stroke-width: 3; }
.diagram .arrow { stroke: #3a4654; stroke-width: 1.6; }
.diagram .arrow.dashed { stroke-dasharray: 6 4; }
.diagram .arrowhead { fill: #3a4654; }
footer { margin-top: 28px; color: #526070; font-size: 13px; }
@page { size: A4; margin: 14mm; }
@media print {
  body { background: #fff; font-size: 10.5pt; }
  main { max-width: none; padding: 0; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  h2, h3 { break-after: avoid-page; }
  section.answer, .diagram, dl.summary, .warn { break-inside: avoid-page; }
  tr { break-inside: avoid-page; }
  table { font-size: 9pt; }
}
`

function table(headers: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number | null>>, numeric: readonly number[] = []): string {
  if (rows.length === 0) return '<p class="none">None recorded.</p>'
  return `<table><thead><tr>${headers.map((x) => `<th>${h(x)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) =>
    `<tr>${r.map((c, i) => `<td${numeric.includes(i) ? ' class="num"' : ''}>${h(c)}</td>`).join('')}</tr>`).join('')}</tbody></table>`
}

const detailText = (d: ReportEvent['detail']): string => Object.entries(d).filter(([k]) => k !== 'ms').map(([k, v]) => `${k}=${String(v)}`).join(', ')

/**
 * Renders the report with an empty signed slot (src/report/report-signature.ts fills it).
 *
 * @example
 * const template = renderHtml(report, { keyId: key.keyId })
 */
export function renderHtml(r: ResidencyReport, opts: { keyId: string }): string {
  const k = r.key
  const summary = summaryRows(r)
  const answers = questionnaire(r).map((a) => `<section class="answer" id="${h(a.id)}"><h2>${h(a.question)}</h2>` +
    a.warnings.map((w) => `<p class="warn"><strong>Attention:</strong> ${h(w)}</p>`).join('') +
    a.paragraphs.map((p) => `<p>${h(p)}</p>`).join('') + '</section>').join('\n')
  const body = [
    `<header><h1>Data residency report: tenant ${h(r.tenant.id)}</h1>`,
    `<p class="meta">Generated ${h(r.generatedAt)} from the live system by domicile ${h(r.generator.version)} · report ${h(r.reportId)} · signed with Ed25519 by evidence key ${h(opts.keyId)}</p></header>`,
    `<dl class="summary">${summary.map(([t, d]) => `<dt>${h(t)}</dt><dd>${h(d)}</dd>`).join('')}</dl>`,
    `<section><h2>Diagram</h2>${residencyDiagram(r)}</section>`,
    answers,
    '<section><h2>Tables</h2>',
    table(['Table', 'Classification', 'Rows', 'Sealed columns'], r.tables.map((t) => [t.name, t.classification, `${t.rowCount} (${t.classification === 'tenant' ? 'this tenant' : 'region copy'})`, t.sensitiveColumns.join(', ') || '–'])),
    '<h3>Sensitive columns</h3>',
    table(['Table', 'Column', 'Encryption', 'Search', 'Stored as'], r.sensitiveColumns.map((c) => [c.table, c.column, c.encryption,
      c.search === 'blind-index' ? `blind index (${c.blindIndexBytes} bytes${c.normalize.length ? `, ${c.normalize.join('+')}` : ''})` : 'none', c.storage])),
    '</section><section><h2>Key binding</h2>',
    table(['Field', 'Value'], [
      ['Custody', k.custody], ['Provider', k.provider], ['Provider kind', k.providerKind], ['Key reference', k.keyReference],
      ['Holder', HOLDER_TEXT[k.holder]], ['Key service endpoint', k.holderEndpoint],
      ['State', k.state], ['Domicile state', k.directoryState], ['Key service state', k.providerState],
      ['Data-key cache TTL', `${formatDuration(r.revocation.cacheTtlMs)} (${r.revocation.cacheTtlSource})`],
      ['Wrapped keys in the region', k.dataKeys.map((d) => `${d.purpose} #${d.keyNumber} ${d.status}`).join(', ') || 'none'],
    ]),
    `</section><section><h2>Recent events</h2><p>Newest first, at most ${h(r.events.limit)} of each kind.</p>`,
    '<h3>Key events (control plane)</h3>',
    table(['At', 'Event', 'Outcome', 'Actor', 'Detail'], r.events.key.map((e) => [e.at, e.type, e.outcome, e.actor, detailText(e.detail)])),
    '<h3>Tenant lifecycle (control plane)</h3>',
    table(['At', 'Event', 'Outcome', 'Actor', 'Detail'], r.events.tenant.map((e) => [e.at, e.type, e.outcome, e.actor, detailText(e.detail)])),
    '<h3>Moves between regions</h3>',
    table(['At', 'Event', 'Outcome', 'Actor', 'Detail'], r.events.moves.map((e) => [e.at, e.type, e.outcome, e.actor, detailText(e.detail)])),
    '<h3>Operations (journal)</h3>',
    table(['Started', 'Kind', 'Status', 'Step', 'Actor', 'Finished'], r.events.operations.map((o) => [o.startedAt, o.kind, o.status, o.state, o.actor, o.finishedAt])),
    `<h3>Reveals of sealed fields (region ${h(r.residency.region)}; row keys omitted)</h3>`,
    table(['At', 'Field', 'Outcome', 'Actor', 'Purpose', 'Code'], r.events.reveals.map((e) => [e.at, e.table && e.column ? `${e.table}.${e.column}` : null, e.outcome, e.actor, e.purpose, e.code])),
    '</section><footer><h2>Verifying this report</h2>',
    '<p>This file embeds the signed JSON report; the signature also covers a hash of the rest of the file, so an edit anywhere fails verification. Check it with <code>domicile report verify FILE</code>, or elsewhere with the publisher\'s public key (<code>domicile shred public-key</code> prints it): <code>domicile report verify FILE --public-key KEY.pem</code>.</p></footer>',
  ].join('\n')
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Data residency report: tenant ${h(r.tenant.id)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
${body}
${SLOT.html.begin}${SLOT.html.end}
</main>
</body>
</html>
`
}
