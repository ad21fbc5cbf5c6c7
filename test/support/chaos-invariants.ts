/**
 * The invariant check that ends every fault-and-load scenario (issue #14). It reads each region's
 * store directly (a superuser connection with pg: no Domicile, no row-level security) and then, for
 * what only Domicile can prove, goes through the public API:
 *
 * - placement: every acknowledged write is present exactly once, in its tenant's home region only
 *   (per the control plane's directory), with the acknowledged content (revealed through withTenant);
 *   no row of a scenario tenant that no write produced; no row or wrapped key of any tenant in a
 *   region that is not its home; rows written by one transaction are all present or all absent;
 * - sealing: every sensitive column is a `bytea` column (no migration shadow left), every non-null
 *   value has the sealed-field v1 header (docs/FORMAT.md: version 0x01, data-key number 1..2^31-1,
 *   at least 34 bytes) and names a data key of its own tenant stored in the same region, a searchable
 *   column has its blind index; and no table of any store (control plane included, audit records
 *   included) contains the workload's plaintext marker, as text or as hex;
 * - keys: data-key numbers of a tenant run 1..n without gaps, and (unless the scenario rotates keys)
 *   every data key seals at least one stored value: a key whose transaction died is not left behind;
 * - isolation: inside each tenant's scope, raw SQL sees no other tenant's rows, keys or audit records,
 *   and another tenant's row is neither found by its id nor by its searchable value;
 * - audit: every hash chain verifies (verifyAuditChains, src/audit/audit-chain-verify.ts).
 *
 * @example
 * const report = await checkInvariants({ env, d, model })
 * assertInvariants(report)        // fails listing every problem found
 */
import { strict as assert } from 'node:assert'
import type pg from 'pg'
import { verifyAuditChains, type Domicile } from '../../src/index.js'
import type { ResolvedTable } from '../../src/schema/define-schema.js'
import type { ChaosEnv } from './chaos-env.js'
import { ChaosModel, PII_MARKER, type Expected, type RowState } from './chaos-workload.js'

export interface InvariantInput {
  readonly env: ChaosEnv
  readonly d: Domicile
  readonly model: ChaosModel
  /** Tenants whose rows the model describes completely; default: the model's tenants. */
  readonly tenants?: readonly string[]
  /** A scenario that rotates data keys may leave keys that seal nothing. Default false. */
  readonly allowUnreferencedDataKeys?: boolean
  /** Extra markers of plaintext that must not appear raw anywhere (besides PII_MARKER). */
  readonly markers?: readonly string[]
}

export interface InvariantReport {
  readonly tenants: number
  readonly rowsChecked: number
  readonly writesAcknowledged: number
  readonly writesVerified: number
  readonly uncertainRows: number
  readonly sealedValues: number
  readonly dataKeys: number
  readonly crossTenantProbes: number
  /** Rows holding a plaintext marker, as read raw from the stores. */
  readonly plaintextFound: number
  readonly auditRecords: number
  readonly problems: string[]
}

const ident = (s: string): string => `"${s.replace(/"/g, '""')}"`
const hexOf = (s: string): string => Buffer.from(s, 'utf8').toString('hex')

function sameRow(expected: Expected, got: Record<string, unknown> | undefined): boolean {
  if (!got) return false
  for (const [k, v] of Object.entries(expected)) {
    if (JSON.stringify(got[k] ?? null) !== JSON.stringify(v ?? null)) return false
  }
  return true
}

export async function checkInvariants(input: InvariantInput): Promise<InvariantReport> {
  const { env, d, model } = input
  const problems: string[] = []
  const problem = (p: string) => {
    if (problems.length < 200) problems.push(p)
  }
  const tenants = [...(input.tenants ?? model.tenants())].sort()
  const inScenario = new Set(tenants)
  const markers = [PII_MARKER, ...(input.markers ?? [])]
  const tables = [...d.schema.tables.values()].filter((t) => t.scope === 'tenant')

  // 1. The directory, as the control plane stores it.
  const home = new Map<string, string>()
  let auditRecords = 0
  let plaintextFound = 0
  await env.withDirect('control', async (c) => {
    const r = await c.query<{ id: string; region: string; status: string }>('SELECT id, region, status FROM domicile_tenants')
    for (const row of r.rows) {
      home.set(row.id, row.region)
      if (inScenario.has(row.id) && row.status !== 'active') problem(`tenant ${row.id}: status ${row.status}, not active`)
    }
    plaintextFound += await scanForPlaintext(c, 'control plane', markers, problem)
  })
  for (const t of tenants) if (!home.has(t)) problem(`tenant ${t}: not in the directory`)

  // 2. Each region's store, read raw.
  const presence = new Map<string, string[]>() // model key -> regions holding the row
  const unexpected: string[] = []
  let sealedValues = 0
  let dataKeys = 0
  const keyUse = new Map<string, number>() // `${region}/${tenant}/${keyNumber}` -> sealed values
  const dataKeyRows: Array<{ region: string; tenant: string; n: number }> = []
  for (const region of env.regions) {
    await env.withDirect(region, async (c) => {
      for (const t of tables) {
        const pk = ident(t.primaryKey)
        const rows = await c.query<{ tenant_id: string; id: string }>(`SELECT tenant_id, ${pk}::text AS id FROM ${ident(t.name)}`)
        for (const row of rows.rows) {
          const h = home.get(row.tenant_id)
          if (h !== region) problem(`${region}: ${t.name} row of tenant ${row.tenant_id} ${h ? `whose home is ${h}` : 'unknown to the directory'}`)
          if (!inScenario.has(row.tenant_id)) continue
          const k = ChaosModel.key(row.tenant_id, t.name, row.id)
          if (!model.rows.has(k)) unexpected.push(`${region}: ${t.name} ${row.tenant_id}/${row.id}`)
          const list = presence.get(k) ?? []
          list.push(region)
          presence.set(k, list)
        }
        sealedValues += await checkSealedColumns(c, region, t, keyUse, problem)
      }
      const keys = await c.query<{ tenant_id: string; purpose: string; key_number: number }>('SELECT tenant_id, purpose, key_number FROM domicile_data_keys ORDER BY tenant_id, purpose, key_number')
      const numbers = new Map<string, number[]>()
      for (const k of keys.rows) {
        const h = home.get(k.tenant_id)
        if (h !== region) problem(`${region}: wrapped ${k.purpose} key ${k.key_number} of tenant ${k.tenant_id} ${h ? `whose home is ${h}` : 'unknown to the directory'} (orphaned key)`)
        const id = `${k.tenant_id}/${k.purpose}`
        numbers.set(id, [...(numbers.get(id) ?? []), Number(k.key_number)])
        if (k.purpose === 'data') {
          dataKeys++
          dataKeyRows.push({ region, tenant: k.tenant_id, n: Number(k.key_number) })
        }
      }
      for (const [id, ns] of numbers) {
        if (ns.some((n, i) => n !== i + 1)) problem(`${region}: key numbers of ${id} are ${ns.join(',')}, not 1..${ns.length}`)
      }
      auditRecords += Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM domicile_audit')).rows[0]!.n)
      plaintextFound += await scanForPlaintext(c, region, markers, problem)
    })
  }
  if (!input.allowUnreferencedDataKeys) {
    for (const k of dataKeyRows) {
      if (!keyUse.has(`${k.region}/${k.tenant}/${k.n}`)) problem(`${k.region}: data key ${k.n} of ${k.tenant} seals no stored value (orphaned data key)`)
    }
  }
  for (const u of unexpected.slice(0, 20)) problem(`a row no acknowledged or attempted write produced: ${u}`)

  // 3. Placement and atomicity of what the model says.
  const groups = new Map<string, Set<boolean>>()
  for (const s of model.rows.values()) {
    if (!inScenario.has(s.tenant)) continue
    const where = presence.get(ChaosModel.key(s.tenant, s.table, s.id)) ?? []
    const h = home.get(s.tenant)
    if (where.length > 1) problem(`${s.table} ${s.tenant}/${s.id}: present in ${where.join(' and ')}`)
    if (where.some((r) => r !== h)) problem(`${s.table} ${s.tenant}/${s.id}: stored outside its home region ${h}`)
    const canBeAbsent = s.maybe ? s.maybe.includes(null) : s.value === null
    const canBePresent = s.maybe ? s.maybe.some((v) => v !== null) : s.value !== null
    if (where.length === 0 && !canBeAbsent) problem(`${s.table} ${s.tenant}/${s.id}: acknowledged (${s.acked} writes) but missing`)
    if (where.length > 0 && !canBePresent) problem(`${s.table} ${s.tenant}/${s.id}: present but never acknowledged`)
    if (s.group) {
      const g = groups.get(s.group) ?? new Set<boolean>()
      g.add(where.length > 0)
      groups.set(s.group, g)
    }
  }
  for (const [g, seen] of groups) if (seen.size > 1) problem(`transaction ${g}: some of its rows are stored, others not (partial transaction)`)

  // 4. Content, through Domicile (keys unwrap, values open to what was acknowledged), and isolation.
  let rowsChecked = 0
  let writesVerified = 0
  let crossTenantProbes = 0
  const byTenant = new Map<string, RowState[]>()
  for (const s of model.rows.values()) if (inScenario.has(s.tenant)) byTenant.set(s.tenant, [...(byTenant.get(s.tenant) ?? []), s])
  const queue = [...tenants]
  const worker = async () => {
    for (let t = queue.shift(); t !== undefined; t = queue.shift()) {
      try {
        const r = await checkTenantThroughDomicile(d, t, tables, byTenant, home, problem)
        rowsChecked += r.rows
        writesVerified += r.verified
        crossTenantProbes += r.probes
      } catch (e) {
        problem(`tenant ${t}: reading through Domicile failed: ${e instanceof Error ? e.message : String(e)}`)
      }
    }
  }
  await Promise.all([worker(), worker(), worker()])

  // 5. The audit chains.
  const chains = await verifyAuditChains(d)
  for (const ch of chains.chains) if (!ch.ok) problem(`audit chain ${ch.store}/${ch.table} broken at ${ch.firstBad?.position}: ${ch.firstBad?.problem}`)
  for (const u of chains.unavailable) problem(`audit chain of ${u.store} could not be checked: ${u.code}`)

  return {
    tenants: tenants.length, rowsChecked, writesAcknowledged: [...model.rows.values()].filter((s) => inScenario.has(s.tenant)).reduce((a, s) => a + s.acked, 0),
    writesVerified, uncertainRows: model.uncertainCount(), sealedValues, dataKeys, crossTenantProbes, plaintextFound, auditRecords, problems,
  }
}

/** Fails with every problem the check found. */
export function assertInvariants(r: InvariantReport): void {
  assert.deepEqual(r.problems, [], `invariants violated (${r.problems.length}):\n${r.problems.join('\n')}`)
  assert.equal(r.writesVerified, r.writesAcknowledged, 'every acknowledged write verified')
}

/** Rows of any table in the store whose text form holds a marker (plain or hex): plaintext stored raw. */
async function scanForPlaintext(c: pg.Client, store: string, markers: readonly string[], problem: (p: string) => void): Promise<number> {
  const tables = await c.query<{ t: string }>("SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
  let found = 0
  for (const { t } of tables.rows) {
    for (const m of markers) {
      const r = await c.query<{ n: string }>(`SELECT count(*) AS n FROM ${ident(t)} x WHERE strpos(lower(x::text), $1) > 0 OR strpos(lower(x::text), $2) > 0`, [m.toLowerCase(), hexOf(m.toLowerCase())])
      const n = Number(r.rows[0]!.n)
      if (n > 0) problem(`${store}: ${n} row(s) of ${t} hold plaintext (marker ${JSON.stringify(m)}) unsealed`)
      found += n
    }
  }
  return found
}

/** The sensitive columns of one table: physical type, sealed header, key of the same tenant, blind index. */
async function checkSealedColumns(c: pg.Client, region: string, t: ResolvedTable, keyUse: Map<string, number>, problem: (p: string) => void): Promise<number> {
  const cols = await c.query<{ column_name: string; data_type: string }>("SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1", [t.name])
  const types = new Map(cols.rows.map((r) => [r.column_name, r.data_type]))
  let n = 0
  for (const col of t.sensitiveColumns) {
    const type = types.get(col.name)
    if (type !== 'bytea') {
      problem(`${region}: sensitive column ${t.name}.${col.name} is ${type ?? 'missing'}, not bytea (unsealed)`)
      continue
    }
    if (types.has(`${col.name}__shadow`)) problem(`${region}: ${t.name}.${col.name} still has a migration shadow column`)
    const c0 = ident(col.name)
    const r = await c.query<{ tenant_id: string; key_number: number | null; n: string; bad: string; no_key: string; no_index: string }>(`
      SELECT v.tenant_id, v.key_number, count(*) AS n,
             count(*) FILTER (WHERE v.bad) AS bad,
             count(*) FILTER (WHERE NOT v.bad AND k.key_number IS NULL) AS no_key,
             count(*) FILTER (WHERE v.no_index) AS no_index
      FROM (
        SELECT tenant_id,
               (octet_length(${c0}) < 34 OR get_byte(${c0}, 0) <> 1 OR get_byte(${c0}, 1) > 127
                 OR substring(${c0} from 2 for 4) = '\\x00000000'::bytea) AS bad,
               CASE WHEN octet_length(${c0}) >= 5 THEN ('x' || encode(substring(${c0} from 2 for 4), 'hex'))::bit(32)::int END AS key_number,
               ${col.indexColumn ? `${ident(col.indexColumn)} IS NULL` : 'false'} AS no_index
        FROM ${ident(t.name)} WHERE ${c0} IS NOT NULL
      ) v
      LEFT JOIN domicile_data_keys k ON k.tenant_id = v.tenant_id AND k.purpose = 'data' AND k.key_number = v.key_number
      GROUP BY v.tenant_id, v.key_number`)
    for (const row of r.rows) {
      n += Number(row.n)
      if (Number(row.bad) > 0) problem(`${region}: ${row.bad} value(s) of ${t.name}.${col.name} (tenant ${row.tenant_id}) are not sealed-field v1`)
      if (Number(row.no_key) > 0) problem(`${region}: ${row.no_key} value(s) of ${t.name}.${col.name} (tenant ${row.tenant_id}) name data key ${row.key_number}, not stored for that tenant here`)
      if (Number(row.no_index) > 0) problem(`${region}: ${row.no_index} value(s) of ${t.name}.${col.name} (tenant ${row.tenant_id}) have no blind index`)
      const k = `${region}/${row.tenant_id}/${row.key_number}`
      keyUse.set(k, (keyUse.get(k) ?? 0) + Number(row.n))
    }
  }
  return n
}

/** One tenant: its rows revealed equal the model; its scope sees nothing of another tenant. */
async function checkTenantThroughDomicile(d: Domicile, tenant: string, tables: readonly ResolvedTable[], byTenant: Map<string, RowState[]>, home: Map<string, string>, problem: (p: string) => void): Promise<{ rows: number; verified: number; probes: number }> {
  const states = byTenant.get(tenant) ?? []
  // Another tenant of the same region (the dangerous neighbour: same store, same pool) and one of its rows.
  const region = home.get(tenant)
  const neighbour = [...byTenant.keys()].find((u) => u !== tenant && home.get(u) === region)
  const mineIds = new Set(states.map((s) => `${s.table}/${s.id}`))
  const foreign = neighbour ? (byTenant.get(neighbour) ?? []).find((s) => !s.maybe && s.value !== null && !mineIds.has(`${s.table}/${s.id}`)) : undefined
  return d.withTenant(tenant, async (scope) => {
    let rows = 0
    let verified = 0
    let probes = 0
    for (const t of tables) {
      const expected = new Map(states.filter((s) => s.table === t.name).map((s) => [s.id, s]))
      const got = new Map<string, Record<string, unknown>>()
      let cursor: string | undefined
      do {
        const page = await scope.table(t.name).list({ limit: 1000, ...(cursor ? { cursor } : {}) })
        const open = await scope.revealRows(page.rows, { purpose: 'chaos: invariant check', actor: 'chaos-invariants' })
        for (const r of open) got.set(String(r[t.primaryKey]), r)
        cursor = page.nextCursor
      } while (cursor)
      for (const [id, s] of expected) {
        const r = got.get(id)
        const candidates = s.maybe ?? [s.value]
        const ok = candidates.some((v) => (v === null ? r === undefined : sameRow(v, r)))
        if (!ok) problem(`${t.name} ${tenant}/${id}: holds ${r === undefined ? 'nothing' : 'other content'} than what was acknowledged`)
        else verified += s.acked
      }
      rows += got.size
      // Raw SQL in the scope sees its own tenant only.
      const seen = await scope.sql<{ tenant_id: string }>(`SELECT DISTINCT tenant_id FROM ${ident(t.name)}`)
      if (seen.some((x) => x.tenant_id !== tenant)) problem(`scope of ${tenant} sees ${t.name} rows of ${seen.map((x) => x.tenant_id).join(', ')}`)
    }
    for (const internal of ['domicile_data_keys', 'domicile_audit']) {
      const seen = await scope.sql<{ tenant_id: string }>(`SELECT DISTINCT tenant_id FROM ${internal}`)
      if (seen.some((x) => x.tenant_id !== tenant)) problem(`scope of ${tenant} sees ${internal} of ${seen.map((x) => x.tenant_id).join(', ')}`)
    }
    if (foreign && neighbour) {
      probes++
      const t = foreign.table
      if (await scope.table(t).get(foreign.id)) problem(`scope of ${tenant} reads ${neighbour}'s ${t}/${foreign.id} by id`)
      const searchable = tables.find((x) => x.name === t)?.sensitiveColumns.find((col) => col.sensitive && col.sensitive.searchable)
      const value = searchable ? foreign.value![searchable.name] : undefined
      if (searchable && typeof value === 'string') {
        const found = await scope.table(t).find({ [searchable.name]: value })
        if (found.length > 0) problem(`scope of ${tenant} finds ${neighbour}'s ${t}/${foreign.id} by its searchable value`)
      }
      const raw = await scope.sql(`SELECT 1 FROM ${ident(t)} WHERE tenant_id = $1`, [neighbour])
      if (raw.length > 0) problem(`scope of ${tenant} selects ${neighbour}'s rows with raw SQL`)
    }
    return { rows, verified, probes }
  })
}
