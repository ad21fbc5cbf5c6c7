/**
 * Files written by `domicile init`: a config with two embedded regions and an example schema.
 * The names here (us-east-1, eu-west-1, customers, plans) are a stable contract for scripts and docs.
 */

export const EXAMPLE_SCHEMA = `// Domicile schema: each table is "tenant" (pinned to the tenant's home region, row-level
// security on tenant_id) or "global" (replicated reference data, never personal).
// Sensitive columns are stored as AES-256-GCM ciphertext under the tenant's own data key;
// "searchable" adds a blind index for equality search.
export default {
  customers: {
    scope: 'tenant',
    primaryKey: 'id',
    columns: {
      id: { type: 'text' },
      name: { type: 'text' },
      email: { type: 'text', nullable: true, sensitive: { searchable: true, normalize: ['trim', 'lower'] } },
      tax_id: { type: 'text', nullable: true, sensitive: true },
      plan: { type: 'text', nullable: true },
    },
    indexes: ['plan'],
  },
  plans: {
    scope: 'global',
    primaryKey: 'id',
    columns: {
      id: { type: 'text' },
      name: { type: 'text', residency: { notPersonal: 'the product name of a plan, not a person' } },
      price_cents: { type: 'integer' },
    },
  },
}
`

export function exampleConfig(): Record<string, unknown> {
  return {
    regions: {
      'us-east-1': { driver: 'pglite', dataDir: '.domicile/regions/us-east-1', jurisdiction: 'US' },
      'eu-west-1': { driver: 'pglite', dataDir: '.domicile/regions/eu-west-1', jurisdiction: 'EU' },
    },
    controlPlane: { driver: 'pglite', dataDir: '.domicile/control-plane' },
    schema: './domicile.schema.mjs',
    keys: { dir: '.domicile/keys' },
  }
}
