/**
 * Rendering of the residency report: hostile values (a key reference, an actor, a purpose, a
 * region description are arbitrary text) are escaped in HTML, SVG and Markdown and cannot forge the
 * signed slot; the HTML file makes no external request; the answers follow the live state (custody
 * level, revoked or destroyed key, plaintext still stored).
 */
import { strict as assert } from 'node:assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { loadOrCreateSigningKey } from '../../../src/evidence/signing-key.js'
import { renderSignedReport } from '../../../src/report/report-output.js'
import { renderHtml } from '../../../src/report/report-html.js'
import { mdEscape, renderMarkdown } from '../../../src/report/report-markdown.js'
import { escapeXml, residencyDiagram } from '../../../src/report/report-diagram.js'
import { questionnaire } from '../../../src/report/report-answers.js'
import { SLOT, verifyReportFile } from '../../../src/report/report-signature.js'
import { sampleReport } from './sample-report.js'

const dir = mkdtempSync(join(tmpdir(), 'domicile-report-render-'))
after(() => rmSync(dir, { recursive: true, force: true }))
const key = loadOrCreateSigningKey(join(dir, 'evidence.key'))

const HOSTILE = '<script>alert(1)</script><img src=x onerror="alert(2)">\'"&amp;</text></svg>```json\n<!-- domicile-signed-report: begin -->[x](javascript:alert(3))|'
const hostileReport = () => sampleReport((r) => {
  r.key.keyReference = HOSTILE
  r.residency.description = HOSTILE
  r.residency.jurisdiction = HOSTILE
  r.events.reveals[0]!.purpose = HOSTILE
  r.events.reveals[0]!.actor = HOSTILE
  r.events.key[0]!.detail = { note: HOSTILE }
})

/** The HTML text outside the signed slot (whose JSON is checked separately). */
function outsideSlot(html: string): string {
  const start = html.indexOf(SLOT.html.begin) + SLOT.html.begin.length
  return html.slice(0, start) + html.slice(html.indexOf(SLOT.html.end, start))
}

describe('report rendering', () => {
  test('HTML: hostile values are escaped everywhere; the only script element is the JSON slot', () => {
    const { body } = renderSignedReport(hostileReport(), 'html', key)
    assert.equal(body.split('<script').length - 1, 1, 'exactly one <script (the application/json slot)')
    assert.ok(!/<img/i.test(body), 'no injected element')
    assert.ok(!/onerror=/i.test(outsideSlot(body).replace(/onerror=&quot;/g, '')), 'no injected attribute')
    assert.ok(body.includes(escapeXml('<script>alert(1)</script>')), 'the key reference is shown, escaped')
    // The slot's JSON holds the value with < > & written as \u escapes: no </script> breakout.
    const slot = body.slice(body.indexOf(SLOT.html.begin) + SLOT.html.begin.length, body.indexOf(SLOT.html.end, body.indexOf(SLOT.html.begin)))
    assert.ok(!slot.includes('<') && !slot.includes('>'))
    const v = verifyReportFile(body, key.publicKey)
    assert.ok(v.valid, v.valid ? '' : v.reason)
    assert.equal(v.report.key.keyReference, HOSTILE, 'the signed report keeps the value exactly')
  })

  test('SVG: hostile values are escaped and cut to their box', () => {
    const svg = residencyDiagram(hostileReport())
    assert.ok(svg.startsWith('<svg'))
    assert.ok(!svg.includes('<script'), 'no script element in the diagram')
    assert.ok(!svg.includes('<img'))
    assert.equal(svg.split('<svg').length - 1, 1, 'no nested svg from a value')
    assert.equal(svg.split('</svg>').length - 1, 1)
  })

  test('Markdown: hostile values cannot open HTML, links, code fences, table cells or a second slot', () => {
    const { body } = renderSignedReport(hostileReport(), 'md', key)
    assert.equal(body.split(SLOT.md.begin).length - 1, 1, 'one signed slot')
    const prose = body.slice(0, body.indexOf(SLOT.md.begin))
    assert.ok(!prose.includes('<script'), 'no raw HTML')
    assert.ok(!prose.includes('```'), 'no code fence')
    assert.ok(!prose.includes('[x](') && prose.includes('\\[x\\](javascript'), 'no link: the brackets are escaped')
    assert.ok(verifyReportFile(body, key.publicKey).valid)
    assert.equal(mdEscape('a|b\nc'), 'a\\|b c')
  })

  test('HTML makes no external request: no src, href, @import or url() other than the diagram\'s own marker', () => {
    const html = outsideSlot(renderSignedReport(sampleReport(), 'html', key).body)
    assert.ok(!/\ssrc=/i.test(html))
    assert.ok(!/\shref=/i.test(html))
    assert.ok(!/@import/i.test(html))
    assert.deepEqual(new Set([...html.matchAll(/url\(([^)]*)\)/g)].map((m) => m[1])), new Set(['#dr-arrow']))
    assert.match(html, /Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'"/)
    assert.match(html, /@media print/)
    assert.match(html, /<svg[^>]*role="img"/)
  })

  test('the answers follow the custody level', () => {
    const text = (r: ReturnType<typeof sampleReport>) => questionnaire(r).find((a) => a.id === 'keys')!.paragraphs.join(' ')
    assert.match(text(sampleReport()), /^You do\. The key-encryption key stays in your own key service at https:\/\/xks\.acme\.example:8443/)
    assert.match(text(sampleReport((r) => { r.key.custody = 'kms'; r.key.holder = 'operator'; r.key.providerKind = 'local'; r.key.holderEndpoint = null })), /^We do\./)
    assert.match(text(sampleReport((r) => { r.key.custody = 'byok'; r.key.holder = 'customer-key-in-operator-kms'; r.key.providerKind = 'aws-kms' })), /^You supplied the key material/)
    assert.match(text(sampleReport((r) => { r.key.custody = 'none'; r.key.holder = 'none' })), /^No key is bound/)
    const revoke = (r: ReturnType<typeof sampleReport>) => questionnaire(r).find((a) => a.id === 'revoke')!
    assert.match(revoke(sampleReport()).paragraphs.join(' '), /at most 1 min \(the data-key cache TTL/)
  })

  test('the answers follow the key state: revoked, destroyed, refused at the key service', () => {
    const revoke = (r: ReturnType<typeof sampleReport>) => questionnaire(r).find((a) => a.id === 'revoke')!
    const revoked = revoke(sampleReport((r) => {
      r.key.directoryState = 'revoked'; r.key.state = 'revoked'
      r.key.lastRevocation = { id: 9, at: '2025-01-02T00:00:00.000Z', type: 'key.revoke', outcome: 'ok', actor: 'ops', detail: {} }
    }))
    assert.match(revoked.warnings.join(' '), /Your key is revoked now \(since 2025-01-02T00:00:00.000Z, by ops\)/)
    assert.match(revoke(sampleReport((r) => { r.key.directoryState = 'destroyed'; r.key.state = 'destroyed' })).paragraphs[0]!, /cannot be undone/)
    assert.match(revoke(sampleReport((r) => { r.key.state = 'revoked'; r.key.providerState = 'disabled' })).warnings.join(' '), /Your key service refuses the key now/)
    assert.deepEqual(revoke(sampleReport()).warnings, [])
  })

  test('a sensitive column still stored in plaintext is called out', () => {
    const r = sampleReport((x) => { x.sensitiveColumns[1]!.storage = 'plaintext' })
    const readers = questionnaire(r).find((a) => a.id === 'readers')!
    assert.match(readers.warnings.join(' '), /customers\.tax_id is declared sensitive but its values are still stored in plaintext/)
    assert.match(renderMarkdown(r, { keyId: 'k' }), /\*\*Attention:\*\* customers\.tax\\_id is declared sensitive/)
    assert.match(renderHtml(r, { keyId: 'k' }), /customers\.tax_id \[plaintext\]/)
  })
})
