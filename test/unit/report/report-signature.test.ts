/**
 * Residency reports are signed with the evidence key and verify in all three formats; an edit of
 * any character of the file (the embedded JSON or the words around it), another key, a second slot
 * or a report of another kind fails verification.
 */
import { strict as assert } from 'node:assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import fc from 'fast-check'
import { loadOrCreateSigningKey } from '../../../src/evidence/signing-key.js'
import { signDocument } from '../../../src/evidence/signed-document.js'
import { renderSignedReport } from '../../../src/report/report-output.js'
import { RESIDENCY_REPORT_KIND, signReportRendition, SLOT, verifyReportFile, type ReportFormat } from '../../../src/report/report-signature.js'
import { isDomicileError } from '../../../src/errors.js'
import { sampleReport } from './sample-report.js'

const dir = mkdtempSync(join(tmpdir(), 'domicile-report-sig-'))
after(() => rmSync(dir, { recursive: true, force: true }))
const key = loadOrCreateSigningKey(join(dir, 'evidence.key'))
const other = loadOrCreateSigningKey(join(dir, 'other.key'))
const formats: readonly ReportFormat[] = ['json', 'md', 'html']

function invalid(text: string, why: RegExp | string = /./): void {
  const v = verifyReportFile(text, key.publicKey)
  assert.equal(v.valid, false, 'expected the file not to verify')
  if (!v.valid) assert.match(v.reason, typeof why === 'string' ? new RegExp(why) : why)
}

describe('residency report signatures', () => {
  for (const format of formats) {
    test(`a ${format} report verifies with the evidence key and names its format and tenant`, () => {
      const { body } = renderSignedReport(sampleReport(), format, key)
      const v = verifyReportFile(body, key.publicKey)
      assert.ok(v.valid, v.valid ? '' : v.reason)
      assert.equal(v.format, format)
      assert.equal(v.keyId, key.keyId)
      assert.equal(v.report.tenant.id, 'acme')
      assert.equal(v.report.residency.region, 'eu-west-1')
    })

    test(`a ${format} report does not verify under another key`, () => {
      const { body } = renderSignedReport(sampleReport(), format, key)
      const v = verifyReportFile(body, other.publicKey)
      assert.equal(v.valid, false)
    })

    test(`editing any non-blank character of a ${format} report fails verification`, () => {
      const { body } = renderSignedReport(sampleReport(), format, key)
      const positions = [...body].map((c, i) => (/\s/.test(c) ? -1 : i)).filter((i) => i >= 0)
      fc.assert(fc.property(fc.constantFrom(...positions), (i) => {
        const c = body[i]!
        const edited = body.slice(0, i) + (c === 'Z' ? 'Q' : 'Z') + body.slice(i + 1)
        assert.equal(verifyReportFile(edited, key.publicKey).valid, false, `an edit at ${i} (${JSON.stringify(body.slice(Math.max(0, i - 20), i + 20))}) verified`)
      }), { numRuns: 300 })
    })
  }

  test('the words around the embedded report are covered: a changed answer fails even with the JSON intact', () => {
    for (const format of ['md', 'html'] as const) {
      const { body } = renderSignedReport(sampleReport(), format, key)
      assert.ok(body.includes('jurisdiction: EU'))
      invalid(body.replace('jurisdiction: EU', 'jurisdiction: US'), 'text of the file was edited')
      invalid(body.replace('\n', '\n\n'), 'text of the file was edited')
    }
  })

  test('an edited value in the embedded JSON fails (the signature no longer matches)', () => {
    const { body } = renderSignedReport(sampleReport(), 'md', key)
    invalid(body.replace('"region": "eu-west-1"', '"region": "us-east-1"'), 'signature does not match')
    const json = renderSignedReport(sampleReport(), 'json', key).body
    const doc = JSON.parse(json) as { payload: { tables: Array<{ rowCount: number }> } }
    doc.payload.tables[0]!.rowCount = 41
    invalid(JSON.stringify(doc), 'signature does not match')
  })

  test('a report signed for one format cannot be embedded in another, and a second slot is refused', () => {
    const md = renderSignedReport(sampleReport(), 'md', key).body
    const html = renderSignedReport(sampleReport(), 'html', key).body
    const mdJson = md.slice(md.indexOf(SLOT.md.begin) + SLOT.md.begin.length, md.indexOf(SLOT.md.end))
    const htmlStart = html.indexOf(SLOT.html.begin) + SLOT.html.begin.length
    const swapped = html.slice(0, htmlStart) + mdJson + html.slice(html.indexOf(SLOT.html.end, htmlStart))
    invalid(swapped, 'not signed as a html file')
    invalid(md + SLOT.md.begin + mdJson + SLOT.md.end, 'more than one signed slot')
    invalid('# just some text', 'no embedded signed report')
    invalid('{"kind": "x"', 'not valid JSON')
  })

  test('a signed document of another kind is not a residency report', () => {
    const cert = JSON.stringify(signDocument(key, 'domicile.shred-certificate/v1', sampleReport()))
    invalid(cert, RESIDENCY_REPORT_KIND)
  })

  test('Precondition: the report format is json, md or html.', () => {
    assert.throws(() => renderSignedReport(sampleReport(), 'pdf' as never, key), (e: unknown) => isDomicileError(e, 'ERR_INPUT_INVALID'))
  })

  test('Precondition: a rendered report has exactly one empty signed slot.', () => {
    assert.throws(() => signReportRendition(key, sampleReport(), 'md', '# no slot'), (e: unknown) => isDomicileError(e, 'ERR_INPUT_INVALID'))
    const two = `${SLOT.md.begin}${SLOT.md.end}\n${SLOT.md.begin}${SLOT.md.end}`
    assert.throws(() => signReportRendition(key, sampleReport(), 'md', two), (e: unknown) => isDomicileError(e, 'ERR_INPUT_INVALID'))
  })

  test('Precondition: exactly one signed slot, so the verified JSON is the one the file shows.', () => {
    const md = renderSignedReport(sampleReport(), 'md', key).body
    const slot = md.slice(md.indexOf(SLOT.md.begin), md.indexOf(SLOT.md.end) + SLOT.md.end.length)
    invalid(slot + '\n' + md, 'more than one signed slot')
  })

  test('Precondition: the text around the signed slot is the text that was signed.', () => {
    const html = renderSignedReport(sampleReport(), 'html', key).body
    invalid(html.replace('<title>', '<title>Approved: '), 'text of the file was edited')
  })

  test('Precondition: the signature is canonical base64.', () => {
    const doc = JSON.parse(renderSignedReport(sampleReport(), 'json', key).body) as { signature: { value: string } }
    const v = doc.signature.value
    assert.ok(v.endsWith('=='), '64 bytes: one byte in the last group, four spare bits')
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
    const at = v.length - 3
    const idx = alphabet.indexOf(v[at]!)
    const twin = alphabet[(idx & ~15) | ((idx + 1) & 15)]!
    const edited = v.slice(0, at) + twin + v.slice(at + 1)
    assert.deepEqual(Buffer.from(edited, 'base64'), Buffer.from(v, 'base64'), 'the edited text decodes to the same bytes')
    doc.signature.value = edited
    invalid(JSON.stringify(doc), 'canonical base64')
  })
})
