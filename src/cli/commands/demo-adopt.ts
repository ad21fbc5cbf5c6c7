/**
 * `domicile demo --adopt`: the adoption path of docs/ADOPTING.md on embedded regions, from an
 * application database Domicile did not create to residency and sealed columns, checking each
 * promise as it goes:
 *
 *   the application's database (us-east-1, its own DDL, plaintext personal data; eu-west-1 gets
 *   the same DDL, empty) → adopt inspect → migrate (attach; pending encryption listed) → adopt
 *   tenants → reads through Domicile (plaintext read as sealed values) → migrate encrypt of three
 *   columns, verified → tenant move of the European companies to eu-west-1 → placement before and
 *   after (rows counted physically in each store), what is encrypted, and reads after the move.
 */
import { join } from 'node:path'
import type { Domicile } from '../../domicile.js'
import { internalsOf } from '../../domicile-internals.js'
import { adoptGlobals } from '../../adopt/adopt-globals.js'
import { adoptTenants } from '../../adopt/adopt-tenants.js'
import { inspectDatabase } from '../../adopt/inspect-database.js'
import { parseConfig } from '../../config/load-config.js'
import { encryptColumn } from '../../ops/encrypt-column.js'
import { moveTenant } from '../../ops/tenant-move.js'
import { silentProgress } from '../../ops/progress.js'
import { q } from '../../schema/sql-ident.js'
import type { Narrator } from './demo-narrator.js'
import { cp, mkdir, writeFile } from 'node:fs/promises'

/** The application's own DDL: a tenants table, two tenant tables keyed (company_id, id), a global table. */
const APP_DDL = `
CREATE TABLE plans (id text PRIMARY KEY, name text NOT NULL, price_cents integer NOT NULL CHECK (price_cents >= 0));
CREATE TABLE companies (id bigserial PRIMARY KEY, name text NOT NULL, country text NOT NULL, plan_id text REFERENCES plans (id));
CREATE TABLE contacts (
  company_id bigint NOT NULL REFERENCES companies (id), id bigserial, email text NOT NULL, full_name text NOT NULL,
  phone text, created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (company_id, id));
CREATE TABLE invoices (
  company_id bigint NOT NULL REFERENCES companies (id), id bigserial, contact_id bigint NOT NULL,
  amount_cents integer NOT NULL CHECK (amount_cents > 0), payer_iban text, paid boolean NOT NULL DEFAULT false,
  PRIMARY KEY (company_id, id), FOREIGN KEY (company_id, contact_id) REFERENCES contacts (company_id, id));
`

/** Made-up companies; people and addresses are generated on the reserved .example domain. */
const COMPANIES: ReadonlyArray<readonly [name: string, country: string]> = [
  ['Acme GmbH', 'DE'], ['Globex Inc', 'US'], ['Bistro SARL', 'FR'], ['Initech LLC', 'US'], ['Umbrella BV', 'NL'], ['Hooli Inc', 'US'],
]
const EU = new Set(['DE', 'FR', 'NL'])
const CONTACTS_PER_COMPANY = 40
const INVOICES_PER_COMPANY = 20

const APP_DATA = `
INSERT INTO plans VALUES ('basic', 'Basic', 0), ('pro', 'Pro', 4900);
INSERT INTO companies (name, country, plan_id) VALUES ${COMPANIES.map(([n, c], i) => `('${n}', '${c}', '${i % 2 === 0 ? 'pro' : 'basic'}')`).join(', ')};
INSERT INTO contacts (company_id, id, email, full_name, phone)
  SELECT c, (c - 1) * ${CONTACTS_PER_COMPANY} + g, 'person' || g || '@company' || c || '.example', 'Person ' || g || ' of company ' || c, '+49 30 555 ' || lpad(g::text, 4, '0')
  FROM generate_series(1, ${COMPANIES.length}) c, generate_series(1, ${CONTACTS_PER_COMPANY}) g;
SELECT setval(pg_get_serial_sequence('contacts', 'id'), ${COMPANIES.length * CONTACTS_PER_COMPANY});
INSERT INTO invoices (company_id, contact_id, amount_cents, payer_iban)
  SELECT c, (c - 1) * ${CONTACTS_PER_COMPANY} + g, 1000 + g * 7, (ARRAY['DE89370400440532013000', 'FR1420041010050500013M02606', 'NL91ABNA0417164300'])[1 + g % 3]
  FROM generate_series(1, ${COMPANIES.length}) c, generate_series(1, ${INVOICES_PER_COMPANY}) g;
`

const SENSITIVE = ['contacts.email', 'contacts.full_name', 'invoices.payer_iban'] as const
const TENANT_TABLES = ['companies', 'contacts', 'invoices'] as const
const US = 'us-east-1'
const EU_REGION = 'eu-west-1'

/**
 * Creates the application's databases as the application would (plain PGlite, no Domicile). One
 * embedded cluster is initialised and copied (initialising one takes seconds): the application's
 * database with its DDL, copied for eu-west-1 before its rows go in, and an empty one for the
 * control plane.
 */
async function createApplicationDatabases(dir: string): Promise<void> {
  const { PGlite } = await import('@electric-sql/pglite')
  await mkdir(join(dir, 'app'), { recursive: true })
  await mkdir(join(dir, '.domicile'), { recursive: true })
  const empty = new PGlite(join(dir, '.domicile', 'control-plane'))
  await empty.waitReady
  await empty.close()
  await cp(join(dir, '.domicile', 'control-plane'), join(dir, 'app', US), { recursive: true })
  const us = new PGlite(join(dir, 'app', US))
  try {
    await us.exec(APP_DDL)
  } finally {
    await us.close()
  }
  await cp(join(dir, 'app', US), join(dir, 'app', EU_REGION), { recursive: true })
  const again = new PGlite(join(dir, 'app', US))
  try {
    await again.exec(APP_DATA)
  } finally {
    await again.close()
  }
}

/** Rows of each tenant in one store, counted physically (owner session, no row-level security). */
async function physicalCounts(d: Domicile, region: string): Promise<Map<string, number>> {
  const { router } = internalsOf(d)
  return router.withRegionAdmin(region, async (s) => {
    const out = new Map<string, number>()
    for (const t of TENANT_TABLES) {
      const col = t === 'companies' ? 'id' : 'company_id'
      const r = await s.query<{ t: string; n: string }>(`SELECT ${q(col)}::text AS t, count(*)::text AS n FROM ${q(t)} GROUP BY 1`)
      for (const row of r.rows) out.set(row.t, (out.get(row.t) ?? 0) + Number(row.n))
    }
    return out
  })
}

/** Per sensitive column in one store: values still in plaintext, values sealed. */
async function columnForms(d: Domicile, region: string): Promise<Array<{ column: string; sealed: number; plaintext: number }>> {
  const { router } = internalsOf(d)
  return router.withRegionAdmin(region, async (s) => {
    const out: Array<{ column: string; sealed: number; plaintext: number }> = []
    for (const target of SENSITIVE) {
      const [table, column] = target.split('.') as [string, string]
      const types = await s.query<{ name: string; type: string }>(
        'SELECT attname::text AS name, format_type(atttypid, NULL) AS type FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped', [q(table)])
      const byName = new Map(types.rows.map((r) => [r.name, r.type]))
      const plainCol = byName.get(column) === 'text' ? column : byName.get(`${column}__shadow`) === 'text' ? `${column}__shadow` : undefined
      const sealedCol = byName.get(column) === 'bytea' ? column : byName.get(`${column}__shadow`) === 'bytea' ? `${column}__shadow` : undefined
      const n = async (c: string | undefined): Promise<number> => c === undefined ? 0 : Number((await s.query<{ n: string }>(`SELECT count(${q(c)})::text AS n FROM ${q(table)}`)).rows[0]!.n)
      out.push({ column: target, sealed: await n(sealedCol), plaintext: await n(plainCol) })
    }
    return out
  })
}

export async function runAdoptDemo(dir: string, say: Narrator): Promise<Record<string, unknown>> {
  say.heading('The application as it is: one PostgreSQL database in us-east-1, plaintext personal data')
  await createApplicationDatabases(dir)
  const rawConfig = {
    regions: {
      [US]: { driver: 'pglite', dataDir: './app/us-east-1', jurisdiction: 'US' },
      [EU_REGION]: { driver: 'pglite', dataDir: './app/eu-west-1', jurisdiction: 'EU' },
    },
    controlPlane: { driver: 'pglite', dataDir: './.domicile/control-plane' },
    schema: './domicile.schema.mjs',
    keys: { dir: './.domicile/keys' },
  }
  const configPath = join(dir, 'domicile.config.json')
  await writeFile(configPath, JSON.stringify(rawConfig, null, 2) + '\n')
  say.line(`created by the application's own DDL: plans, companies (${COMPANIES.length}), contacts (${COMPANIES.length * CONTACTS_PER_COMPANY}), invoices (${COMPANIES.length * INVOICES_PER_COMPANY});`)
  say.line('eu-west-1 got the same DDL (the application\'s migrations), no rows')

  say.heading('domicile adopt inspect --region us-east-1 --tenant-column company_id')
  const config = parseConfig(rawConfig, dir)
  const inspected = await inspectDatabase({
    config, region: US, tenantColumn: 'company_id', sensitive: [...SENSITIVE], out: join(dir, 'domicile.schema.mjs'),
    command: `domicile adopt inspect --region ${US} --tenant-column company_id --sensitive ${SENSITIVE.join(',')}`,
  })
  say.table(['TABLE', 'CLASSIFICATION', 'PRIMARY KEY', 'SUGGESTED SENSITIVE'], inspected.proposal.tables.map((t) => [
    t.name, t.classification, (t.primaryKey ?? []).join(', '), t.columns.filter((c) => c.suggestion !== null || c.sensitive).map((c) => c.name).join(', ') || '-',
  ]))
  say.line(`wrote domicile.schema.mjs with ${SENSITIVE.join(', ')} accepted as sensitive`)

  const { createDomicile } = await import('../../index.js')
  const d = await createDomicile({ configPath })
  try {
    say.heading('domicile migrate: attach (nothing recreated), Domicile\'s tables, row-level security on company_id')
    const migrated = await d.migrate()
    say.check('every store migrated', 'ok', migrated.every((r) => r.ok) ? 'ok' : migrated.filter((r) => !r.ok).map((r) => `${r.store}: ${r.code}`).join('; '))
    const pending = migrated.flatMap((r) => (r.pending ?? []).map((x) => `${x.table}.${x.column}`))
    say.line(`pending encryption: ${pending.join(', ') || '(none)'}`)
    say.check('the three sensitive columns are reported pending encryption', SENSITIVE.join(','), [...pending].sort().join(','))

    say.heading('domicile adopt tenants --region us-east-1 --from-table companies')
    const adopted = await adoptTenants(d, { region: US, fromTable: 'companies', custody: 'kms', actor: 'domicile-demo' })
    say.line(`registered ${adopted.added.length} tenants homed in us-east-1, each with a key of its own`)
    say.check('every company is a tenant', String(COMPANIES.length), String(adopted.added.length + adopted.existing.length))

    say.heading('domicile adopt globals --region us-east-1: reference data becomes replicated global data')
    const globals = await adoptGlobals(d, { region: US, actor: 'domicile-demo' })
    say.line(globals.tables.map((t) => `${t.table}: ${t.rows} rows into the control plane`).join('; '))
    const euPlans = await internalsOf(d).router.withRegionAdmin(EU_REGION, (s) => s.query<{ n: string }>('SELECT count(*)::text AS n FROM plans'))
    say.check('eu-west-1 holds the plans its tenants\' rows will point to', '2', euPlans.rows[0]!.n)

    say.heading('The application reads through Domicile: the same rows, personal data as sealed values')
    const first = await d.tenant('1').table('contacts').get('1')
    say.line(`scope.table('contacts').get('1') for tenant 1: email is ${first?.email === undefined ? 'missing' : String(first.email)}`)
    const revealed = first ? await d.withTenant('1', (s) => s.reveal(first.email, { purpose: 'demo: adoption walkthrough', actor: 'domicile-demo' })) : undefined
    say.check('a reveal with a purpose opens it (audited)', 'person1@company1.example', String(revealed))
    say.check('another company\'s contact is not visible to tenant 1', 'undefined', String(await d.tenant('1').table('contacts').get(String(CONTACTS_PER_COMPANY + 1))))

    say.heading(`domicile migrate encrypt ${SENSITIVE.join(' / ')} (online, verified)`)
    const before = await columnForms(d, US)
    // One job per column, at the same time (each waits for running processes to see its layout changes).
    const jobs = await Promise.all(SENSITIVE.map((target) => encryptColumn(d, target, { verify: true, actor: 'domicile-demo', progress: silentProgress })))
    for (const [i, r] of jobs.entries()) {
      say.check(`${SENSITIVE[i]}: encrypted and verified`, 'ok', r.state === 'done' && r.verify?.ok === true ? 'ok' : `${r.state}, verify ${JSON.stringify(r.verify ?? null)}`)
    }
    const after = await columnForms(d, US)
    say.table(['COLUMN', 'PLAINTEXT BEFORE', 'PLAINTEXT AFTER', 'SEALED AFTER'], SENSITIVE.map((c, i) => [c, String(before[i]!.plaintext), String(after[i]!.plaintext), String(after[i]!.sealed)]))
    say.check('no plaintext left in the encrypted columns', '0', String(after.reduce((a, c) => a + c.plaintext, 0)))

    const euTenants = COMPANIES.map(([, country], i) => [String(i + 1), country] as const).filter(([, c]) => EU.has(c)).map(([id]) => id)
    say.heading(`domicile tenant move ${euTenants.join(', ')} --to eu-west-1 (the European companies)`)
    const placeBefore = await physicalCounts(d, US)
    // One process holds the only connections to these stores: no other writer to wait for before the purge.
    const moves = []
    for (const id of euTenants) moves.push(await moveTenant(d, id, { to: EU_REGION, actor: 'domicile-demo', purgeGraceMs: 200, progress: silentProgress }))
    say.line(`moved ${moves.length} tenants; write freezes ${moves.map((m) => `${m.freezeMs ?? 0} ms`).join(', ')}`)
    const usAfter = await physicalCounts(d, US)
    const euAfter = await physicalCounts(d, EU_REGION)
    const placement = await Promise.all(COMPANIES.map(async ([name, country], i) => {
      const id = String(i + 1)
      const t = await d.getTenant(id)
      return { tenant: id, name, country, before: US, after: t.region, rowsBefore: placeBefore.get(id) ?? 0, usRows: usAfter.get(id) ?? 0, euRows: euAfter.get(id) ?? 0 }
    }))
    say.table(['TENANT', 'COMPANY', 'COUNTRY', 'HOME BEFORE', 'HOME AFTER', 'ROWS IN us-east-1', 'ROWS IN eu-west-1'],
      placement.map((p) => [p.tenant, p.name, p.country, p.before, p.after, String(p.usRows), String(p.euRows)]))
    const misplaced = placement.filter((p) => (p.after === EU_REGION ? p.usRows !== 0 || p.euRows !== p.rowsBefore : p.euRows !== 0 || p.usRows !== p.rowsBefore))
    say.check('each tenant\'s rows are only in its home region, none lost', 'none misplaced', misplaced.length === 0 ? 'none misplaced' : misplaced.map((p) => p.tenant).join(', '))
    const euForms = await columnForms(d, EU_REGION)
    say.check('the moved rows arrived sealed (ciphertext copied as is)', '0', String(euForms.reduce((a, c) => a + c.plaintext, 0)))
    const moved = await d.tenant(euTenants[0]!).table('contacts').get(String((Number(euTenants[0]) - 1) * CONTACTS_PER_COMPANY + 1))
    const openedAfter = moved ? await d.withTenant(euTenants[0]!, (s) => s.reveal(moved.email, { purpose: 'demo: read after the move', actor: 'domicile-demo' })) : undefined
    say.check(`tenant ${euTenants[0]} reads its data in eu-west-1 with its own key`, `person1@company${euTenants[0]}.example`, String(openedAfter))
    return {
      adopt: {
        tenants: COMPANIES.length,
        encrypted: after,
        placement: placement.map(({ tenant, before, after: home, usRows, euRows }) => ({ tenant, before, after: home, rows: { [US]: usRows, [EU_REGION]: euRows } })),
      },
    }
  } finally {
    await d.close()
  }
}
