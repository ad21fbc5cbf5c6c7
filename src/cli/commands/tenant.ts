/**
 * `domicile tenant add|bind-key|update-key-service|show|list|suspend|resume`: the tenant directory. `add` is the
 * one-step onboarding of src/onboarding/onboard-tenant.ts (key first, then the tenant; default
 * custody kms; hyok registers the customer's key service, credentials sealed, never printed).
 * The key state printed is the one `domicile key status` reports (the directory's kill-switch state
 * combined with the key provider's own view), so a key disabled at the customer's side shows as
 * revoked in both. `update-key-service` re-registers a HYOK tenant's proxy credentials, CA or
 * deadline (src/onboarding/update-key-service.ts) without restarting anything.
 */
import { X509Certificate } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { KeyServiceStore, type KeyServiceInfo } from '../../control-plane/key-services.js'
import type { TenantRecord } from '../../control-plane/tenant-directory.js'
import type { Domicile } from '../../domicile.js'
import { internalsOf } from '../../domicile-internals.js'
import { DomicileError } from '../../errors.js'
import type { Custody } from '../../keys/key-provider.js'
import { keyServiceTenant } from '../../keys/provider-registry.js'
import { bindTenantKey, nextStepsFor, onboardTenant, type BindKeyRequest, type OnboardCustody, type OnboardResult } from '../../onboarding/onboard-tenant.js'
import { updateKeyService } from '../../onboarding/update-key-service.js'
import { newestCredential, parseCredentialsFile } from '../../xks/xks-credentials.js'
import { tenantMoveCommand } from './tenant-move.js'
import { UsageError, actorOption, commandUsage, intOption, runGroup, stringOption, type Command, type ParsedCommand } from '../cli-args.js'
import { formatFields, formatTenant, formatTenantTable, printJson, println, tenantJson } from '../cli-output.js'
import { withDomicile } from '../open-domicile.js'

function printTenant(p: ParsedCommand, t: TenantRecord, keyState: string = t.keyState): void {
  if (p.json) printJson(tenantJson(t, keyState))
  else println(formatTenant(t, keyState))
}

/** At most this many key providers are asked at once by "tenant list". */
const STATUS_CONCURRENCY = 8

/**
 * The key state of a tenant as `domicile key status` reports it (ours and the provider's
 * combined); the directory's record for a tenant without a key.
 */
export async function liveKeyState(d: Domicile, t: TenantRecord): Promise<string> {
  if (!t.key) return t.keyState
  return (await d.keys.status(t.id)).state
}

async function liveKeyStates(d: Domicile, ts: readonly TenantRecord[]): Promise<string[]> {
  const out: string[] = new Array<string>(ts.length)
  let next = 0
  const worker = async (): Promise<void> => {
    for (let i = next++; i < ts.length; i = next++) out[i] = await liveKeyState(d, ts[i]!)
  }
  await Promise.all(Array.from({ length: Math.min(STATUS_CONCURRENCY, ts.length) }, worker))
  return out
}

export interface AddTenantRequest {
  readonly id: string
  readonly region: string
  readonly custody?: Custody
  readonly provider?: string
  readonly keyId?: string
  readonly cacheTtlMs?: number
}

/**
 * @deprecated Use `onboardTenant` (src/onboarding/onboard-tenant.ts). Kept for callers written
 * before onboarding defaulted to a key: without `custody` this adds a tenant without a key.
 */
export async function addTenantWithKey(d: Domicile, req: AddTenantRequest): Promise<TenantRecord> {
  return (await onboardTenant(d, { ...req, custody: req.custody ?? 'none' })).tenant
}

/** The newest SigV4 credential of a credentials file (as `keyproxy init` writes it, or a single pair). */
async function readXksCredentials(file: string): Promise<{ accessKeyId: string; secretAccessKey: string }> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch {
    throw new DomicileError('ERR_INPUT_INVALID', '--xks-credentials: cannot read the file. Pass the credentials.json that "domicile keyproxy init" wrote (it prints its path).', { path: '--xks-credentials' })
  }
  const parsed = parseCredentialsFile(text)
  if (!parsed.ok) throw new DomicileError('ERR_INPUT_INVALID', `--xks-credentials: the file ${parsed.problem}.`, { path: '--xks-credentials' })
  const c = newestCredential(parsed.credentials)
  return { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey }
}

/** A PEM certificate file to trust for the proxy (checked to parse as X.509). */
async function readCaFile(file: string): Promise<string> {
  let pem: string
  try {
    pem = await readFile(file, 'utf8')
  } catch {
    throw new DomicileError('ERR_INPUT_INVALID', '--xks-ca: cannot read the file. Pass the proxy\'s certificate (DIR/tls/cert.pem of "domicile keyproxy init") or its CA certificate.', { path: '--xks-ca' })
  }
  try {
    new X509Certificate(pem)
  } catch {
    throw new DomicileError('ERR_INPUT_INVALID', '--xks-ca: the file is not a PEM certificate. Pass the proxy\'s certificate or its CA certificate.', { path: '--xks-ca' })
  }
  return pem
}

const KEY_OPTIONS = {
  custody: { type: 'string' }, provider: { type: 'string' }, 'key-id': { type: 'string' },
  'xks-endpoint': { type: 'string' }, 'xks-uri-prefix': { type: 'string' }, 'xks-credentials': { type: 'string' },
  'xks-ca': { type: 'string' }, 'xks-timeout-ms': { type: 'string' }, actor: { type: 'string' },
} as const

/** The key part of `tenant add` / `tenant bind-key` from the command line. */
async function keyRequest(p: ParsedCommand, spec: Command['spec'], custodies: readonly string[]): Promise<BindKeyRequest & { custody: OnboardCustody }> {
  const custody = stringOption(p.values, 'custody') ?? 'kms'
  if (!custodies.includes(custody)) throw new UsageError(`--custody: expected ${custodies.join(' | ')}`, commandUsage(spec))
  const provider = stringOption(p.values, 'provider')
  const keyId = stringOption(p.values, 'key-id')
  const endpoint = stringOption(p.values, 'xks-endpoint')
  const credentialsFile = stringOption(p.values, 'xks-credentials')
  const uriPrefix = stringOption(p.values, 'xks-uri-prefix')
  const caFile = stringOption(p.values, 'xks-ca')
  const timeoutMs = intOption(p.values, 'xks-timeout-ms', 1, 60_000)
  const anyXks = endpoint ?? credentialsFile ?? uriPrefix ?? caFile ?? timeoutMs
  if (anyXks !== undefined && custody !== 'hyok') throw new UsageError('--xks-* options register the customer\'s key service: they go with --custody hyok', commandUsage(spec))
  if (anyXks !== undefined && (endpoint === undefined || credentialsFile === undefined)) {
    throw new UsageError('--custody hyok with a key service needs --xks-endpoint URL and --xks-credentials FILE (as "domicile keyproxy serve" prints them)', commandUsage(spec))
  }
  const xks = endpoint !== undefined && credentialsFile !== undefined
    ? {
        endpoint, credentials: await readXksCredentials(credentialsFile),
        ...(uriPrefix !== undefined ? { uriPrefix } : {}),
        ...(caFile !== undefined ? { caPem: await readCaFile(caFile) } : {}),
        ...(timeoutMs !== undefined ? { timeoutMs } : {}),
      }
    : undefined
  return {
    id: p.args[0]!, custody: custody as OnboardCustody, actor: actorOption(p.values),
    ...(provider !== undefined ? { provider } : {}),
    ...(keyId !== undefined ? { keyId } : {}),
    ...(xks !== undefined ? { xks } : {}),
  } as BindKeyRequest & { custody: OnboardCustody }
}

/** Public facts about a tenant's registered key service, for output (never a credential). */
async function keyServiceOf(d: Domicile, t: TenantRecord): Promise<KeyServiceInfo | undefined> {
  if (!t.key || keyServiceTenant(t.key.provider) !== t.id) return undefined
  return new KeyServiceStore(internalsOf(d).controlPlane, { sealProvider: undefined }).describe(t.id)
}

interface TenantView {
  readonly tenant: TenantRecord
  readonly keyState: string
  readonly nextSteps: readonly string[]
  readonly keyService: KeyServiceInfo | undefined
}

function printView(p: ParsedCommand, v: TenantView): void {
  const ks = v.keyService
  const service = ks ? { endpoint: ks.endpoint, uriPrefix: ks.uriPrefix, trustsCustomCa: ks.trustsCustomCa, credentials: 'sealed', sealedBy: ks.sealedBy } : undefined
  if (p.json) {
    printJson({ ...tenantJson(v.tenant, v.keyState), ...(service ? { keyService: service } : {}), ...(v.nextSteps.length > 0 ? { nextSteps: v.nextSteps } : {}) })
    return
  }
  if (ks) {
    const j = tenantJson(v.tenant, v.keyState)
    println(formatFields([
      ['id', j.id], ['region', j.region], ['cell', j.cell], ['status', j.status], ['custody', j.custody ?? 'none'], ['provider', j.provider ?? '-'],
      ['key id', j.keyId ?? '-'], ['key state', j.keyState], ['key service', `${ks.endpoint}${ks.uriPrefix}`],
      ['proxy CA', ks.trustsCustomCa ? 'registered certificate' : 'system roots'],
      ['credentials', `sealed under ${ks.sealedBy.provider} key ${ks.sealedBy.keyId}`],
      ['version', j.version], ['created', j.createdAt], ['updated', j.updatedAt],
    ]))
  } else {
    println(formatTenant(v.tenant, v.keyState))
  }
  if (v.keyState === 'pending-import') println('\nThe key is pending import: sealed fields cannot be written until the key material is imported.')
  if (v.nextSteps.length > 0) {
    println('\nNext steps:')
    for (const step of v.nextSteps) println(`  ${step}`)
  }
}

async function viewOf(d: Domicile, r: OnboardResult): Promise<TenantView> {
  return { ...r, keyService: await keyServiceOf(d, r.tenant) }
}

const add: Command = {
  spec: {
    synopsis: 'tenant add ID --region R [--cell C] [--custody kms|byok|hyok|none] [--provider P] [--key-id K] [--cache-ttl-ms N] ' +
      '[--xks-endpoint URL [--xks-uri-prefix PATH] --xks-credentials FILE [--xks-ca FILE] [--xks-timeout-ms N]] [--actor A]',
    summary: 'add a tenant pinned to region R (cell C of a region with several cells; default: the cell with the fewest tenants) and bound to its key in one step (default custody kms; byok starts as ' +
      'pending-import; hyok registers the customer\'s XKS proxy after a health check and a test round trip; none = no key)',
    positionals: ['ID'],
    options: { region: { type: 'string' }, cell: { type: 'string' }, 'cache-ttl-ms': { type: 'string' }, ...KEY_OPTIONS },
    required: ['region'],
  },
  async run(p) {
    const req = await keyRequest(p, this.spec, ['kms', 'byok', 'hyok', 'none'])
    const cacheTtlMs = intOption(p.values, 'cache-ttl-ms', 0, 86_400_000)
    const view = await withDomicile(p, async (d) => viewOf(d, await onboardTenant(d, {
      ...req, region: stringOption(p.values, 'region')!, ...(cacheTtlMs !== undefined ? { cacheTtlMs } : {}),
      ...(stringOption(p.values, 'cell') !== undefined ? { cell: stringOption(p.values, 'cell')! } : {}),
    })))
    printView(p, view)
    return 0
  },
}

const bindKey: Command = {
  spec: {
    synopsis: 'tenant bind-key ID [--custody kms|byok|hyok] [--provider P] [--key-id K] ' +
      '[--xks-endpoint URL [--xks-uri-prefix PATH] --xks-credentials FILE [--xks-ca FILE] [--xks-timeout-ms N]] [--actor A]',
    summary: 'bind a key to a tenant added with --custody none (same checks as tenant add)',
    positionals: ['ID'],
    options: { ...KEY_OPTIONS },
  },
  async run(p) {
    const req = await keyRequest(p, this.spec, ['kms', 'byok', 'hyok'])
    const view = await withDomicile(p, async (d) => viewOf(d, await bindTenantKey(d, req as BindKeyRequest)))
    printView(p, view)
    return 0
  },
}

const updateKeyServiceCommand: Command = {
  spec: {
    synopsis: 'tenant update-key-service ID [--xks-credentials FILE] [--xks-ca FILE] [--xks-timeout-ms N] [--actor A]',
    summary: 'change the registered XKS proxy of a HYOK tenant: its newest SigV4 credential (the credentials.json ' +
      '"keyproxy rotate-credentials" writes), the CA certificate to trust, the per-call deadline. The proxy\'s health check ' +
      'and a test round trip with the tenant\'s key run first; a refused check changes nothing. Running processes switch ' +
      'within about a second, no restart. A new endpoint or URI prefix is not an update: onboard the tenant\'s key service again',
    positionals: ['ID'],
    options: { 'xks-credentials': { type: 'string' }, 'xks-ca': { type: 'string' }, 'xks-timeout-ms': { type: 'string' }, actor: { type: 'string' } },
  },
  async run(p) {
    const credentialsFile = stringOption(p.values, 'xks-credentials')
    const caFile = stringOption(p.values, 'xks-ca')
    const timeoutMs = intOption(p.values, 'xks-timeout-ms', 1, 60_000)
    if (credentialsFile === undefined && caFile === undefined && timeoutMs === undefined) {
      throw new UsageError('give at least one of --xks-credentials FILE, --xks-ca FILE, --xks-timeout-ms N', commandUsage(this.spec))
    }
    const credentials = credentialsFile !== undefined ? await readXksCredentials(credentialsFile) : undefined
    const caPem = caFile !== undefined ? await readCaFile(caFile) : undefined
    const actor = actorOption(p.values)
    const r = await withDomicile(p, (d) => updateKeyService(d, {
      id: p.args[0]!,
      ...(credentials !== undefined ? { credentials } : {}),
      ...(caPem !== undefined ? { caPem } : {}),
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
      ...(actor !== undefined ? { actor } : {}),
    }))
    const ks = r.keyService
    if (p.json) {
      printJson({
        id: r.tenant.id, changed: r.changed, version: r.tenant.version,
        keyService: { endpoint: ks.endpoint, uriPrefix: ks.uriPrefix, trustsCustomCa: ks.trustsCustomCa, timeoutMs: ks.timeoutMs, credentials: 'sealed', sealedBy: ks.sealedBy },
      })
    } else {
      println(formatFields([
        ['id', r.tenant.id], ['updated', r.changed.join(', ')], ['key service', `${ks.endpoint}${ks.uriPrefix}`],
        ['proxy CA', ks.trustsCustomCa ? 'registered certificate' : 'system roots'],
        ['deadline', ks.timeoutMs === null ? 'default (250 ms)' : `${ks.timeoutMs} ms`],
        ['credentials', `sealed under ${ks.sealedBy.provider} key ${ks.sealedBy.keyId}`],
      ]))
      println('\nRunning processes use the new settings at their next key call (within about a second).')
    }
    return 0
  },
}

const show: Command = {
  spec: { synopsis: 'tenant show ID', summary: 'print a tenant: region, status, key binding, key state, registered key service, next steps', positionals: ['ID'] },
  async run(p) {
    const view = await withDomicile(p, async (d) => {
      const tenant = await d.getTenant(p.args[0]!)
      const keyState = await liveKeyState(d, tenant)
      let kind: string | undefined
      try {
        kind = tenant.key ? internalsOf(d).providers?.config(tenant.key.provider).kind : undefined
      } catch {
        kind = undefined
      }
      return { tenant, keyState, nextSteps: nextStepsFor(tenant, keyState, kind), keyService: await keyServiceOf(d, tenant) }
    })
    printView(p, view)
    return 0
  },
}

const list: Command = {
  spec: { synopsis: 'tenant list', summary: 'list all tenants, with each key\'s state as "key status" reports it' },
  async run(p) {
    const [ts, states] = await withDomicile(p, async (d) => {
      const all = await d.listTenants()
      return [all, await liveKeyStates(d, all)] as const
    })
    if (p.json) printJson(ts.map((t, i) => tenantJson(t, states[i])))
    else println(formatTenantTable(ts, states))
    return 0
  },
}

function statusCommand(status: 'active' | 'suspended', word: string): Command {
  return {
    spec: {
      synopsis: `tenant ${word} ID`,
      summary: status === 'suspended' ? 'refuse every request for the tenant until it is resumed' : 'serve a suspended tenant again',
      positionals: ['ID'],
    },
    async run(p) {
      printTenant(p, await withDomicile(p, (d) => d.setTenantStatus(p.args[0]!, status)))
      return 0
    },
  }
}

export function runTenantCommand(argv: readonly string[]): Promise<number> {
  return runGroup('tenant', { add, 'bind-key': bindKey, 'update-key-service': updateKeyServiceCommand, show, list, suspend: statusCommand('suspended', 'suspend'), resume: statusCommand('active', 'resume'), move: tenantMoveCommand }, argv)
}
