/**
 * `domicile demo [--keep]`: from nothing, in a fresh temp directory, shows what Domicile promises
 * and checks each promise as it goes: tenants pinned to home regions, their rows physically only
 * in their region's store, row-level security inside a shared store, sensitive fields stored as
 * ciphertext under the tenant's own key and revealed only with a purpose, fail-closed routing,
 * and the key kill switch. Exit 0 only if every check passed. `--json` prints a summary instead.
 *
 * Key custody is optional here: while no key providers are wired (ERR_KEY_PROVIDER_UNKNOWN), the
 * demo adds tenants without keys and writes no sensitive columns.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Domicile } from '../../domicile.js'
import { isDomicileError } from '../../errors.js'
import type { TenantRecord } from '../../control-plane/tenant-directory.js'
import type { Command } from '../cli-args.js'
import { formatTable, printJson, println, tenantJson, type TenantJson } from '../cli-output.js'
import { addTenantWithKey } from './tenant.js'
import { Narrator } from './demo-narrator.js'
import { writeExampleFiles } from './init.js'
import { internalsOf } from '../../domicile-internals.js'

interface DemoCustomer {
  readonly id: string
  readonly name: string
  readonly email: string
  readonly tax_id: string
  readonly plan: string
}

interface DemoTenant {
  readonly id: string
  readonly region: string
  readonly customers: readonly DemoCustomer[]
}

/** Made-up people; the addresses use the reserved .example domain. */
export const DEMO_TENANTS: readonly DemoTenant[] = [
  { id: 'acme-eu', region: 'eu-west-1', customers: [
    { id: 'c1', name: 'Ada Lovelace', email: 'ada@acme.example', tax_id: 'GB-100-200-301', plan: 'pro' },
    { id: 'c2', name: 'Émilie du Châtelet', email: 'emilie@acme.example', tax_id: 'FR-400-500-602', plan: 'team' },
    { id: 'c3', name: 'Lise Meitner', email: 'lise@acme.example', tax_id: 'AT-700-800-903', plan: 'pro' },
  ] },
  { id: 'bistro-eu', region: 'eu-west-1', customers: [
    { id: 'c1', name: 'Maria Sibylla Merian', email: 'maria@bistro.example', tax_id: 'DE-111-222-333', plan: 'free' },
    { id: 'c2', name: 'Hedy Lamarr', email: 'hedy@bistro.example', tax_id: 'AT-444-555-666', plan: 'team' },
  ] },
  { id: 'globex-us', region: 'us-east-1', customers: [
    { id: 'c1', name: 'Grace Hopper', email: 'grace@globex.example', tax_id: 'US-123-45-6789', plan: 'pro' },
    { id: 'c2', name: 'Katherine Johnson', email: 'katherine@globex.example', tax_id: 'US-234-56-7890', plan: 'pro' },
    { id: 'c3', name: 'Margaret Hamilton', email: 'margaret@globex.example', tax_id: 'US-345-67-8901', plan: 'team' },
    { id: 'c4', name: 'Annie Easley', email: 'annie@globex.example', tax_id: 'US-456-78-9012', plan: 'free' },
  ] },
  { id: 'initech-us', region: 'us-east-1', customers: [
    { id: 'c1', name: 'Frances Allen', email: 'frances@initech.example', tax_id: 'US-567-89-0123', plan: 'team' },
  ] },
]

const REVEAL = { purpose: 'demo: support ticket #4711 needs the contact address', actor: 'domicile-demo' } as const

interface Residency {
  readonly tenant: string
  readonly home: string
  /** Rows of this tenant found in each region's store. */
  readonly counts: Record<string, number>
}

interface EncryptionProof {
  readonly tenant: string
  readonly row: string
  readonly column: string
  readonly storedBytes: number
  readonly hexPrefix: string
  readonly plaintextInStore: boolean
}

/** The error code `fn` fails with, or "no error". */
async function failureOf(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn()
    return 'no error'
  } catch (e) {
    return isDomicileError(e) ? e.code : `unexpected ${(e as Error)?.name ?? 'error'}`
  }
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`

export const demoCommand: Command = {
  spec: {
    synopsis: 'demo [--adopt] [--keep]',
    summary: 'residency and key custody demo in a fresh temp directory (removed afterwards unless --keep); --adopt: adopting an existing application database',
    options: { keep: { type: 'boolean' }, adopt: { type: 'boolean' } },
  },
  async run(p) {
    const started = Date.now()
    const keep = p.values.keep === true
    const adopt = p.values.adopt === true
    const say = new Narrator(p.json)
    const dir = await mkdtemp(join(tmpdir(), 'domicile-demo-'))
    if (!p.json) {
      println(adopt ? 'Domicile demo: adopting an existing application database (docs/ADOPTING.md)' : 'Domicile demo: data residency and customer-held keys')
      println(`Working directory: ${dir} (${keep ? 'kept afterwards' : 'removed at the end; --keep keeps it'})`)
    }
    let summary: Record<string, unknown>
    try {
      summary = adopt ? await (await import('./demo-adopt.js')).runAdoptDemo(dir, say) : await runDemo(dir, say)
    } finally {
      if (!keep) await rm(dir, { recursive: true, force: true })
    }
    const failed = say.checks.filter((c) => !c.ok)
    const elapsedMs = Date.now() - started
    if (p.json) {
      printJson({ ok: failed.length === 0, dir, kept: keep, ...summary, checks: say.checks, elapsedMs })
    } else {
      println('')
      println(failed.length === 0
        ? `All ${say.checks.length} checks passed in ${seconds(elapsedMs)}.`
        : `${failed.length} of ${say.checks.length} checks FAILED: ${failed.map((c) => c.name).join('; ')}`)
      if (keep) {
        const config = join(dir, 'domicile.config.json')
        println(`Explore it: npx domicile tenant list --config ${config}`)
        println('')
        println('Open the web console on these same embedded regions (the admin token below was generated for you):')
        println(`  DOMICILE_ADMIN_TOKEN=${randomBytes(24).toString('base64url')} npx domicile serve --config ${config}`)
        println('  then open http://127.0.0.1:8080/ and sign in with that token. Stop it with Ctrl-C.')
      }
    }
    return failed.length === 0 ? 0 : 1
  },
}

async function runDemo(dir: string, say: Narrator): Promise<Record<string, unknown>> {
  say.heading('Setup: example config and schema, three embedded stores')
  const files = await writeExampleFiles(dir)
  say.line('wrote domicile.config.json (regions us-east-1 and eu-west-1, a control plane) and domicile.schema.mjs')
  const { createDomicile } = await import('../../index.js')
  const d = await createDomicile({ configPath: files.config })
  try {
    return await demoSteps(d, say)
  } finally {
    await d.close()
  }
}

async function demoSteps(d: Domicile, say: Narrator): Promise<Record<string, unknown>> {
  let t0 = Date.now()
  const migrated = await d.migrate()
  say.line(`migrate: ${migrated.map((r) => `${r.store} ${r.ok ? 'ok' : `FAILED (${r.code ?? 'error'})`}`).join(', ')} (${seconds(Date.now() - t0)})`)
  say.check('every store migrated', 'all ok', migrated.every((r) => r.ok) ? 'all ok' : 'some failed')
  const regions = await d.listRegions()
  say.table(['REGION', 'DRIVER', 'JURISDICTION', 'REACHABLE'], regions.map((r) => [r.name, r.driver, r.jurisdiction ?? '-', r.reachable ? 'yes' : 'no']))
  const regionNames = regions.map((r) => r.name)

  // Tenants, each bound to its own key when key custody is wired.
  let keysWired = true
  const tenants: TenantRecord[] = []
  for (const t of DEMO_TENANTS) {
    if (keysWired) {
      try {
        tenants.push(await addTenantWithKey(d, { id: t.id, region: t.region, custody: 'kms' }))
        continue
      } catch (e) {
        if (!isDomicileError(e, 'ERR_KEY_PROVIDER_UNKNOWN')) throw e
        keysWired = false
      }
    }
    tenants.push(await addTenantWithKey(d, { id: t.id, region: t.region }))
  }
  say.heading(keysWired
    ? 'Tenants: each pinned to a home region, each with its own key (custody kms)'
    : 'Tenants: each pinned to a home region (no key providers wired in this build: no keys, no sensitive columns)')
  say.table(['TENANT', 'HOME REGION', 'CUSTODY', 'PROVIDER', 'KEY STATE'],
    tenants.map((t) => [t.id, t.region, t.key?.custody ?? 'none', t.key?.provider ?? '-', t.keyState]))

  say.heading('Customer rows written through domicile.withTenant(tenant, scope => scope.table("customers").insert(...))')
  t0 = Date.now()
  for (const t of DEMO_TENANTS) {
    await d.withTenant(t.id, async (s) => {
      for (const c of t.customers) {
        await s.table('customers').insert(keysWired ? { ...c } : { id: c.id, name: c.name, plan: c.plan })
      }
    })
    say.line(`${t.id.padEnd(12)} ${t.customers.length} row(s) -> routed to ${t.region}`)
  }
  say.line(keysWired ? `(email and tax_id sealed with each tenant's own data key; ${seconds(Date.now() - t0)})` : '(name and plan only)')

  // Physical proof: count rows per tenant in each region's store, bypassing the tenant layer.
  say.heading('Proof of residency: rows counted directly in each region\'s store (owner session, no tenant filter)')
  const found = new Map<string, Record<string, number>>()
  for (const store of regions) {
    const region = store.name
    const r = await internalsOf(d).router.withRegionAdmin(store, (s) =>
      s.query<{ tenant_id: string; n: number }>('SELECT tenant_id, count(*)::int AS n FROM customers GROUP BY tenant_id ORDER BY tenant_id'))
    for (const row of r.rows) {
      const counts = found.get(row.tenant_id) ?? {}
      counts[region] = Number(row.n)
      found.set(row.tenant_id, counts)
    }
  }
  const residency: Residency[] = DEMO_TENANTS.map((t) => ({
    tenant: t.id,
    home: t.region,
    counts: Object.fromEntries(regionNames.map((r) => [r, found.get(t.id)?.[r] ?? 0])),
  }))
  say.table(['TENANT', 'HOME', ...regionNames],
    residency.map((r) => [r.tenant, r.home, ...regionNames.map((n) => (r.counts[n] ? String(r.counts[n]) : '-'))]))
  for (const t of DEMO_TENANTS) {
    const counts = residency.find((r) => r.tenant === t.id)!.counts
    const elsewhere = regionNames.filter((n) => n !== t.region && (counts[n] ?? 0) > 0)
    say.check(`${t.id} rows only in ${t.region}`, `${t.customers.length} in ${t.region}, 0 elsewhere`,
      `${counts[t.region] ?? 0} in ${t.region}, ${elsewhere.length === 0 ? '0 elsewhere' : `also in ${elsewhere.join(', ')}`}`)
  }
  const strangers = [...found.keys()].filter((id) => !DEMO_TENANTS.some((t) => t.id === id))
  say.check('no rows of unknown tenants in any store', 'none', strangers.length === 0 ? 'none' : strangers.join(', '))

  say.heading('Isolation inside a shared store: acme-eu and bistro-eu both live in eu-west-1 (row-level security)')
  const acme = DEMO_TENANTS[0]!
  const seen = await d.withTenant(acme.id, async (s) => {
    const all = await s.sql<{ n: number }>('SELECT count(*)::int AS n FROM customers')
    const other = await s.sql<{ n: number }>('SELECT count(*)::int AS n FROM customers WHERE tenant_id = $1', ['bistro-eu'])
    return { all: Number(all[0]?.n), other: Number(other[0]?.n) }
  })
  say.check(`raw SQL "SELECT count(*) FROM customers" in ${acme.id}'s scope`, `${acme.customers.length} rows (its own)`, `${seen.all} rows${seen.all === acme.customers.length ? ' (its own)' : ''}`)
  say.check(`the same scope asking for bistro-eu's rows by tenant_id`, '0 rows', `${seen.other} rows`)

  let encryption: EncryptionProof | null = null
  if (keysWired) encryption = await encryptionSteps(d, say, acme)

  say.heading('Fail closed: no fallback region, no default tenant')
  say.check('withTenant("nobody")', 'ERR_TENANT_UNKNOWN', await failureOf(() => d.withTenant('nobody', async () => undefined)))
  await d.setTenantStatus('bistro-eu', 'suspended')
  say.check('withTenant("bistro-eu") while suspended', 'ERR_TENANT_SUSPENDED', await failureOf(() => d.withTenant('bistro-eu', (s) => s.table('customers').list())))
  await d.setTenantStatus('bistro-eu', 'active')
  say.check('withTenant("bistro-eu") after resume', 'no error', await failureOf(() => d.withTenant('bistro-eu', (s) => s.table('customers').list())))
  say.check('addTenant("zeta-ap", { region: "ap-south-1" }) (not configured)', 'ERR_REGION_UNKNOWN', await failureOf(() => d.addTenant('zeta-ap', { region: 'ap-south-1' })))

  let killSwitch = false
  if (keysWired) {
    await killSwitchSteps(d, say, acme, DEMO_TENANTS[2]!)
    killSwitch = true
  }

  const provider = tenants.find((t) => t.key)?.key?.provider ?? null
  return {
    keys: { wired: keysWired, custody: keysWired ? 'kms' : null, provider },
    regions,
    tenants: (await d.listTenants()).map((t): TenantJson => tenantJson(t)),
    residency,
    encryption,
    killSwitch,
  }
}

const revealEmail = (d: Domicile, tenant: string, row: string): Promise<unknown> =>
  d.withTenant(tenant, async (s) => s.reveal((await s.table('customers').get(row))?.email, REVEAL))

async function encryptionSteps(d: Domicile, say: Narrator, t: DemoTenant): Promise<EncryptionProof> {
  const c = t.customers[0]!
  say.heading(`Field encryption: ${t.id}/${c.id} email as stored in ${t.region} (never printed in plaintext)`)
  const stored = await internalsOf(d).router.withRegionAdmin(await d.getTenant(t.id), async (s) => {
    const r = await s.query<{ email: Uint8Array | null; tax_id: Uint8Array | null }>('SELECT email, tax_id FROM customers WHERE tenant_id = $1 AND id = $2', [t.id, c.id])
    return r.rows[0]
  })
  const bytes = stored?.email instanceof Uint8Array ? Buffer.from(stored.email) : Buffer.alloc(0)
  const taxBytes = stored?.tax_id instanceof Uint8Array ? Buffer.from(stored.tax_id) : Buffer.alloc(0)
  const hexPrefix = bytes.subarray(0, 12).toString('hex')
  const plaintextInStore = bytes.includes(Buffer.from(c.email)) || taxBytes.includes(Buffer.from(c.tax_id))
  say.line(`stored email:  ${bytes.length} bytes, starts ${hexPrefix}...`)
  say.line(`stored tax_id: ${taxBytes.length} bytes, starts ${taxBytes.subarray(0, 12).toString('hex')}...`)
  say.check('stored columns are ciphertext (plaintext bytes absent)', 'ciphertext', bytes.length > 0 && !plaintextInStore ? 'ciphertext' : bytes.length === 0 ? 'no bytes stored' : 'plaintext found')

  const read = await d.withTenant(t.id, async (s) => {
    const row = await s.table('customers').get(c.id)
    return { shown: String(row?.email), json: JSON.stringify(row) }
  })
  say.line(`through withTenant, scope.table("customers").get("${c.id}"): ${read.json}`)
  say.check('a read shows sealed values, not plaintext', '[sealed]', read.shown)
  const revealed = await revealEmail(d, t.id, c.id)
  say.line(`scope.reveal(row.email, { purpose: "${REVEAL.purpose}", actor: "${REVEAL.actor}" })`)
  say.line(`  -> ${String(revealed)}   (audited with its purpose)`)
  say.check('reveal with a purpose returns the original value', 'the original email', revealed === c.email ? 'the original email' : 'a different value')
  const probe = `  ${c.email.toUpperCase()} `
  const hits = await d.tenant(t.id).table('customers').find({ email: probe })
  say.check(`tenant(${JSON.stringify(t.id)}).table('customers').find({ email: ${JSON.stringify(probe)} }) via the blind index (trim, lower)`, c.id, hits.map((h) => String(h.id)).join(',') || 'no rows')
  return { tenant: t.id, row: c.id, column: 'email', storedBytes: bytes.length, hexPrefix, plaintextInStore }
}

async function killSwitchSteps(d: Domicile, say: Narrator, victim: DemoTenant, bystander: DemoTenant): Promise<void> {
  say.heading(`Kill switch: ${victim.id} revokes its key`)
  await d.keys.revoke(victim.id, 'domicile-demo')
  const st = await d.keys.status(victim.id)
  say.line(`domicile.keys.revoke("${victim.id}") -> key state ${st.state}`)
  say.check(`reveal in ${victim.id} after revoke`, 'ERR_KEY_REVOKED', await failureOf(() => revealEmail(d, victim.id, victim.customers[0]!.id)))
  const other = await revealEmail(d, bystander.id, bystander.customers[0]!.id).then((v) => (v === bystander.customers[0]!.email ? 'works' : 'wrong value'), (e) => (isDomicileError(e) ? e.code : 'error'))
  say.check(`reveal in ${bystander.id} (its own key) meanwhile`, 'works', other)
  await d.keys.restore(victim.id, 'domicile-demo')
  say.line(`domicile.keys.restore("${victim.id}") -> key state ${(await d.keys.status(victim.id)).state}`)
  const back = await revealEmail(d, victim.id, victim.customers[0]!.id).then((v) => (v === victim.customers[0]!.email ? 'works' : 'wrong value'), (e) => (isDomicileError(e) ? e.code : 'error'))
  say.check(`reveal in ${victim.id} after restore`, 'works', back)
}
