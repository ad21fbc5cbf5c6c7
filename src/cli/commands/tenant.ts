/**
 * `domicile tenant add|show|list|suspend|resume`: the tenant directory. `add --custody` first
 * provisions (or binds) the tenant's key through the key admin, then adds the tenant with it.
 * The key state printed is the one `domicile key status` reports (the directory's kill-switch state
 * combined with the key provider's own view), so a key disabled at the customer's side shows as
 * revoked in both.
 */
import { assertTenantId, type TenantRecord } from '../../control-plane/tenant-directory.js'
import type { Domicile } from '../../domicile.js'
import { DomicileError, isDomicileError } from '../../errors.js'
import type { Custody } from '../../keys/key-provider.js'
import { tenantMoveCommand } from './tenant-move.js'
import { UsageError, commandUsage, intOption, runGroup, stringOption, type Command, type ParsedCommand } from '../cli-args.js'
import { formatTenant, formatTenantTable, printJson, println, tenantJson } from '../cli-output.js'
import { withDomicile } from '../open-domicile.js'

const CUSTODY: readonly Custody[] = ['kms', 'byok', 'hyok']

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
 * Adds a tenant; with `custody`, provisions its key first. The cheap checks (id, region, tenant
 * not yet known) run before provisioning so a refused add leaves no orphan key behind.
 */
export async function addTenantWithKey(d: Domicile, req: AddTenantRequest): Promise<TenantRecord> {
  assertTenantId(req.id)
  if (!d.regions.includes(req.region)) {
    throw new DomicileError('ERR_REGION_UNKNOWN', `Region "${req.region}" is not configured (configured: ${d.regions.join(', ')}).`)
  }
  const cacheTtlMs = req.cacheTtlMs === undefined ? {} : { cacheTtlMs: req.cacheTtlMs }
  if (req.custody === undefined) return d.addTenant(req.id, { region: req.region, ...cacheTtlMs })
  /* Precondition: a key is provisioned only for a tenant id that is still free. */
  const existing = await d.getTenant(req.id).catch((e: unknown) => {
    if (isDomicileError(e, 'ERR_TENANT_UNKNOWN')) return undefined
    throw e
  })
  if (existing) throw new DomicileError('ERR_TENANT_EXISTS', `Tenant "${req.id}" already exists (region ${existing.region}). Use another id.`)
  const { key, keyState } = await d.keys.provision(req.id, {
    custody: req.custody,
    ...(req.provider !== undefined ? { provider: req.provider } : {}),
    ...(req.keyId !== undefined ? { keyId: req.keyId } : {}),
  })
  return d.addTenant(req.id, { region: req.region, key, keyState, ...cacheTtlMs })
}

const add: Command = {
  spec: {
    synopsis: 'tenant add ID --region R [--custody kms|byok|hyok] [--provider P] [--key-id K] [--cache-ttl-ms N]',
    summary: 'add a tenant pinned to region R; with --custody, bind it a key (byok starts as pending-import)',
    positionals: ['ID'],
    options: { region: { type: 'string' }, custody: { type: 'string' }, provider: { type: 'string' }, 'key-id': { type: 'string' }, 'cache-ttl-ms': { type: 'string' } },
    required: ['region'],
  },
  async run(p) {
    const custody = stringOption(p.values, 'custody')
    const provider = stringOption(p.values, 'provider')
    const keyId = stringOption(p.values, 'key-id')
    if (custody !== undefined && !(CUSTODY as readonly string[]).includes(custody)) throw new UsageError('--custody: expected kms | byok | hyok', commandUsage(this.spec))
    if (custody === undefined && (provider !== undefined || keyId !== undefined)) throw new UsageError('--provider and --key-id need --custody', commandUsage(this.spec))
    const cacheTtlMs = intOption(p.values, 'cache-ttl-ms', 0, 86_400_000)
    const t = await withDomicile(p, (d) => addTenantWithKey(d, {
      id: p.args[0]!,
      region: stringOption(p.values, 'region')!,
      ...(custody !== undefined ? { custody: custody as Custody } : {}),
      ...(provider !== undefined ? { provider } : {}),
      ...(keyId !== undefined ? { keyId } : {}),
      ...(cacheTtlMs !== undefined ? { cacheTtlMs } : {}),
    }))
    printTenant(p, t)
    return 0
  },
}

const show: Command = {
  spec: { synopsis: 'tenant show ID', summary: 'print a tenant: region, status, key binding and key state', positionals: ['ID'] },
  async run(p) {
    const [t, keyState] = await withDomicile(p, async (d) => {
      const rec = await d.getTenant(p.args[0]!)
      return [rec, await liveKeyState(d, rec)] as const
    })
    printTenant(p, t, keyState)
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
  return runGroup('tenant', { add, show, list, suspend: statusCommand('suspended', 'suspend'), resume: statusCommand('active', 'resume'), move: tenantMoveCommand }, argv)
}
