/**
 * Chaos, issue #14 item 5: bad input. Each case must end in a typed error (a DomicileError with a
 * stable code) and leave nothing written: every table Domicile writes (tenant rows, data keys,
 * audit, the directory, its change log, the control audit) is fingerprinted by reading the stores
 * directly as the superuser before and after, on real PostgreSQL (one cluster: two region
 * databases and the control plane, the README's two-role setup, test/support/chaos-env.ts).
 *
 * Inputs: hostile tenant ids and region names (SQL meta-characters, path traversal, very long,
 * Cyrillic and full-width lookalikes, invisible characters; hand-picked and generated), rows with
 * wrong types, oversized values, malformed config files (parseConfig, and the CLI exiting 2),
 * stored ciphertext tampered with raw SQL and read back through Domicile (fuzzed: opaque
 * ERR_DECRYPTION_FAILED or the original value, never anything else), malformed and oversized XKS
 * answers (through the fault proxy), and edited residency reports and shred certificates.
 * Every error seen goes through the leak capture (test/support/chaos-leaks.ts).
 *
 * Budget: about 25 s wall (one initdb, a few CLI runs). Seeded (fast-check and the chaos rng); the
 * seed is printed, replay with DOMICILE_CHAOS_SEED.
 */
import { after, before, describe, test } from 'node:test'
import { strict as assert } from 'node:assert'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { DecryptionFailedError, isDomicileError, type DomicileErrorCode } from '../../src/errors.js'
import { parseConfig, type Domicile } from '../../src/index.js'
import { REGION_NAME } from '../../src/config/load-config.js'
import { exampleConfig } from '../../src/cli/templates.js'
import { TENANT_ID } from '../../src/control-plane/tenant-directory.js'
import { generateReport, reportSigningKey } from '../../src/report/report-output.js'
import { verifyReportFile } from '../../src/report/report-signature.js'
import { issueShredCertificate } from '../../src/ops/shred-verify.js'
import { checkShredCertificate } from '../../src/ops/shred-certificate.js'
import { RuntimeKeyProvider } from '../../src/keys/runtime-key-provider.js'
import { CircuitBreaker } from '../../src/keys/circuit-breaker.js'
import { createXksKeyProvider } from '../../src/keys/providers/xks/xks-key-provider.js'
import { postgresUnavailable } from '../support/pg-cluster.js'
import { startChaosEnv, type ChaosEnv } from '../support/chaos-env.js'
import { chaosRng } from '../support/chaos-rng.js'
import { recordFigures } from '../support/chaos-figures.js'
import { startLeakCapture } from '../support/chaos-leaks.js'
import { runCli } from '../support/cli.js'
import { EXAMPLE_SCHEMA } from '../../src/cli/templates.js'
import { startFaultProxy } from './key-faults-proxy.js'

const skip = postgresUnavailable() ?? false
const rng = chaosRng('bad-input')
const fcSeed = rng.int(1, 2 ** 31 - 2)
const EU = 'eu-west-1'
const US = 'us-east-1'
const leaks = startLeakCapture('bad-input')
const figures = { cases: 0, typedErrors: 0, fuzzRuns: 0, acknowledged: 0, verified: 0 }

/** Hostile tenant ids, region names and the like, picked by hand. */
const HOSTILE = [
  "acme'; DROP TABLE customers; --", 'acme" OR "1"="1', "acme') OR ('1'='1", 'acme;SELECT pg_sleep(10)', 'acme--', 'acme/*',
  '../acme', '..\\acme', 'acme/../../etc/passwd', '/etc/passwd', 'acme%2f..%2f', 'acme\u0000', 'ac\u0000me', 'acme\n', 'ac\r\nme',
  'x'.repeat(64), 'x'.repeat(10_000), '',  ' ', ' acme', 'acme ', 'ACME', 'Acme', '-acme', 'acme-', 'acme_1', 'acme.eu',
  '\u0430cme' /* Cyrillic а */, 'acm\u0435' /* Cyrillic е */, '\uff41cme' /* full-width a */, 'ac\u200bme' /* zero-width space */,
  'acme\u202e', 'ac\u00adme' /* soft hyphen */, '\u{1d41a}cme' /* math bold a */, 'ac\u0301me', '${acme}', '$(id)', '`id`', '%s%s%n',
  '{"$ne":null}', 'acme\\', 'a'.repeat(63) + '\u0430',
]
const HOSTILE_REGIONS = [
  'eu-w\u0435st-1' /* Cyrillic е */, 'eu-west-1\u200b', 'EU-WEST-1', 'eu-west-1 ', ' eu-west-1', 'eu-west-1\n', "eu-west-1'; --",
  '../eu-west-1', 'eu-west-1/../us-east-1', 'eu-west-1\u0000', 'eu-west-1,us-east-1', '*', '%', '', 'x'.repeat(5000), 'eu_west_1',
  '\uff45u-west-1', '__proto__', 'constructor', 'toString', 'hasOwnProperty',
]

/** Every table Domicile writes, fingerprinted (content hash and count), region by region and in the control plane. */
async function fingerprint(env: ChaosEnv): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  const tables: Record<string, string[]> = {
    [EU]: ['customers', 'domicile_data_keys', 'domicile_audit'],
    [US]: ['customers', 'domicile_data_keys', 'domicile_audit'],
    control: ['domicile_tenants', 'domicile_directory_log', 'domicile_control_audit', 'domicile_key_services', 'domicile_operations'],
  }
  for (const [where, list] of Object.entries(tables)) {
    await env.withDirect(where, async (c) => {
      for (const t of list) {
        const r = await c.query(`SELECT count(*)::int AS n, coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '') AS h FROM ${t} x`)
        out[`${where}.${t}`] = `${r.rows[0].n}:${r.rows[0].h}`
      }
    })
  }
  // The local keystore (provider-managed keys live there as files).
  out.keystore = (await readdir(join(env.dir, 'keys')).catch(() => [] as string[])).sort().join(',')
  return out
}

/** Runs `f`, which must fail with a DomicileError (of one of `codes` when given); returns the code. */
async function typedFailure(what: string, f: () => Promise<unknown> | unknown, codes?: readonly DomicileErrorCode[]): Promise<DomicileErrorCode> {
  let caught: unknown
  try {
    await f()
  } catch (e) {
    caught = e
  }
  assert.ok(caught !== undefined, `${what}: expected a typed error, but it succeeded`)
  leaks.error(what, caught)
  assert.ok(isDomicileError(caught), `${what}: expected a DomicileError, got ${String(caught)}`)
  if (codes) assert.ok(codes.includes(caught.code), `${what}: ${caught.code} (${caught.message}) is not one of ${codes.join(', ')}`)
  figures.typedErrors++
  return caught.code
}

const show = (s: string): string => JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}…(${s.length})` : s)

describe('chaos: bad input gets a typed error and writes nothing', { skip }, () => {
  let env: ChaosEnv
  let d: Domicile
  let work: string

  async function addTenant(id: string, region: string, cacheTtlMs?: number): Promise<void> {
    const p = await d.keys.provision(id, { custody: 'kms' })
    await d.addTenant(id, { region, key: p.key, keyState: p.keyState, ...(cacheTtlMs === undefined ? {} : { cacheTtlMs }) })
  }

  /** Asserts that `f` (a batch of bad inputs) left every store exactly as it was. */
  async function writesNothing(what: string, f: () => Promise<void>, ignore: readonly string[] = []): Promise<void> {
    const drop = (fp: Record<string, string>) => Object.fromEntries(Object.entries(fp).filter(([k]) => !ignore.includes(k)))
    const before = drop(await fingerprint(env))
    await f()
    assert.deepEqual(drop(await fingerprint(env)), before, `${what}: something was written`)
  }

  before(async () => {
    console.log(`# bad-input fast-check seed: ${fcSeed}`)
    env = await startChaosEnv({ name: 'bad-input', clusters: 1, regions: { [EU]: 0, [US]: 0 }, schemaSource: EXAMPLE_SCHEMA })
    d = await env.open()
    work = await mkdtemp(join(tmpdir(), 'domicile-chaos-bad-input-'))
    await addTenant('acme', EU)
    await addTenant('globex', US)
    await addTenant('fresh', EU)
    await addTenant('nocache', EU, 0)
    await d.withTenant('acme', (s) => s.table('customers').insert({ id: 'c1', name: 'Ada', email: 'ada-c1-canary@acme.example', tax_id: 'TAX-acme-c1-canary' }))
    await d.withTenant('nocache', (s) => s.table('customers').insert({ id: 'n1', name: 'Nia', email: 'nia-n1-canary@nocache.example', tax_id: 'TAX-nocache-n1-canary' }))
    await d.withTenant('globex', (s) => s.table('customers').insert({ id: 'g1', name: 'Gus', email: 'gus-g1-canary@globex.example', tax_id: 'TAX-globex-g1-canary' }))
    for (const p of ['ada-c1-canary@acme.example', 'TAX-acme-c1-canary', 'nia-n1-canary@nocache.example', 'TAX-nocache-n1-canary', 'gus-g1-canary@globex.example', 'TAX-globex-g1-canary']) leaks.plaintext(p)
    figures.acknowledged += 3
  })

  after(async () => {
    try {
      // The final state: every acknowledged row (the three canaries) read back and opened exactly.
      for (const [tenant, id, tax] of [['acme', 'c1', 'TAX-acme-c1-canary'], ['nocache', 'n1', 'TAX-nocache-n1-canary'], ['globex', 'g1', 'TAX-globex-g1-canary']] as const) {
        const back = await d.withTenant(tenant, async (s) => s.reveal<string>((await s.table('customers').get(id))!.tax_id, { purpose: 'chaos: final check' })).catch(() => undefined)
        if (back === tax) figures.verified++
      }
      leaks.stop()
      const found = leaks.findings()
      recordFigures({
        scenario: 'bad-input', title: 'Bad input: hostile ids and regions, wrong types, oversized values, malformed config, tampered ciphertext, malformed XKS answers, edited signed files',
        faultsInjected: figures.cases, writesAcknowledged: figures.acknowledged, writesVerified: figures.verified, leaksFound: found.length,
        extra: { seed: rng.seed, fastCheckSeed: fcSeed, typedErrors: figures.typedErrors, fuzzRuns: figures.fuzzRuns },
      })
      assert.deepEqual(found, [], 'no plaintext or key bytes in any error or output')
    } finally {
      await d?.close()
      await env?.destroy()
      if (work) await rm(work, { recursive: true, force: true })
    }
  })

  test('hostile tenant ids: ERR_TENANT_INVALID from every entry point, nothing written', async () => {
    const entry = (id: string) => [
      () => d.withTenant(id, (s) => s.table('customers').insert({ id: 'x1', name: 'x' })),
      () => d.tenant(id).table('customers').insert({ id: 'x1', name: 'x' }),
      () => d.tenant(id).table('customers').get('c1'),
      () => d.addTenant(id, { region: EU }),
      () => d.keys.revoke(id),
      () => d.getTenant(id),
    ]
    await writesNothing('hostile tenant ids', async () => {
      for (const id of HOSTILE) {
        for (const f of entry(id)) await typedFailure(`tenant id ${show(id)}`, f, ['ERR_TENANT_INVALID'])
        figures.cases++
      }
      await fc.assert(fc.asyncProperty(
        fc.oneof(fc.string({ unit: 'binary', maxLength: 80 }), fc.string({ unit: 'grapheme', maxLength: 70 }), fc.string({ unit: 'binary-ascii', maxLength: 70 })).filter((s) => !TENANT_ID.test(s)),
        async (id) => {
          figures.fuzzRuns++
          for (const f of entry(id)) await typedFailure(`generated tenant id ${show(id)}`, f, ['ERR_TENANT_INVALID'])
        }), { seed: fcSeed, numRuns: 80 })
    })
    // The real tenant is still served, and its row is where it was.
    assert.equal((await d.tenant('acme').table('customers').get('c1'))?.name, 'Ada')
  })

  test('hostile tenant ids: keys.provision refuses them before a key is created', async () => {
    await writesNothing('provision with hostile tenant ids', async () => {
      for (const id of HOSTILE) await typedFailure(`provision ${show(id)}`, () => d.keys.provision(id, { custody: 'kms' }), ['ERR_TENANT_INVALID'])
    })
  })

  test('hostile region names: ERR_REGION_UNKNOWN when adding a tenant, ERR_CONFIG_INVALID in a config; nothing written', async () => {
    await writesNothing('hostile regions', async () => {
      for (const region of HOSTILE_REGIONS) {
        await typedFailure(`region ${show(region)}`, () => d.addTenant('newco', { region }), ['ERR_REGION_UNKNOWN', 'ERR_INPUT_INVALID'])
        figures.cases++
        // In a config file, a name that is not a region name is refused ("constructor" and the like are names, checked above).
        if (REGION_NAME.test(region)) continue
        const raw = exampleConfig() as { regions: Record<string, unknown> }
        raw.regions = { [region]: { driver: 'pglite', dataDir: 'memory://' } }
        await typedFailure(`config region ${show(region)}`, () => parseConfig(raw, work), ['ERR_CONFIG_INVALID'])
      }
    })
    await typedFailure('getTenant newco', () => d.getTenant('newco'), ['ERR_TENANT_UNKNOWN'])
  })

  test('rows with wrong types or unknown columns: ERR_INPUT_INVALID / ERR_COLUMN_UNKNOWN, nothing written (not even a first data key)', async () => {
    const nonString = fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.constant([]), fc.array(fc.string(), { minLength: 1, maxLength: 3 }), fc.object({ maxDepth: 1 }), fc.date())
    const badRow = fc.oneof(
      fc.record({ id: fc.oneof(fc.constant(''), fc.double({ noInteger: true }), fc.boolean(), fc.object({ maxDepth: 1 }), fc.constant(null), fc.constant(undefined)), name: fc.constant('n') }),
      fc.record({ id: fc.constant('w1'), name: fc.oneof(fc.constant(null), fc.constant(undefined), fc.object({ maxDepth: 1 }), fc.array(fc.integer(), { maxLength: 2 })) }),
      fc.record({ id: fc.constant('w2'), name: fc.constant('n'), email: nonString.filter((v) => typeof v !== 'string') }),
      fc.record({ id: fc.constant('w3'), name: fc.constant('n'), tax_id: nonString.filter((v) => typeof v !== 'string') }),
      fc.record({ id: fc.constant('w4'), name: fc.constant('n'), plan: fc.oneof(fc.object({ maxDepth: 1 }), fc.array(fc.string(), { maxLength: 2 })) }),
      fc.record({ id: fc.constant('w5'), name: fc.constant('n'), [`x_${'bogus'}`]: fc.string() }),
      fc.record({ id: fc.constant('w6'), name: fc.constant('n'), email: fc.constant('w6-canary-email@fresh.example'), 'email; DROP TABLE customers': fc.string() }),
    )
    leaks.plaintext('w6-canary-email@fresh.example')
    leaks.plaintext('f1-canary-mail@fresh.example')
    leaks.plaintext('f2-canary-mail@fresh.example')
    await writesNothing('wrong types', async () => {
      await fc.assert(fc.asyncProperty(badRow, fc.constantFrom('fresh', 'acme'), async (row, tenant) => {
        figures.fuzzRuns++
        figures.cases++
        await typedFailure(`insert ${JSON.stringify(row)?.slice(0, 60)}`, () => d.withTenant(tenant, (s) => s.table('customers').insert(row as never)), ['ERR_INPUT_INVALID', 'ERR_COLUMN_UNKNOWN'])
        await typedFailure(`one-shot insert ${JSON.stringify(row)?.slice(0, 60)}`, () => d.tenant(tenant).table('customers').insert(row as never), ['ERR_INPUT_INVALID', 'ERR_COLUMN_UNKNOWN'])
        const patch = Object.fromEntries(Object.entries(row as Record<string, unknown>).filter(([k, v]) => k !== 'id' && v !== undefined && !(k === 'name' && v === 'n')))
        if (Object.keys(patch).length > 0) {
          await typedFailure(`update ${JSON.stringify(patch)?.slice(0, 60)}`, () => d.tenant('acme').table('customers').update('c1', patch as never), ['ERR_INPUT_INVALID', 'ERR_COLUMN_UNKNOWN'])
        }
      }), { seed: fcSeed, numRuns: 60 })
      for (const [what, where] of [['a predicate on a sealed column other than equality', { email: { $gt: 'a' } }], ['an unknown column', { nope: 1 }], ['a wrong-typed sealed value', { tax_id: 42 }]] as const) {
        await typedFailure(`find: ${what}`, () => d.tenant('acme').table('customers').find(where as never), ['ERR_INPUT_INVALID', 'ERR_COLUMN_UNKNOWN', 'ERR_QUERY_UNSUPPORTED'])
      }
    }, [`${EU}.domicile_audit`]) // audit: see the next test
  })

  test('a refused row costs no key-provider call and leaves no audit record (a fresh tenant\'s first data key is not even wrapped)', async () => {
    await addTenant('fresh2', EU)
    await writesNothing('refused rows of a fresh tenant', async () => {
      for (const row of [{ id: 'f1', name: 'n', email: 'f1-canary-mail@fresh.example', bogus: 1 }, { id: 'f2', name: 'n', email: 'f2-canary-mail@fresh.example', plan: { a: 1 } }]) {
        await typedFailure(`insert ${row.id}`, () => d.withTenant('fresh2', (s) => s.table('customers').insert(row as never)), ['ERR_INPUT_INVALID', 'ERR_COLUMN_UNKNOWN'])
      }
    })
  })

  test('oversized values: a typed error and nothing written, or stored and read back exactly', async (t) => {
    const noise = (n: number) => randomBytes(n).toString('base64').slice(0, n) // incompressible text
    const cases: Array<[string, Record<string, unknown>]> = [
      ['64 KiB primary key (btree limit)', { id: noise(64 * 1024), name: 'n' }],
      ['64 KiB indexed column', { id: 'o2', name: 'n', plan: noise(64 * 1024) }],
      ['2 KiB primary key with a sealed field (the key is in the AAD)', { id: noise(2048), name: 'n', tax_id: 'o3-canary-tax-oversized' }],
      ['1 MiB sealed value', { id: 'o4', name: 'n', email: `${noise(1024 * 1024)}@big.example` }],
      ['4 MiB plain value', { id: 'o5', name: noise(4 * 1024 * 1024) }],
      ['NUL in a text value', { id: 'o6', name: 'a\u0000b' }],
      ['lone surrogate in a sealed value', { id: 'o7', name: 'n', email: 'x\ud800@y.example' }],
    ]
    leaks.plaintext('o3-canary-tax-oversized')
    for (const [what, row] of cases) {
      figures.cases++
      const before = await fingerprint(env)
      let ok = false
      try {
        await d.withTenant('acme', (s) => s.table('customers').insert(row as never))
        ok = true
      } catch (e) {
        leaks.error(what, e)
        assert.ok(isDomicileError(e), `${what}: a DomicileError, got ${String(e)}`)
        assert.ok(['ERR_INPUT_INVALID', 'ERR_QUERY_FAILED', 'ERR_PAYLOAD_TOO_LARGE'].includes(e.code), `${what}: ${e.code} ${e.message}`)
        t.diagnostic(`${what}: refused, ${e.code}`)
        figures.typedErrors++
        assert.deepEqual(await fingerprint(env), before, `${what}: something was written`)
      }
      if (ok) {
        figures.acknowledged++
        const back = await d.withTenant('acme', async (s) => {
          const r = await s.table('customers').get(row.id as string)
          assert.ok(r, `${what}: stored`)
          return { name: r.name, email: r.email === null ? null : await s.reveal(r.email, { purpose: 'chaos' }), tax_id: r.tax_id === null ? null : await s.reveal(r.tax_id, { purpose: 'chaos' }) }
        })
        assert.equal(back.name, row.name, `${what}: name read back`)
        assert.equal(back.email, row.email ?? null, `${what}: email read back`)
        assert.equal(back.tax_id, row.tax_id ?? null, `${what}: tax_id read back`)
        figures.verified++
        t.diagnostic(`${what}: stored and read back exactly`)
        await d.tenant('acme').table('customers').delete(row.id as string)
        figures.acknowledged-- // cleaned up again: not part of the final state
        figures.verified--
      }
    }
  })

  test('malformed config files: parseConfig throws ERR_CONFIG_INVALID (never another error); the CLI exits 2 with the code', async () => {
    const valid = () => exampleConfig() as Record<string, unknown>
    const corpus: unknown[] = [
      null, 42, 'config', [], {}, { regions: {} }, { regions: [] }, { ...valid(), regions: { 'eu-west-1': { driver: 'mysql' } } },
      { ...valid(), regions: { 'eu-west-1': { driver: 'postgres', url: 'mysql://x' } } },
      { ...valid(), regions: { 'eu-west-1': { driver: 'postgres', url: 'postgres://x', urlEnv: 'X' } } },
      { ...valid(), regions: { 'eu-west-1': { driver: 'postgres', url: 'postgres://x', poolSize: 1e309 } } },
      { ...valid(), regions: { 'eu-west-1': { driver: 'postgres', url: 'postgres://x', connectTimeoutMs: '100' } } },
      { ...valid(), keys: { cacheTtlMs: { hyok: -1 } } }, { ...valid(), keys: { cacheTtlMs: { hyok: 1.5 } } },
      { ...valid(), keys: { maxEncryptionsPerKey: 2 ** 33 } }, { ...valid(), keys: { providers: { 'Bad Name': { kind: 'local' } } } },
      { ...valid(), keys: { providers: { x: { kind: 'xks', endpoint: 'http://127.0.0.1:1', credentialsFile: 'c.json' } } } },
      { ...valid(), keys: { providers: { x: { kind: 'pkcs11' } } } }, { ...valid(), keys: { defaults: { hyok: 'nope' } } },
      { ...valid(), directoryPollMs: 0 }, { ...valid(), schema: 42 }, { ...valid(), unknownSetting: true },
      { ...valid(), controlPlane: { driver: 'pglite', dataDir: '.domicile/regions/eu-west-1' } },
      JSON.parse('{"regions":{"__proto__":{"driver":"pglite","dataDir":"x"}},"controlPlane":{"driver":"pglite","dataDir":"y"},"schema":"s"}'),
      JSON.parse('{"__proto__":{"polluted":true},"regions":{"eu-west-1":{"driver":"pglite","dataDir":"x"}},"controlPlane":{"driver":"pglite","dataDir":"y"},"schema":"s"}'),
    ]
    for (const raw of corpus) {
      figures.cases++
      let threw: unknown
      try {
        parseConfig(raw, work)
      } catch (e) {
        threw = e
      }
      if (threw === undefined) continue // valid after all: allowed (the __proto__ region name is a real name the regex permits? then not bad input)
      leaks.error('parseConfig', threw)
      assert.ok(isDomicileError(threw, 'ERR_CONFIG_INVALID'), `parseConfig(${JSON.stringify(raw)?.slice(0, 80)}): ${String(threw)}`)
      figures.typedErrors++
    }
    assert.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype pollution')
    // Generated: a valid config with one value replaced by arbitrary JSON, or arbitrary JSON.
    const paths = [['regions', 'eu-west-1'], ['regions', 'eu-west-1', 'driver'], ['regions', 'eu-west-1', 'dataDir'], ['controlPlane'], ['schema'], ['keys'], ['keys', 'dir'], ['directoryPollMs'], ['regions']]
    await fc.assert(fc.property(fc.constantFrom(...paths), fc.jsonValue({ maxDepth: 3 }), (path, value) => {
      figures.fuzzRuns++
      const raw = valid() as Record<string, unknown>
      let o = raw
      for (const k of path.slice(0, -1)) o = o[k] as Record<string, unknown>
      o[path.at(-1)!] = value
      try {
        parseConfig(raw, work)
      } catch (e) {
        assert.ok(isDomicileError(e, 'ERR_CONFIG_INVALID'), `${path.join('.')} = ${JSON.stringify(value)?.slice(0, 60)}: ${String(e)}`)
      }
      try {
        parseConfig(value, work)
      } catch (e) {
        assert.ok(isDomicileError(e, 'ERR_CONFIG_INVALID'), `root = ${JSON.stringify(value)?.slice(0, 60)}: ${String(e)}`)
      }
    }), { seed: fcSeed, numRuns: 300 })

    // The CLI: a malformed file is exit 2 with ERR_CONFIG_INVALID, as one JSON error with --json.
    for (const [name, text] of [['truncated.json', '{"regions": {"eu-west-1": {"driver": "pgl'], ['wrong-type.json', JSON.stringify({ ...valid(), directoryPollMs: 'fast' })], ['not-json.json', '\u0000\u0001binary\uffff']] as const) {
      const file = join(work, name)
      await writeFile(file, text)
      const r = await runCli(['region', 'list', '--json', '--config', file], { cwd: work })
      leaks.text(`cli ${name}`, r.stdout + r.stderr)
      assert.equal(r.code, 2, `${name}: exit 2 (${r.stderr.trim()})`)
      assert.equal((JSON.parse(r.stdout) as { error: { code: string } }).error.code, 'ERR_CONFIG_INVALID', name)
      assert.doesNotMatch(r.stderr, /\n\s+at /, `${name}: no stack trace`)
      figures.cases++
    }
  })

  test('stored ciphertext tampered with raw SQL: reading it through Domicile is the opaque ERR_DECRYPTION_FAILED or the original value, never anything else', async () => {
    const original = await env.withDirect(EU, async (c) => (await c.query("SELECT tax_id, email FROM customers WHERE tenant_id = 'acme' AND id = 'c1'")).rows[0]) as { tax_id: Buffer; email: Buffer }
    const foreign = await env.withDirect(US, async (c) => (await c.query("SELECT tax_id FROM customers WHERE tenant_id = 'globex' AND id = 'g1'")).rows[0].tax_id) as Buffer
    const opaque = new DecryptionFailedError().message
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('extend' as const), extra: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
      fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
      fc.record({ kind: fc.constant('overwrite' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ kind: fc.constant('header' as const), header: fc.uint8Array({ minLength: 5, maxLength: 5 }) }),
      fc.record({ kind: fc.constant('random' as const), bytes: fc.uint8Array({ maxLength: 80 }) }),
      fc.constant({ kind: 'other-column' as const }),
      fc.constant({ kind: 'other-tenant' as const }),
    )
    const apply = (m: { kind: string; at?: number; bit?: number; byte?: number; extra?: Uint8Array; header?: Uint8Array; bytes?: Uint8Array }): Buffer => {
      const b = Buffer.from(original.tax_id)
      switch (m.kind) {
        case 'truncate': return b.subarray(0, m.at! % b.length)
        case 'extend': return Buffer.concat([b, Buffer.from(m.extra!)])
        case 'flip': { const i = m.at! % b.length; b[i] = b[i]! ^ (1 << m.bit!); return b }
        case 'overwrite': { b[m.at! % b.length] = m.byte!; return b }
        case 'header': { Buffer.from(m.header!).copy(b, 0); return b }
        case 'random': return Buffer.from(m.bytes!)
        case 'other-column': return Buffer.from(original.email)
        default: return Buffer.from(foreign)
      }
    }
    let opened = 0
    let refused = 0
    try {
      await fc.assert(fc.asyncProperty(mutation, async (m) => {
        figures.fuzzRuns++
        figures.cases++
        const tampered = apply(m)
        await env.withDirect(EU, (c) => c.query("UPDATE customers SET tax_id = $1 WHERE tenant_id = 'acme' AND id = 'c1'", [tampered]))
        for (const read of [
          () => d.withTenant('acme', async (s) => s.reveal<string>((await s.table('customers').get('c1'))!.tax_id, { purpose: 'chaos' })),
          async () => { const [r] = await d.tenant('acme').table('customers').find({ email: 'ADA-c1-canary@acme.example' }); return d.withTenant('acme', (s) => s.reveal<string>(r!.tax_id, { purpose: 'chaos' })) },
        ]) {
          try {
            const v = await read()
            assert.ok(tampered.equals(original.tax_id), `tampered bytes opened (${m.kind})`)
            assert.equal(v, 'TAX-acme-c1-canary')
            opened++
          } catch (e) {
            leaks.error(`tampered ${m.kind}`, e)
            assert.ok(e instanceof DecryptionFailedError, `${m.kind}: not the opaque error: ${String(e)}`)
            assert.equal(e.message, opaque)
            assert.equal(e.cause, undefined, 'no cause')
            refused++
          }
        }
      }), { seed: fcSeed, numRuns: 40 })
    } finally {
      await env.withDirect(EU, (c) => c.query("UPDATE customers SET tax_id = $1 WHERE tenant_id = 'acme' AND id = 'c1'", [original.tax_id]))
    }
    assert.ok(refused > 0, 'the fuzzer produced refused values')
    assert.equal(await d.withTenant('acme', async (s) => s.reveal<string>((await s.table('customers').get('c1'))!.tax_id, { purpose: 'chaos' })), 'TAX-acme-c1-canary', 'restored bytes open again')

    // A tampered wrapped data key (no cached copy: the tenant's TTL is 0) is the same opaque failure.
    const key = await env.withDirect(EU, async (c) => (await c.query("SELECT key_number, wrapped FROM domicile_data_keys WHERE tenant_id = 'nocache' AND purpose = 'data'")).rows[0]) as { key_number: number; wrapped: Buffer }
    try {
      for (const bad of [Buffer.alloc(0), key.wrapped.subarray(0, 10), Buffer.concat([key.wrapped, Buffer.from([0])]), Buffer.from(key.wrapped.map((x, i) => (i === key.wrapped.length - 1 ? x ^ 1 : x)))]) {
        await env.withDirect(EU, (c) => c.query("UPDATE domicile_data_keys SET wrapped = $1 WHERE tenant_id = 'nocache' AND purpose = 'data' AND key_number = $2", [bad, key.key_number]))
        const code = await typedFailure('tampered wrapped key', () => d.withTenant('nocache', async (s) => s.reveal((await s.table('customers').get('n1'))!.tax_id, { purpose: 'chaos' })))
        assert.equal(code, 'ERR_DECRYPTION_FAILED')
        figures.cases++
      }
    } finally {
      await env.withDirect(EU, (c) => c.query("UPDATE domicile_data_keys SET wrapped = $1 WHERE tenant_id = 'nocache' AND purpose = 'data' AND key_number = $2", [key.wrapped, key.key_number]))
    }
    assert.equal(await d.withTenant('nocache', async (s) => s.reveal<string>((await s.table('customers').get('n1'))!.tax_id, { purpose: 'chaos' })), 'TAX-nocache-n1-canary')
  })

  test('malformed and oversized XKS answers (through the fault proxy): a typed error within the deadline, never a foreign error or a wrong-sized key', async () => {
    const fp = await startFaultProxy({ upstream: 'http://127.0.0.1:9', rng: rng.fork('xks') })
    const xks = createXksKeyProvider({ endpoint: fp.url, allowInsecureHttp: true, credentials: { accessKeyId: 'AKIACHAOSBADINPUT000', secretAccessKey: randomBytes(30).toString('base64') }, timeoutMs: 1000 })
    const provider = new RuntimeKeyProvider(xks, { breaker: new CircuitBreaker({ failureThreshold: 1_000_000 }) })
    const context = { tenantId: 'acme', region: EU, dataKeyId: '1', purpose: 'data' as const }
    const blob = new Uint8Array([1, 12, ...randomBytes(12), 16, ...randomBytes(16), 0, ...randomBytes(32)])
    const allowed: DomicileErrorCode[] = ['ERR_KEY_PROVIDER_UNAVAILABLE', 'ERR_DECRYPTION_FAILED', 'ERR_KEY_NOT_FOUND', 'ERR_KEY_REVOKED', 'ERR_KEY_INVALID']
    const b64 = fc.uint8Array({ maxLength: 48 }).map((u) => Buffer.from(u).toString('base64'))
    const field = fc.oneof(b64, fc.string({ maxLength: 20 }), fc.integer(), fc.constant(null), fc.array(fc.integer(), { maxLength: 3 }), fc.constant('!!not base64!!'), fc.constant('QUFB\nQUFB'))
    const body = fc.oneof(
      fc.record({ plaintext: field }, { requiredKeys: [] }),
      fc.record({ ciphertext: field, initializationVector: field, authenticationTag: field, ciphertextDataIntegrityValue: field, ciphertextMetadata: field }, { requiredKeys: [] }),
      fc.record({ errorName: fc.oneof(fc.constantFrom('KeyNotFoundException', 'InvalidStateException', 'InvalidCiphertextException', 'ValidationException', 'NoSuchThing', '__proto__'), fc.string()), errorMessage: fc.string() }, { requiredKeys: [] }),
      fc.jsonValue({ maxDepth: 3 }),
    ).map((v) => JSON.stringify(v) ?? 'null')
    const raw = fc.oneof(body, fc.uint8Array({ maxLength: 200 }).map((u) => Buffer.from(u).toString('latin1')), fc.constant(''), fc.constant('{"plaintext":'))
    try {
      await fc.assert(fc.asyncProperty(fc.constantFrom(200, 200, 200, 400, 403, 404, 500, 503, 301), raw, fc.constantFrom('unwrap', 'wrap', 'status'), async (status, text, op) => {
        figures.fuzzRuns++
        figures.cases++
        fp.setMode({ kind: 'respond', respond: () => ({ status, body: text }) })
        const t0 = performance.now()
        try {
          if (op === 'unwrap') {
            const key = await provider.unwrapKey({ keyId: 'k1', ciphertext: blob, context })
            // Only a well-formed answer opens: exactly the 32 bytes the proxy sent.
            assert.equal(status, 200)
            assert.equal(key.length, 32)
            assert.deepEqual(Buffer.from(key), Buffer.from((JSON.parse(text) as { plaintext: string }).plaintext, 'base64'))
          } else if (op === 'wrap') {
            await provider.wrapKey({ keyId: 'k1', plaintextKey: new Uint8Array(32), context })
            assert.fail('a random answer cannot carry a matching integrity value')
          } else {
            const st = await provider.keyStatus('k1')
            assert.ok(['enabled', 'disabled', 'unavailable'].includes(st.state))
          }
        } catch (e) {
          if (e instanceof assert.AssertionError) throw e
          leaks.error(`xks answer ${status}`, e)
          assert.ok(isDomicileError(e), `HTTP ${status} ${JSON.stringify(text).slice(0, 60)} (${op}): not a DomicileError: ${String(e)}`)
          assert.ok(allowed.includes(e.code), `${op}: ${e.code}`)
          figures.typedErrors++
        }
        assert.ok(performance.now() - t0 < 1000 + 1000, 'within the deadline')
      }), { seed: fcSeed, numRuns: 150 })

      // Oversized answers: refused past the 256 KiB cap, within the deadline.
      for (const bytes of [300 * 1024, 8 * 1024 * 1024]) {
        fp.setMode({ kind: 'oversized', bytes })
        const t0 = performance.now()
        const code = await typedFailure(`oversized ${bytes}`, () => provider.unwrapKey({ keyId: 'k1', ciphertext: blob, context }), ['ERR_KEY_PROVIDER_UNAVAILABLE'])
        assert.equal(code, 'ERR_KEY_PROVIDER_UNAVAILABLE')
        assert.ok(performance.now() - t0 < 2000, `oversized ${bytes}: ${(performance.now() - t0).toFixed(0)} ms`)
        figures.cases++
      }
    } finally {
      await provider.close()
      await fp.close()
    }
  })

  test('edited residency reports and shred certificates: the signature check fails (library and CLI)', async () => {
    const { publicKey } = reportSigningKey(d)
    const edits: Array<[string, (s: string) => string]> = [
      ['region changed', (s) => s.replace(/eu-west-1/, 'us-east-1')],
      ['one character flipped', (s) => { const i = Math.floor(s.length / 2); return s.slice(0, i) + (s[i] === 'a' ? 'b' : 'a') + s.slice(i + 1) }],
      ['truncated', (s) => s.slice(0, Math.floor(s.length * 0.9))],
      ['appended', (s) => `${s}<!-- added -->`],
    ]
    for (const format of ['json', 'md', 'html'] as const) {
      const report = await generateReport(d, 'acme', format)
      leaks.text(`report ${format}`, report.body)
      const v = verifyReportFile(report.body, publicKey)
      assert.equal(v.valid, true, `${format}: the original verifies`)
      for (const [what, edit] of edits) {
        const edited = edit(report.body)
        if (edited === report.body) continue
        const r = verifyReportFile(edited, publicKey)
        figures.cases++
        // Text appended after an HTML/Markdown document is outside the signed slot: allowed only there.
        if (what === 'appended' && format !== 'json') continue
        assert.equal(r.valid, false, `${format} ${what}: must not verify`)
      }
    }
    const file = join(work, 'report.json')
    const original = (await generateReport(d, 'acme', 'json')).body
    await writeFile(file, original.replace(/eu-west-1/, 'us-east-1'))
    const r = await runCli(['report', 'verify', file, '--config', env.configPath, '--json'], { cwd: work })
    leaks.text('cli report verify', r.stdout + r.stderr)
    assert.equal(r.code, 1, `an edited report exits 1: ${r.stderr}`)
    await writeFile(file, original)
    assert.equal((await runCli(['report', 'verify', file, '--config', env.configPath], { cwd: work })).code, 0, 'the original verifies with the CLI')

    // A shred certificate (tenant revoked first), edited.
    await addTenant('shredme', EU)
    await d.withTenant('shredme', (s) => s.table('customers').insert({ id: 's1', name: 'S', email: 'shred-s1-canary@shred.example', tax_id: 'TAX-shred-s1-canary' }))
    leaks.plaintext('shred-s1-canary@shred.example')
    leaks.plaintext('TAX-shred-s1-canary')
    await d.keys.revoke('shredme')
    const cert = await issueShredCertificate(d, 'shredme', { knownPlaintexts: ['TAX-shred-s1-canary'] })
    const text = JSON.stringify(cert, null, 2)
    leaks.text('shred certificate', text)
    checkShredCertificate(text, publicKey)
    for (const edited of [
      text.replace(/"verdict": "[^"]*"/, '"verdict": "edited"'),
      text.replace(/"reversible": (true|false)/, (_m, v: string) => `"reversible": ${v === 'true' ? 'false' : 'true'}`),
      text.replace(/shredme/g, 'acme'),
    ]) {
      assert.notEqual(edited, text)
      await typedFailure('edited shred certificate', () => checkShredCertificate(edited, publicKey), ['ERR_SIGNATURE_INVALID'])
      figures.cases++
    }
    const certFile = join(work, 'cert.json')
    await writeFile(certFile, text.replace(/shredme/g, 'acme'))
    const c = await runCli(['shred', 'check', certFile, '--config', env.configPath, '--json'], { cwd: work })
    leaks.text('cli shred check', c.stdout + c.stderr)
    assert.notEqual(c.code, 0, 'an edited certificate fails the CLI check')
    assert.equal((JSON.parse(c.stdout) as { error: { code: string } }).error.code, 'ERR_SIGNATURE_INVALID')
    await writeFile(certFile, text)
    assert.equal((await runCli(['shred', 'check', certFile, '--config', env.configPath], { cwd: work })).code, 0)
    assert.ok((await readFile(certFile, 'utf8')).length > 0)
  })
})
