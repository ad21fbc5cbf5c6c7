/**
 * `domicile audit verify [--region R | --control-plane]` recomputes the audit hash chains (every
 * region and the control plane by default) and exits 1 naming the first bad position when one is
 * broken; `domicile audit tail --tenant T [--limit N]` prints the tenant's recent audit records
 * (home region and control plane), newest first. Audit records hold no plaintext.
 */
import { AUDIT_CHAIN_BROKEN_CODE, verifyAuditChains, type ChainVerification } from '../../audit/audit-chain-verify.js'
import { auditTail, AUDIT_TAIL_MAX } from '../../audit/audit-tail.js'
import { UsageError, intOption, runGroup, stringOption, type Command } from '../cli-args.js'
import { formatFields, formatTable, printJson, println } from '../cli-output.js'
import { withDomicile } from '../open-domicile.js'

function chainLine(c: ChainVerification): string {
  if (c.ok) return `ok      ${c.store}  ${c.table}: ${c.records} records, head ${c.head?.position ?? 0} ${c.head?.hash ?? ''}`
  const b = c.firstBad!
  return `BROKEN  ${c.store}  ${c.table}: first bad position ${b.position ?? '(none)'}: ${b.problem}: ${b.message}`
}

export const auditVerifyCommand: Command = {
  spec: {
    synopsis: 'audit verify [--region R | --region R/CELL | --control-plane]',
    summary: 'recompute the SHA-256 chain of every audit log (every region and the control plane by default); exit 1 naming the first edited, deleted or inserted record',
    options: { region: { type: 'string' }, 'control-plane': { type: 'boolean' } },
  },
  async run(p) {
    const region = stringOption(p.values, 'region')
    const controlPlane = p.values['control-plane'] === true
    if (region !== undefined && controlPlane) throw new UsageError('--region and --control-plane exclude each other')
    if (region === '') throw new UsageError('--region needs a region name')
    const v = await withDomicile(p, (d) => verifyAuditChains(d, { ...(region === undefined ? {} : { region }), controlPlane }))
    const broken = v.chains.filter((c) => !c.ok)
    const error = broken.length > 0
      ? { code: AUDIT_CHAIN_BROKEN_CODE, message: `The audit chain of ${broken.map((c) => `${c.store} (first bad position ${c.firstBad?.position ?? 'none'}: ${c.firstBad?.problem})`).join(', ')} is broken. Treat those records as tampered with; compare with backups and a recorded head hash.` }
      : v.unavailable.length > 0
        ? { code: v.unavailable[0]!.code, message: `Could not verify ${v.unavailable.map((u) => u.store).join(', ')}: ${v.unavailable[0]!.message}` }
        : undefined
    if (p.json) printJson({ ok: v.ok, chains: v.chains, unavailable: v.unavailable, ...(error ? { error } : {}) })
    else {
      for (const c of v.chains) println(chainLine(c))
      for (const u of v.unavailable) println(`UNKNOWN ${u.store}: ${u.code}: ${u.message}`)
    }
    if (error) {
      process.stderr.write(`domicile: ${error.code}: ${error.message}\n`)
      return 1
    }
    return 0
  },
}

export const auditTailCommand: Command = {
  spec: {
    synopsis: 'audit tail --tenant T [--limit N]',
    summary: 'the tenant\'s recent audit records (home region and control plane), newest first, with chain positions; never plaintext',
    options: { tenant: { type: 'string' }, limit: { type: 'string' } },
    required: ['tenant'],
  },
  async run(p) {
    const tenant = stringOption(p.values, 'tenant')!
    const limit = intOption(p.values, 'limit', 1, AUDIT_TAIL_MAX) ?? 20
    const t = await withDomicile(p, (d) => auditTail(d, tenant, { limit }))
    if (p.json) {
      printJson(t)
      return 0
    }
    println(formatFields([['tenant', t.tenant], ['region', t.region], ['records', t.records.length]]))
    println()
    println(formatTable(['at', 'store', 'pos', 'type', 'outcome', 'actor', 'detail'],
      t.records.map((r) => [r.at, r.storeName, r.position === null ? '-' : String(r.position), r.type, r.outcome, r.actor ?? '', JSON.stringify(r.detail)])))
    return 0
  },
}

/** `domicile audit verify|tail ...` */
export async function runAuditCommand(argv: readonly string[]): Promise<number> {
  return runGroup('audit', { verify: auditVerifyCommand, tail: auditTailCommand }, argv)
}
