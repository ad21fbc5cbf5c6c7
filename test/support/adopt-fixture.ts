/**
 * Test support: an existing multi-tenant application database, created with the application's own
 * DDL (not Domicile's), for the adoption tests (docs/ADOPTING.md). The shape of Citus's
 * multi-tenant tutorial, extended:
 *
 *   plans               global reference data (text key), CHECK, a jsonb column
 *   companies           the tenants table: bigserial key, FK to plans, a billing e-mail
 *   campaigns           (company_id, id) composite key, bigserial id, FK to companies, CHECK, defaults, a date column
 *   ads                 (company_id, id), composite FK to campaigns, CHECK, an index
 *   contacts            (company_id, id), personal data in plain text columns (e-mail, name, phone,
 *                       US SSN), a free-text column holding e-mails, a jsonb column
 *   invoices            keyed by a uuid (gen_random_uuid()), company_id not in the key, composite FK
 *                       to contacts, IBANs
 *   newsletter_signups  a global table (no company_id) that holds e-mails: adoption must flag it
 *
 * Rows are generated on the server (generate_series), so `rows: 100_000` takes seconds. Tenants
 * are companies 1..tenants; row n of a tenant table belongs to company 1 + (n % tenants).
 *
 * @example
 * const fixture = await createAdoptFixture(cluster.database('app'), { tenants: 50, rows: 100_000 })
 * fixture.counts.contacts // 40000
 */

import type { TwoRoleLogins } from './pg-cluster.js'

/** The application's DDL, as it created its database (no Domicile objects). */
export const ADOPT_FIXTURE_DDL = `
CREATE TABLE plans (
  id text PRIMARY KEY,
  name text NOT NULL,
  price_cents integer NOT NULL CHECK (price_cents >= 0),
  features jsonb
);
CREATE TABLE companies (
  id bigserial PRIMARY KEY,
  name text NOT NULL,
  plan_id text REFERENCES plans (id),
  billing_email text,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE campaigns (
  company_id bigint NOT NULL REFERENCES companies (id),
  id bigserial,
  name text NOT NULL,
  cost_model text NOT NULL CHECK (cost_model IN ('cpc', 'cpm', 'cpa')),
  state text NOT NULL DEFAULT 'active',
  budget numeric(12, 2),
  start_date date,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (company_id, id)
);
CREATE TABLE ads (
  company_id bigint NOT NULL,
  id bigserial,
  campaign_id bigint NOT NULL,
  name text NOT NULL,
  target_url text NOT NULL,
  impressions bigint NOT NULL DEFAULT 0,
  clicks bigint NOT NULL DEFAULT 0 CHECK (clicks >= 0),
  PRIMARY KEY (company_id, id),
  FOREIGN KEY (company_id, campaign_id) REFERENCES campaigns (company_id, id) ON DELETE CASCADE
);
CREATE INDEX ads_campaign_idx ON ads (company_id, campaign_id);
CREATE TABLE contacts (
  company_id bigint NOT NULL REFERENCES companies (id),
  id bigserial,
  email text NOT NULL,
  full_name text NOT NULL,
  phone text,
  national_id text,
  backup_contact text,
  notes text,
  attributes jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (company_id, id)
);
CREATE TABLE invoices (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  company_id bigint NOT NULL REFERENCES companies (id),
  contact_id bigint,
  amount_cents integer NOT NULL CHECK (amount_cents > 0),
  payer_iban text,
  paid boolean NOT NULL DEFAULT false,
  issued_at timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (company_id, contact_id) REFERENCES contacts (company_id, id)
);
CREATE INDEX invoices_company_idx ON invoices (company_id);
CREATE TABLE newsletter_signups (
  id bigserial PRIMARY KEY,
  email text NOT NULL,
  signed_up_at timestamptz NOT NULL DEFAULT now()
);
`

/**
 * The application's reference data (the global table `plans`): part of the fill, and what the
 * application's own migrations seed in a new region's database beside ADOPT_FIXTURE_DDL (a tenant
 * moved there brings `companies.plan_id` values that reference it).
 */
export const ADOPT_FIXTURE_PLANS_SQL = `INSERT INTO plans (id, name, price_cents, features) VALUES
  ('basic', 'Basic', 0, '{"seats": 3}'), ('pro', 'Pro', 4900, '{"seats": 25}'), ('enterprise', 'Enterprise', 99000, '{"seats": null, "sso": true}');`

/** Valid IBANs (the standard examples), cycled through invoices.payer_iban. */
export const ADOPT_FIXTURE_IBANS: readonly string[] = ['DE89370400440532013000', 'GB82WEST12345698765432', 'FR1420041010050500013M02606', 'NL91ABNA0417164300']
const IBANS = ADOPT_FIXTURE_IBANS

export interface AdoptFixtureOptions {
  /** Number of tenants (companies 1..N). Default 8. */
  readonly tenants?: number
  /** Rows over the four tenant tables campaigns/ads/contacts/invoices (10/30/40/20%). Default 400. */
  readonly rows?: number
}

export interface AdoptFixture {
  readonly tenants: number
  /** Rows per table. */
  readonly counts: Readonly<Record<'plans' | 'companies' | 'campaigns' | 'ads' | 'contacts' | 'invoices' | 'newsletter_signups', number>>
}

/** How many rows each table gets for the given options. */
export function adoptFixtureCounts(opts: AdoptFixtureOptions = {}): AdoptFixture {
  const tenants = opts.tenants ?? 8
  const rows = opts.rows ?? 400
  if (!Number.isInteger(tenants) || tenants < 1 || !Number.isInteger(rows) || rows < 10) throw new Error('adopt fixture: tenants >= 1 and rows >= 10 (integers)')
  const campaigns = Math.max(1, Math.round(rows * 0.1))
  const ads = Math.round(rows * 0.3)
  const contacts = Math.max(1, Math.round(rows * 0.4))
  const invoices = rows - campaigns - ads - contacts
  return { tenants, counts: { plans: 3, companies: tenants, campaigns, ads, contacts, invoices, newsletter_signups: 20 } }
}

/** The statements that fill the fixture's (empty) tables; plain SQL, for PostgreSQL and PGlite alike. */
export function adoptFixtureFillSql(opts: AdoptFixtureOptions = {}): string {
  const { tenants, counts: { campaigns, ads, contacts, invoices, newsletter_signups: signups } } = adoptFixtureCounts(opts)
  const ibans = `ARRAY[${IBANS.map((i) => `'${i}'`).join(', ')}]`
  return `
${ADOPT_FIXTURE_PLANS_SQL}
INSERT INTO companies (id, name, plan_id, billing_email)
  SELECT g, 'Company ' || g, (ARRAY['basic', 'pro', 'enterprise'])[1 + g % 3], 'billing@company' || g || '.example.com'
    FROM generate_series(1, ${tenants}) g;
INSERT INTO campaigns (company_id, id, name, cost_model, budget, start_date)
  SELECT 1 + g % ${tenants}, g, 'Campaign ' || g, (ARRAY['cpc', 'cpm', 'cpa'])[1 + g % 3], (g % 100) * 10.5, DATE '2024-01-01' + g % 365
    FROM generate_series(1, ${campaigns}) g;
INSERT INTO ads (company_id, id, campaign_id, name, target_url, impressions, clicks)
  SELECT 1 + (1 + g % ${campaigns}) % ${tenants}, g, 1 + g % ${campaigns}, 'Ad ' || g, 'https://shop.example.com/p/' || g, g * 10, g
    FROM generate_series(1, ${ads}) g;
INSERT INTO contacts (company_id, id, email, full_name, phone, national_id, backup_contact, notes, attributes)
  SELECT 1 + g % ${tenants}, g, 'contact' || g || '@customer' || g % 50 || '.example.com', 'Person ' || g,
         '+1 202 555 ' || lpad((g % 10000)::text, 4, '0'),
         CASE WHEN g % 5 = 0 THEN NULL ELSE (100 + g % 500) || '-' || lpad((10 + g % 89)::text, 2, '0') || '-' || (1000 + g % 8999) END,
         CASE WHEN g % 4 = 0 THEN 'none' ELSE 'assistant' || g || '@customer' || g % 50 || '.example.com' END,
         'Met at trade fair ' || (2000 + g % 25),
         jsonb_build_object('source', (ARRAY['web', 'event', 'referral'])[1 + g % 3], 'score', g % 10)
    FROM generate_series(1, ${contacts}) g;
INSERT INTO invoices (company_id, contact_id, amount_cents, payer_iban, paid)
  SELECT 1 + g % ${tenants}, CASE WHEN g <= ${contacts} THEN g END, 100 + g % 10000, (${ibans})[1 + g % ${IBANS.length}], g % 2 = 0
    FROM generate_series(1, ${invoices}) g;
INSERT INTO newsletter_signups (email) SELECT 'reader' || g || '@mail.example.org' FROM generate_series(1, ${signups}) g;
SELECT setval(pg_get_serial_sequence('companies', 'id'), ${tenants});
SELECT setval(pg_get_serial_sequence('campaigns', 'id'), ${campaigns});
SELECT setval(pg_get_serial_sequence('ads', 'id'), ${ads});
SELECT setval(pg_get_serial_sequence('contacts', 'id'), ${contacts});
`
}

/**
 * Creates the fixture's tables in the (empty) database at `url` and fills them. Connects as that
 * URL's login (the application's; it owns the tables).
 */
export async function createAdoptFixture(url: string, opts: AdoptFixtureOptions = {}): Promise<AdoptFixture> {
  const facts = adoptFixtureCounts(opts)
  const fill = adoptFixtureFillSql(opts)
  const { default: pg } = await import('pg')
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    await client.query('BEGIN')
    await client.query(ADOPT_FIXTURE_DDL)
    await client.query(fill)
    await client.query('COMMIT')
    await client.query('ANALYZE')
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined)
    throw e
  } finally {
    await client.end()
  }
  return facts
}

/**
 * The Domicile config of the two-region adoption setup (production two-role logins): `us-east-1` is
 * the application's database `shop` (control plane beside it), `eu-west-1` a new database `shop` on
 * another cluster; keys in `./keys`, schema `./domicile.schema.mjs`. `extra` adds root settings.
 */
export function adoptConfig(us: TwoRoleLogins, eu: TwoRoleLogins, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    regions: {
      'us-east-1': { driver: 'postgres', url: us.dataUrl('shop'), ownerUrl: us.ownerUrl('shop'), jurisdiction: 'US', poolSize: 6 },
      'eu-west-1': { driver: 'postgres', url: eu.dataUrl('shop'), ownerUrl: eu.ownerUrl('shop'), jurisdiction: 'EU', poolSize: 6 },
    },
    controlPlane: { driver: 'postgres', url: us.dataUrl('control'), ownerUrl: us.ownerUrl('control') },
    keys: { dir: './keys' },
    schema: './domicile.schema.mjs',
    ...extra,
  }
}
