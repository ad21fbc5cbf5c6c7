/**
 * `domicile adopt inspect`: reads the catalog of a region's existing application database and
 * proposes a Domicile schema describing its tables as they are (docs/ADOPTING.md).
 *
 * The database is the application's, not Domicile's: it is opened directly from the region's store
 * config (the owner login when configured, else the data login), on a store driver of its own,
 * without the router and so without its region-stamp check, and without loading the config's
 * schema module (which usually does not exist yet: the proposal is what will be written there).
 * Everything runs in READ ONLY transactions; nothing is created in the database. This module is
 * an admin tool for the CLI and is not exported from the package.
 *
 * @example
 * ```ts
 * const r = await inspectDatabase({ config: loadConfig(), region: 'eu-west-1', tenantColumn: 'company_id', out: 'domicile.schema.mjs' })
 * r.proposal.tables.map((t) => `${t.name}: ${t.classification}`)
 * ```
 */
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import type { DomicileConfig, StoreConfig } from '../config/config-types.js'
import { DomicileError } from '../errors.js'
import { DEFAULT_CELL } from '../regions/placement.js'
import type { StoreDriver } from '../regions/store-driver.js'
import { defineSchema } from '../schema/define-schema.js'
import { readCatalog } from './catalog-reader.js'
import { proposeSchema, tableDefs, type SchemaProposal } from './propose-schema.js'
import { sampleTable, type ColumnSample } from './sample-values.js'
import { renderSchemaModule, writeFileAtomic } from './schema-writer.js'

export const DEFAULT_SAMPLE_ROWS = 100

export interface InspectOptions {
  readonly config: DomicileConfig
  readonly region: string
  /** The region's cell, when it has several. */
  readonly cell?: string
  readonly tenantColumn: string
  /** Database schema to read (default `public`). */
  readonly dbSchema?: string
  /** `TABLE.COLUMN` entries to mark sensitive. */
  readonly sensitive?: readonly string[]
  /** Rows sampled per table (default 100; 0: names only). */
  readonly sampleRows?: number
  /** Where to write the schema module (absolute, or relative to the working directory). */
  readonly out?: string
  readonly force?: boolean
  /** The command line, for the module's header comment. */
  readonly command?: string
}

export interface InspectResult {
  readonly proposal: SchemaProposal
  /** The schema module's source. */
  readonly module: string
  /** Absolute path written, when `out` was given. */
  readonly written: string | null
  /** The store read, without credentials (host:port/db or "embedded at DIR"). */
  readonly store: string
}

/** The store config of a region (and cell). Throws ERR_REGION_UNKNOWN / ERR_CELL_UNKNOWN. */
export function regionStore(config: DomicileConfig, region: string, cell?: string): { store: StoreConfig; label: string } {
  const r = Object.hasOwn(config.regions, region) ? config.regions[region] : undefined
  /* Precondition: the region to inspect is configured. */
  if (!r) throw new DomicileError('ERR_REGION_UNKNOWN', `Region "${region}" is not configured (configured: ${Object.keys(config.regions).join(', ')}).`, { path: '--region' })
  const cells = Object.keys(r.cells)
  if (cell === undefined) {
    if (cells.length > 1) throw new DomicileError('ERR_INPUT_INVALID', `Region "${region}" has several cells (${cells.join(', ')}): name the one holding the application's database with --cell NAME.`, { path: '--cell' })
    return { store: r.cells[cells[0]!]!, label: region }
  }
  const store = Object.hasOwn(r.cells, cell) ? r.cells[cell] : undefined
  if (!store) throw new DomicileError('ERR_CELL_UNKNOWN', `Region "${region}" has no cell named "${cell}" (its cells: ${cells.join(', ')}).`, { path: '--cell' })
  return { store, label: cell === DEFAULT_CELL && cells.length === 1 ? region : `${region}/${cell}` }
}

/** Reads, samples and proposes; writes the module when `out` is given. */
export async function inspectDatabase(opts: InspectOptions): Promise<InspectResult> {
  const { store, label } = regionStore(opts.config, opts.region, opts.cell)
  /* Precondition: an embedded store to inspect exists (opening a missing one would create an empty database). */
  if (store.driver === 'pglite' && !store.dataDir.startsWith('memory://') && !existsSync(store.dataDir)) {
    throw new DomicileError('ERR_INPUT_INVALID', `Region ${label}'s embedded store (${store.dataDir}) does not exist: there is no database to inspect.`, { path: '--region' })
  }
  const { storeFromConfig } = await import('../index.js')
  const driver: StoreDriver = storeFromConfig(store, label)
  const dbSchema = opts.dbSchema ?? 'public'
  const sampleRows = opts.sampleRows ?? DEFAULT_SAMPLE_ROWS
  let proposal: SchemaProposal
  try {
    proposal = await driver.withSession(async (s) => {
      const catalog = await readCatalog(s, dbSchema)
      const samples = new Map<string, Map<string, ColumnSample>>()
      for (const t of catalog.tables) samples.set(t.name, await sampleTable(s, dbSchema, t, sampleRows))
      return proposeSchema(catalog, samples, { region: label, tenantColumn: opts.tenantColumn, sampleRows, ...(opts.sensitive ? { sensitive: opts.sensitive } : {}) })
    }, { role: 'owner' })
  } finally {
    await driver.close()
  }
  /* Postcondition: the proposed schema is valid (defineSchema accepts it) before anything is written. */
  defineSchema(tableDefs(proposal))
  const module = renderSchemaModule(proposal, opts.command ?? `domicile adopt inspect --region ${opts.region} --tenant-column ${opts.tenantColumn}`)
  let written: string | null = null
  if (opts.out !== undefined) {
    written = resolve(opts.out)
    await writeFileAtomic(written, module, { force: opts.force === true })
  }
  return { proposal, module, written, store: driver.description }
}
