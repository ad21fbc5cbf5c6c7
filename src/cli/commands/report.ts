/**
 * `domicile report TENANT --format json|md|html [--out FILE]` writes the tenant's signed residency
 * report (src/report/); `domicile report verify FILE [--public-key PEM]` checks one, in any of the
 * three formats, and exits 1 when it does not verify (edited, other key, not a report).
 */
import { createPublicKey, type KeyObject } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { loadConfig } from '../../config/load-config.js'
import { DomicileError } from '../../errors.js'
import { loadPublicKey } from '../../evidence/signing-key.js'
import { evidenceSigningKeyFile } from '../../ops/shred-evidence-key.js'
import { assertReportFormat, generateReport } from '../../report/report-output.js'
import { verifyReportFile } from '../../report/report-signature.js'
import { runCommand, stringOption, UsageError, type Command, type ParsedCommand } from '../cli-args.js'
import { formatFields, printJson, println } from '../cli-output.js'
import { COMMON_OPTIONS_HELP } from '../usage.js'
import { withDomicile } from '../open-domicile.js'

/**
 * The error code of a report that does not verify. ERR_INPUT_INVALID, as `shred check` uses for a
 * certificate; the exit status is 1 all the same (the file is wrong, not the command line).
 */
const REPORT_INVALID_CODE = 'ERR_SIGNATURE_INVALID'

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8')
  } catch {
    throw new DomicileError('ERR_INPUT_INVALID', `${what}: cannot read ${resolve(path)}.`, { path: what })
  }
}

export const reportCommand: Command = {
  spec: {
    synopsis: 'report TENANT [--format json|md|html] [--out FILE]',
    summary: 'the tenant\'s signed residency report from the live system: region, store, tables, sealed columns, key custody, revocation bound, events (default json, to stdout)',
    positionals: ['TENANT'],
    options: { format: { type: 'string' }, out: { type: 'string' } },
  },
  async run(p) {
    const tenant = p.args[0]!
    const format = stringOption(p.values, 'format') ?? 'json'
    assertReportFormat(format)
    const outOption = stringOption(p.values, 'out')
    const out = outOption === undefined ? undefined : resolve(outOption)
    const r = await withDomicile(p, (d) => generateReport(d, tenant, format))
    if (out !== undefined) await writeFile(out, r.body, { mode: 0o644 })
    if (p.json) {
      // The JSON report is itself JSON: printed as is. Other formats: a result line, with the body when no --out was given.
      if (out === undefined && format === 'json') process.stdout.write(r.body)
      else printJson({ tenant, format, out: out ?? null, fileName: r.fileName, contentType: r.contentType, bytes: Buffer.byteLength(r.body), ...(out === undefined ? { body: r.body } : {}) })
    } else if (out === undefined) {
      process.stdout.write(r.body)
    } else {
      println(formatFields([['tenant', tenant], ['format', format], ['report', out], ['bytes', Buffer.byteLength(r.body)]]))
    }
    return 0
  },
}

async function publicKeyFor(p: Pick<ParsedCommand, 'values' | 'configPath'>): Promise<KeyObject> {
  const pemFile = stringOption(p.values, 'public-key')
  if (pemFile === undefined) return loadPublicKey(evidenceSigningKeyFile(loadConfig(p.configPath))).publicKey
  let key: KeyObject
  try {
    key = createPublicKey(await readText(pemFile, '--public-key'))
  } catch (e) {
    if (e instanceof DomicileError) throw e
    throw new DomicileError('ERR_INPUT_INVALID', '--public-key: not a PEM public key. Pass the output of "domicile shred public-key".', { path: '--public-key' })
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new DomicileError('ERR_INPUT_INVALID', '--public-key: not an Ed25519 public key.', { path: '--public-key' })
  return key
}

export const reportVerifyCommand: Command = {
  spec: {
    synopsis: 'report verify FILE [--public-key PEM]',
    summary: 'verify a residency report (json, md or html) with this deployment\'s evidence key or a published PEM; exit 1 on any edit',
    positionals: ['FILE'],
    options: { 'public-key': { type: 'string' } },
  },
  async run(p) {
    const text = await readText(p.args[0]!, 'FILE')
    const key = await publicKeyFor(p)
    const v = verifyReportFile(text, key)
    if (!v.valid) {
      /* Precondition: a report that does not verify exits 1 and says why. */
      const message = `The residency report does not verify: ${v.reason}. Do not rely on it; ask the publisher for the original or generate it again with "domicile report".`
      process.stderr.write(`domicile: ${REPORT_INVALID_CODE}: ${message}\n`)
      if (p.json) printJson({ valid: false, format: v.format, error: { code: REPORT_INVALID_CODE, message } })
      return 1
    }
    const r = v.report
    if (p.json) printJson({ valid: true, format: v.format, keyId: v.keyId, reportId: r.reportId, tenant: r.tenant.id, region: r.residency.region, generatedAt: r.generatedAt })
    else println(formatFields([['valid', 'yes'], ['format', v.format], ['signed by', v.keyId], ['report', r.reportId], ['tenant', r.tenant.id], ['region', r.residency.region], ['generated', r.generatedAt]]))
    return 0
  },
}

function usage(): string {
  return `Usage: domicile report <TENANT | verify FILE> ...\n\n${[reportCommand, reportVerifyCommand].map((c) => `  domicile ${c.spec.synopsis}\n      ${c.spec.summary}`).join('\n')}\n\n  (a tenant named "verify": domicile report --format json -- verify)\n\n${COMMON_OPTIONS_HELP}`
}

/** `report verify FILE` verifies; anything else is `report TENANT`. */
export async function runReportCommand(argv: readonly string[]): Promise<number> {
  const [first, ...rest] = argv
  if (first === '--help' || first === '-h' || first === 'help') {
    process.stdout.write(usage())
    return 0
  }
  if (first === undefined) throw new UsageError('"domicile report" needs a tenant id (or "verify FILE")', usage())
  if (first === 'verify') return runCommand(reportVerifyCommand, rest)
  return runCommand(reportCommand, argv)
}
