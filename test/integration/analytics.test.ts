/**
 * Region-local analytics (issue #12, item 2) against three real PostgreSQL clusters, one per
 * region, each set up as the README's production setup (owner login + the data-plane login that
 * migrate creates); the control plane is a database on the first. Rows come from a seeded PRNG
 * and are kept in memory: every merged figure is compared with a brute-force computation in JS
 * over the same rows (per-region suppression of small groups, then merge). Covers uneven regions
 * (avg merged from sums and counts), suppression counted per region, every refusal (checked
 * against stores that cannot be reached, so nothing can have run), a stopped region (partial
 * result naming it), the CLI's --json shape, and the audit record (shape only, no values).
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { createDomicile, parseConfig, runAnalytics, type AnalyticsQuery, type Domicile, type DomicileErrorCode } from '../../src/index.js'
import { isDomicileError } from '../../src/errors.js'
import { postgresUnavailable, startPgCluster, twoRoleDatabases, freePort, type PgCluster } from '../support/pg-cluster.js'
import { runCli } from '../support/cli.js'
import { mulberry32 } from '../support/seeded-random.js'

const skip = postgresUnavailable()
const REGIONS = ['ap-south-1', 'eu-west-1', 'us-east-1'] as const
type Region = (typeof REGIONS)[number]

const SCHEMA = `export default {
  orders: {
    scope: 'tenant',
    primaryKey: 'id',
    columns: {
      id: { type: 'text' },
      status: { type: 'text' },
      country: { type: 'text' },
      paid: { type: 'boolean' },
      amount: { type: 'integer' },
      price: { type: 'numeric' },
      big: { type: 'bigint', nullable: true },
      placed_at: { type: 'timestamptz' },
      payload: { type: 'jsonb', nullable: true },
      email: { type: 'text', nullable: true, sensitive: { searchable: true, normalize: ['trim', 'lower'] } },
      note: { type: 'text', nullable: true, sensitive: true },
    },
  },
  plans: { scope: 'global', primaryKey: 'id', columns: { id: { type: 'text' }, price: { type: 'integer' } } },
}
`


interface OrderRow {
  id: string
  status: string
  country: string
  paid: boolean
  amount: number
  /** numeric, in cents (exact), stored as a decimal string */
  cents: bigint
  big: bigint | null
  placed_at: Date
  email: string
  note: string
}

const STATUSES = ['st_new', 'st_paid', 'st_shipped', 'st_void'] as const
const COUNTRIES = ['de', 'fr', 'us', 'jp', 'br', 'za'] as const

const centsText = (c: bigint): string => {
  const neg = c < 0n
  const a = (neg ? -c : c).toString().padStart(3, '0')
  return `${neg ? '-' : ''}${a.slice(0, -2)}.${a.slice(-2)}`
}

/** Tenants per region and rows per tenant: deliberately uneven. */
const PLAN: Record<Region, { tenants: number; rows: number }> = {
  'ap-south-1': { tenants: 2, rows: 18 },
  'eu-west-1': { tenants: 4, rows: 140 },
  'us-east-1': { tenants: 3, rows: 55 },
}

function generate(seed: number): Record<Region, Map<string, OrderRow[]>> {
  const rnd = mulberry32(seed)
  const pickSkewed = <T>(xs: readonly T[]): T => xs[Math.min(xs.length - 1, Math.floor(xs.length * rnd() ** 2))]!
  const out = {} as Record<Region, Map<string, OrderRow[]>>
  for (const region of REGIONS) {
    const tenants = new Map<string, OrderRow[]>()
    for (let t = 0; t < PLAN[region].tenants; t++) {
      const rows: OrderRow[] = []
      for (let i = 0; i < PLAN[region].rows; i++) {
        rows.push({
          id: `o${i}`,
          status: pickSkewed(STATUSES),
          country: pickSkewed(COUNTRIES),
          paid: rnd() < 0.6,
          amount: Math.floor(rnd() * 200_000) - 5_000,
          cents: BigInt(Math.floor(rnd() * 10_000_000)) - 100_000n,
          // Some nulls, some beyond 2^53 (exact merging is needed there).
          big: rnd() < 0.2 ? null : BigInt(Math.floor(rnd() * 2 ** 20)) * 2n ** 40n + BigInt(Math.floor(rnd() * 1000)),
          placed_at: new Date(Date.UTC(2024, 0, 1) + Math.floor(rnd() * 365 * 86_400_000)),
          email: `person${i}@tenant${t}.example`,
          note: `secret note ${i}`,
        })
      }
      tenants.set(`${region.slice(0, 2)}-t${t}`, rows)
    }
    out[region] = tenants
  }
  // A group kept in one region and suppressed in another: 3 rows of "is" in ap-south-1, 7 in us-east-1.
  const tagged = (region: Region, n: number): void => {
    const rows = [...out[region].values()][0]!
    for (let i = 0; i < n; i++) rows[i]!.country = 'is'
  }
  tagged('ap-south-1', 3)
  tagged('us-east-1', 7)
  return out
}

/** The brute force: per region, group, suppress small groups, then merge. */
function bruteForce(data: Record<Region, Map<string, OrderRow[]>>, regions: readonly Region[], q: {
  groupBy: ReadonlyArray<keyof OrderRow>
  filter?: (r: OrderRow) => boolean
  minGroupSize: number
}): { groups: Map<string, Record<string, unknown>>; suppressed: number } {
  type Acc = { values: unknown[]; count: number; amount: bigint; amountMin: number; amountMax: number; cents: bigint; big: bigint; bigN: number; at0: Date; at1: Date }
  const merged = new Map<string, Acc>()
  let suppressed = 0
  for (const region of regions) {
    const local = new Map<string, Acc>()
    for (const rows of data[region].values()) {
      for (const r of rows) {
        if (q.filter && !q.filter(r)) continue
        const values = q.groupBy.map((c) => r[c])
        const key = JSON.stringify(values)
        let a = local.get(key)
        if (!a) {
          a = { values, count: 0, amount: 0n, amountMin: Infinity, amountMax: -Infinity, cents: 0n, big: 0n, bigN: 0, at0: r.placed_at, at1: r.placed_at }
          local.set(key, a)
        }
        a.count++
        a.amount += BigInt(r.amount)
        a.amountMin = Math.min(a.amountMin, r.amount)
        a.amountMax = Math.max(a.amountMax, r.amount)
        a.cents += r.cents
        if (r.big !== null) {
          a.big += r.big
          a.bigN++
        }
        if (r.placed_at < a.at0) a.at0 = r.placed_at
        if (r.placed_at > a.at1) a.at1 = r.placed_at
      }
    }
    for (const [key, a] of local) {
      if (a.count < q.minGroupSize) {
        suppressed++
        continue
      }
      const m = merged.get(key)
      if (!m) {
        merged.set(key, { ...a })
        continue
      }
      m.count += a.count
      m.amount += a.amount
      m.amountMin = Math.min(m.amountMin, a.amountMin)
      m.amountMax = Math.max(m.amountMax, a.amountMax)
      m.cents += a.cents
      m.big += a.big
      m.bigN += a.bigN
      if (a.at0 < m.at0) m.at0 = a.at0
      if (a.at1 > m.at1) m.at1 = a.at1
    }
  }
  const iso = (d: Date): string => d.toISOString().replace('Z', '000Z')
  const groups = new Map<string, Record<string, unknown>>()
  for (const [key, a] of merged) {
    const g: Record<string, unknown> = {}
    q.groupBy.forEach((c, i) => { g[c] = a.values[i] })
    Object.assign(g, {
      count: a.count,
      sum_amount: Number(a.amount),
      avg_amount: Number(a.amount) / a.count,
      min_amount: a.amountMin,
      max_amount: a.amountMax,
      sum_price: Number(centsText(a.cents)),
      avg_price: Number(centsText(a.cents)) / a.count,
      sum_big: a.bigN === 0 ? null : Number(a.big),
      avg_big: a.bigN === 0 ? null : Number(a.big) / a.bigN,
      min_placed_at: iso(a.at0),
      max_placed_at: iso(a.at1),
    })
    groups.set(key, g)
  }
  return { groups, suppressed }
}

const ALL_MEASURES = ['count', 'sum:amount', 'avg:amount', 'min:amount', 'max:amount', 'sum:price', 'avg:price', 'sum:big', 'avg:big', 'min:placed_at', 'max:placed_at']

function assertMatches(actual: Awaited<ReturnType<typeof runAnalytics>>, expected: ReturnType<typeof bruteForce>, groupBy: readonly string[]): void {
  const byKey = new Map(actual.groups.map((g) => [JSON.stringify(groupBy.map((c) => g[c])), g]))
  assert.deepEqual([...byKey.keys()].sort(), [...expected.groups.keys()].sort(), 'the same groups')
  for (const [key, exp] of expected.groups) {
    const got = byKey.get(key)!
    for (const [k, v] of Object.entries(exp)) assert.equal(got[k], v, `group ${key}, ${k}`)
  }
  assert.equal(actual.suppressedGroups, expected.suppressed, 'suppressed groups')
}

describe('region-local analytics on three PostgreSQL regions', { skip }, () => {
  const clusters = {} as Record<Region, PgCluster>
  let dir = ''
  let configPath = ''
  let raw: Record<string, unknown> = {}
  let d: Domicile
  let controlUrl = ''
  const data = generate(20240612)

  before(async () => {
    const started = await Promise.all(REGIONS.map((r) => startPgCluster(`an-${r}`)))
    REGIONS.forEach((r, i) => { clusters[r] = started[i]! })
    const logins = await Promise.all(REGIONS.map((r, i) => twoRoleDatabases(clusters[r], i === 0 ? ['region', 'control'] : ['region'])))
    dir = mkdtempSync(join(tmpdir(), 'domicile-analytics-'))
    writeFileSync(join(dir, 'domicile.schema.mjs'), SCHEMA)
    raw = {
      regions: Object.fromEntries(REGIONS.map((r, i) => [r, { driver: 'postgres', url: logins[i]!.dataUrl('region'), ownerUrl: logins[i]!.ownerUrl('region'), connectTimeoutMs: 1500 }])),
      controlPlane: { driver: 'postgres', url: logins[0]!.dataUrl('control'), ownerUrl: logins[0]!.ownerUrl('control') },
      schema: './domicile.schema.mjs',
      keys: { dir: './keys' },
    }
    controlUrl = `postgres://postgres@127.0.0.1:${clusters[REGIONS[0]].port}/control`
    configPath = join(dir, 'domicile.config.json')
    writeFileSync(configPath, JSON.stringify(raw, null, 2))
    d = await createDomicile({ config: parseConfig(raw, dir) })
    const migrated = await d.migrate()
    assert.ok(migrated.every((m) => m.ok), JSON.stringify(migrated))
    for (const region of REGIONS) {
      for (const [tenant, rows] of data[region]) {
        const p = await d.keys.provision(tenant, { custody: 'kms' })
        await d.addTenant(tenant, { region, key: p.key, keyState: p.keyState })
        await d.withTenant(tenant, async (scope) => {
          const t = scope.table('orders')
          for (const r of rows) {
            await t.insert({ id: r.id, status: r.status, country: r.country, paid: r.paid, amount: r.amount, price: centsText(r.cents), big: r.big, placed_at: r.placed_at, email: r.email, note: r.note })
          }
        })
      }
    }
  })

  after(async () => {
    await d?.close()
    for (const c of Object.values(clusters)) c.destroy()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  test('merged figures equal a brute-force computation over the same rows (groups by two columns, every measure)', async () => {
    const q: AnalyticsQuery = { table: 'orders', groupBy: ['status', 'country'], measures: ALL_MEASURES }
    const r = await runAnalytics(d, q)
    assert.deepEqual(r.contributed.sort(), [...REGIONS].sort())
    assert.deepEqual(r.unavailable, [])
    const expected = bruteForce(data, REGIONS, { groupBy: ['status', 'country'], minGroupSize: 5 })
    assert.ok(expected.suppressed > 0, 'the data has small groups (the test can fail on suppression)')
    assertMatches(r, expected, ['status', 'country'])
  })

  test('filters (equality, inequality, ranges) run as parameters and match the brute force', async () => {
    const r = await runAnalytics(d, {
      table: 'orders', groupBy: ['country'], measures: ALL_MEASURES, minGroupSize: 3,
      where: { paid: true, status: { ne: 'st_void' }, amount: { gte: 1000, lt: 150_000 }, placed_at: { gte: '2024-03-01T00:00:00Z' } },
    })
    const expected = bruteForce(data, REGIONS, {
      groupBy: ['country'], minGroupSize: 3,
      filter: (x) => x.paid && x.status !== 'st_void' && x.amount >= 1000 && x.amount < 150_000 && x.placed_at >= new Date('2024-03-01T00:00:00Z'),
    })
    assertMatches(r, expected, ['country'])
  })

  test('a filter value is a parameter, never SQL', async () => {
    const r = await runAnalytics(d, { table: 'orders', measures: ['count'], minGroupSize: 2, where: { status: "x'; DROP TABLE orders; --" } })
    assert.deepEqual(r.groups, [])
    const again = await runAnalytics(d, { table: 'orders', measures: ['count'] })
    assert.equal(again.groups[0]!.count, REGIONS.reduce((n, reg) => n + PLAN[reg].tenants * PLAN[reg].rows, 0))
  })

  test('avg is merged from sums and counts over uneven regions, not averaged averages', async () => {
    const r = await runAnalytics(d, { table: 'orders', groupBy: ['paid'], measures: ['count', 'avg:amount', 'sum:amount'] })
    const expected = bruteForce(data, REGIONS, { groupBy: ['paid'], minGroupSize: 5 })
    assertMatches({ ...r, groups: r.groups.map((g) => ({ ...g })) }, { ...expected, groups: new Map([...expected.groups].map(([k, g]) => [k, { paid: g.paid, count: g.count, avg_amount: g.avg_amount, sum_amount: g.sum_amount }])) }, ['paid'])
    // The average of the regions' averages differs (regions hold 36, 560 and 165 rows).
    for (const g of r.groups) {
      const perRegion = REGIONS.map((reg) => bruteForce(data, [reg], { groupBy: ['paid'], minGroupSize: 5 }).groups.get(JSON.stringify([g.paid]))!)
      const naive = perRegion.reduce((s, x) => s + (x.avg_amount as number), 0) / perRegion.length
      assert.notEqual(g.avg_amount, naive)
    }
  })

  test('without group-by: one group over all rows of every region', async () => {
    const r = await runAnalytics(d, { table: 'orders', measures: ALL_MEASURES })
    assertMatches(r, bruteForce(data, REGIONS, { groupBy: [], minGroupSize: 5 }), [])
    assert.equal(r.groups.length, 1)
  })

  test('small groups are suppressed in each region before leaving it, and counted', async () => {
    const r = await runAnalytics(d, { table: 'orders', groupBy: ['country'], measures: ['count'], where: { country: 'is' } })
    // 3 rows in ap-south-1 (suppressed there), 7 in us-east-1 (kept): the merged group counts only us-east-1.
    assert.deepEqual(r.groups, [{ country: 'is', count: 7 }])
    assert.equal(r.suppressedGroups, 1)
    const r8 = await runAnalytics(d, { table: 'orders', groupBy: ['country'], measures: ['count'], where: { country: 'is' }, minGroupSize: 8 })
    assert.deepEqual(r8.groups, [])
    assert.equal(r8.suppressedGroups, 2)
    const r3 = await runAnalytics(d, { table: 'orders', groupBy: ['country'], measures: ['count'], where: { country: 'is' }, minGroupSize: 3 })
    assert.deepEqual(r3.groups, [{ country: 'is', count: 10 }])
    assert.equal(r3.suppressedGroups, 0)
  })

  test('the CLI prints exactly { groups, contributed, unavailable, suppressedGroups } with --json', async () => {
    const cli = await runCli(['analytics', '--config', configPath, '--table', 'orders', '--group-by', 'status', '--measure', 'count', '--measure', 'sum:amount,avg:price', '--where', 'amount>=0', '--json'], { cwd: dir })
    assert.equal(cli.code, 0, cli.stderr)
    const out = JSON.parse(cli.stdout) as Record<string, unknown>
    assert.deepEqual(Object.keys(out).sort(), ['contributed', 'groups', 'suppressedGroups', 'unavailable'])
    const lib = await runAnalytics(d, { table: 'orders', groupBy: ['status'], measures: ['count', 'sum:amount', 'avg:price'], where: { amount: { gte: 0 } } })
    assert.deepEqual(out.groups, lib.groups)
    assert.deepEqual((out.contributed as string[]).sort(), [...REGIONS].sort())
    const human = await runCli(['analytics', '--config', configPath, '--table', 'orders', '--group-by', 'status', '--measure', 'count'], { cwd: dir })
    assert.equal(human.code, 0, human.stderr)
    assert.match(human.stdout, /^STATUS\s+COUNT/m)
    const refused = await runCli(['analytics', '--config', configPath, '--table', 'orders', '--group-by', 'email', '--measure', 'count', '--json'], { cwd: dir })
    assert.equal(refused.code, 2)
    assert.equal((JSON.parse(refused.stdout) as { error: { code: string } }).error.code, 'ERR_QUERY_UNSUPPORTED')
  })

  test('each analytics query leaves an audit record with its shape and regions, and no data values', async () => {
    const before = Date.now()
    const r = await runAnalytics(d, { table: 'orders', groupBy: ['status'], measures: ['count', 'sum:amount', 'max:placed_at'], where: { country: 'jp', amount: { gt: 4321 } }, actor: 'analyst-7' })
    assert.ok(r.groups.length > 0)
    const c = new pg.Client({ connectionString: controlUrl })
    await c.connect()
    try {
      const rows = (await c.query<{ outcome: string; actor: string; detail: Record<string, unknown>; at: Date }>(
        `SELECT outcome, actor, detail, at FROM domicile_control_audit WHERE type = 'analytics.query' ORDER BY id DESC LIMIT 1`)).rows
      const rec = rows[0]!
      assert.ok(rec.at.getTime() >= before - 5000)
      assert.equal(rec.outcome, 'ok')
      assert.equal(rec.actor, 'analyst-7')
      assert.equal(rec.detail.table, 'orders')
      assert.equal(rec.detail.groupBy, 'status')
      assert.equal(rec.detail.measures, 'count,sum:amount,max:placed_at')
      assert.equal(rec.detail.filters, 'country =,amount >')
      assert.deepEqual(String(rec.detail.contributed).split(',').sort(), [...REGIONS].sort())
      const text = JSON.stringify(rec.detail)
      for (const value of ['jp', '4321', ...r.groups.flatMap((g) => [String(g.status), String(g.sum_amount), String(g.max_placed_at), `:${g.count},`])]) {
        assert.ok(!text.includes(value), `the audit record holds no data or filter value (${value})`)
      }
      // A refused query is recorded as denied, with its code.
      await assert.rejects(runAnalytics(d, { table: 'orders', groupBy: ['note'], measures: ['count'] }))
      const denied = (await c.query<{ outcome: string; detail: Record<string, unknown> }>(
        `SELECT outcome, detail FROM domicile_control_audit WHERE type = 'analytics.query' ORDER BY id DESC LIMIT 1`)).rows[0]!
      assert.equal(denied.outcome, 'denied')
      assert.equal(denied.detail.code, 'ERR_QUERY_UNSUPPORTED')
    } finally {
      await c.end()
    }
  })

  test('refusals are typed and happen before any SQL (the regions here cannot be reached)', async () => {
    const dead = await freePort()
    const deadRaw = {
      ...raw,
      regions: Object.fromEntries(REGIONS.map((r) => [r, { driver: 'postgres', url: `postgres://nobody@127.0.0.1:${dead}/none`, connectTimeoutMs: 500 }])),
    }
    const offline = await createDomicile({ config: parseConfig(deadRaw, dir) })
    const cases: Array<[string, AnalyticsQuery, DomicileErrorCode]> = [
      ['unknown table', { table: 'nope', measures: ['count'] }, 'ERR_TABLE_UNKNOWN'],
      ['global table', { table: 'plans', measures: ['count'] }, 'ERR_QUERY_UNSUPPORTED'],
      ['unknown column', { table: 'orders', groupBy: ['nope'], measures: ['count'] }, 'ERR_COLUMN_UNKNOWN'],
      ['raw-row selection', { table: 'orders', measures: ['count'], select: ['id', 'status'] } as unknown as AnalyticsQuery, 'ERR_QUERY_UNSUPPORTED'],
      ['group by a sensitive column', { table: 'orders', groupBy: ['email'], measures: ['count'] }, 'ERR_QUERY_UNSUPPORTED'],
      ['group by a blind index column', { table: 'orders', groupBy: ['email__bidx'], measures: ['count'] }, 'ERR_QUERY_UNSUPPORTED'],
      ['group by tenant_id', { table: 'orders', groupBy: ['tenant_id'], measures: ['count'] }, 'ERR_QUERY_UNSUPPORTED'],
      ['filter on tenant_id', { table: 'orders', measures: ['count'], where: { tenant_id: 'eu-t0' } }, 'ERR_QUERY_UNSUPPORTED'],
      ['group by the primary key', { table: 'orders', groupBy: ['id'], measures: ['count'] }, 'ERR_QUERY_UNSUPPORTED'],
      ['aggregate a sensitive column', { table: 'orders', measures: ['max:note'] }, 'ERR_QUERY_UNSUPPORTED'],
      ['sum of a text column', { table: 'orders', measures: ['sum:status'] }, 'ERR_QUERY_UNSUPPORTED'],
      ['min of a text column (one row\'s value)', { table: 'orders', measures: ['min:country'] }, 'ERR_QUERY_UNSUPPORTED'],
      ['group by jsonb', { table: 'orders', groupBy: ['payload'], measures: ['count'] }, 'ERR_QUERY_UNSUPPORTED'],
      ['filter on a sensitive column', { table: 'orders', measures: ['count'], where: { email: 'person1@tenant0.example' } }, 'ERR_QUERY_UNSUPPORTED'],
      ['filter on a blind index', { table: 'orders', measures: ['count'], where: { email__bidx: 'x' } }, 'ERR_QUERY_UNSUPPORTED'],
      ['range filter on text', { table: 'orders', measures: ['count'], where: { status: { gt: 'a' } } }, 'ERR_QUERY_UNSUPPORTED'],
      ['no measure', { table: 'orders', groupBy: ['status'], measures: [] }, 'ERR_INPUT_INVALID'],
      ['unknown measure', { table: 'orders', measures: ['median:amount'] }, 'ERR_INPUT_INVALID'],
      ['filter value of the wrong type', { table: 'orders', measures: ['count'], where: { amount: 'lots' } }, 'ERR_INPUT_INVALID'],
      ['group size of one', { table: 'orders', measures: ['count'], minGroupSize: 1 }, 'ERR_INPUT_INVALID'],
    ]
    try {
      for (const [name, q, code] of cases) {
        await assert.rejects(runAnalytics(offline, q), (e: unknown) => {
          assert.ok(isDomicileError(e), `${name}: a DomicileError`)
          assert.equal(e.code, code, `${name}: ${e.message}`)
          assert.ok(!e.message.includes('person1@tenant0.example') && !e.message.includes('eu-t0'), `${name}: no value in the message`)
          return true
        }, name)
      }
      // The same valid query against these stores is a partial result naming every region, not an error.
      const r = await runAnalytics(offline, { table: 'orders', measures: ['count'] })
      assert.deepEqual(r, { groups: [], contributed: [], unavailable: [...REGIONS], suppressedGroups: 0 })
    } finally {
      await offline.close()
    }
  })

  test('a stopped region: listed in unavailable, figures equal the brute force over the other regions', async () => {
    clusters['us-east-1'].stop()
    const up: Region[] = ['ap-south-1', 'eu-west-1']
    const r = await runAnalytics(d, { table: 'orders', groupBy: ['status', 'country'], measures: ALL_MEASURES })
    assert.deepEqual(r.unavailable, ['us-east-1'])
    assert.deepEqual(r.contributed.sort(), up)
    assertMatches(r, bruteForce(data, up, { groupBy: ['status', 'country'], minGroupSize: 5 }), ['status', 'country'])
    const cli = await runCli(['analytics', '--config', configPath, '--table', 'orders', '--group-by', 'paid', '--measure', 'count', '--json'], { cwd: dir })
    assert.equal(cli.code, 0, cli.stderr)
    assert.deepEqual((JSON.parse(cli.stdout) as { unavailable: string[] }).unavailable, ['us-east-1'])
    assert.match(cli.stderr, /partial result.*us-east-1/)
  })
})
