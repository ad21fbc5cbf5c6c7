/**
 * Test support: a real Domicile on in-memory PGlite stores (the example config's two regions,
 * us-east-1 and eu-west-1, plus the control plane) with the example schema (customers with sealed
 * email / tax_id, global plans), written into a fresh temp directory, migrated and ready. The local
 * key provider's keystore lives in that directory; extra providers (xks, pkcs11, ...) and key
 * settings (nonce budget, cache TTLs) come from the options.
 *
 * One fixture costs one PGlite start-up per region plus one for the control plane: build one per
 * test file, name only the regions it uses, and give each case its own tenants.
 *
 * @example
 * const fx = await createDomicileFixture()
 * await fx.addTenant('acme', { region: 'eu-west-1' })            // custody kms on the local provider
 * await fx.domicile.withTenant('acme', (s) => s.table('customers').insert({ id: 'c1', name: 'Ada', email: 'ada@example.eu' }))
 * await fx.close()
 */
import { createPublicKey, randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { strict as assert } from 'node:assert'
import { createDomicile, parseConfig, type Domicile, type DomicileConfig, type RegionSupplier, type StoreSession, type TenantRecord } from '../../src/index.js'
import { EXAMPLE_SCHEMA, exampleConfig } from '../../src/cli/templates.js'
import { isDomicileError, type DomicileError, type DomicileErrorCode } from '../../src/errors.js'
import type { Custody } from '../../src/keys/key-provider.js'
import { createLocalKeyProvider, type LocalKeyProvider } from '../../src/keys/providers/local/index.js'
import { rsaOaepSha256Encrypt } from '../../src/crypto/rsa-oaep.js'
import { internalsOf } from '../../src/domicile-internals.js'

export interface DomicileFixtureOptions {
  /** Extra `keys.providers` entries (raw config, as in domicile.config.json). */
  readonly providers?: Readonly<Record<string, Readonly<Record<string, unknown>>>>
  /** Other `keys` settings: defaults, cacheTtlMs, maxEncryptionsPerKey, reservationBlock. */
  readonly keys?: Readonly<Record<string, unknown>>
  /** Schema module source; default: the example schema of `domicile init`. */
  readonly schemaSource?: string
  /** Control-plane poll interval (ms); default: the config default. */
  readonly directoryPollMs?: number
  /**
   * Which of the example config's regions (us-east-1, eu-west-1) to configure; default both.
   * Each region is one more PGlite start-up (seconds on a loaded machine), so name only those used.
   */
  readonly regions?: readonly string[]
  /** Decorates the region supplier (as createDomicile's option), e.g. to observe a store's sessions. */
  readonly regionPolicy?: (supplier: RegionSupplier) => RegionSupplier
}

export interface FixtureTenantOptions {
  /** Default 'eu-west-1'. */
  readonly region?: string
  /** Default 'kms'; 'none' adds the tenant without a key binding. */
  readonly custody?: Custody | 'none'
  /** Provider instance name; default: the config's default for the custody level. */
  readonly provider?: string
  /** An existing key at the provider (hyok: required). */
  readonly keyId?: string
  /** Per-tenant data-key cache TTL (ms); 0 = never cache. */
  readonly cacheTtlMs?: number | null
  /** BYOK: import this 32-byte material right away (else the tenant stays 'pending-import'). */
  readonly byokMaterial?: Uint8Array
}

export interface DomicileFixture {
  readonly domicile: Domicile
  /** The temp directory holding config-relative files (schema, keystore). */
  readonly dir: string
  /** The local provider's keystore directory. */
  readonly keysDir: string
  readonly config: DomicileConfig
  /** Provisions a key (unless custody 'none') and adds the tenant to the directory. */
  addTenant(id: string, opts?: FixtureTenantOptions): Promise<TenantRecord>
  /** An owner session on a region store (no tenant context; sees every tenant's rows). */
  regionAdmin<T>(region: string, fn: (s: StoreSession) => Promise<T>): Promise<T>
  /**
   * A second local provider on the same keystore directory: what another process (the key
   * holder's tooling) sees. Created on first use, closed with the fixture.
   */
  localKeystore(): LocalKeyProvider
  close(): Promise<void>
}

/** Builds, migrates and returns a Domicile on memory:// PGlite stores. */
export async function createDomicileFixture(opts: DomicileFixtureOptions = {}): Promise<DomicileFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'domicile-fixture-'))
  const keysDir = join(dir, 'keys')
  let domicile: Domicile | undefined
  try {
    await writeFile(join(dir, 'domicile.schema.mjs'), opts.schemaSource ?? EXAMPLE_SCHEMA)
    const raw = exampleConfig() as { regions: Record<string, Record<string, unknown>>; controlPlane: Record<string, unknown>; [k: string]: unknown }
    if (opts.regions !== undefined) {
      const unknown = opts.regions.filter((r) => raw.regions[r] === undefined)
      if (unknown.length > 0 || opts.regions.length === 0) throw new Error(`regions: expected a non-empty subset of ${Object.keys(raw.regions).join(', ')}`)
      raw.regions = Object.fromEntries(opts.regions.map((r) => [r, raw.regions[r]!]))
    }
    for (const r of Object.values(raw.regions)) r.dataDir = 'memory://'
    raw.controlPlane = { ...raw.controlPlane, dataDir: 'memory://' }
    raw.keys = { ...(opts.keys ?? {}), dir: keysDir, providers: { ...(opts.providers ?? {}) } }
    if (opts.directoryPollMs !== undefined) raw.directoryPollMs = opts.directoryPollMs
    const config = parseConfig(raw, dir)
    domicile = await createDomicile({ config, ...(opts.regionPolicy ? { regionPolicy: opts.regionPolicy } : {}) })
    await domicile.migrate()
    const d = domicile
    let keystore: LocalKeyProvider | undefined
    return {
      domicile: d,
      dir,
      keysDir,
      config,
      async addTenant(id, t = {}) {
        const region = t.region ?? 'eu-west-1'
        const custody = t.custody ?? 'kms'
        const cacheTtl = t.cacheTtlMs !== undefined ? { cacheTtlMs: t.cacheTtlMs } : {}
        if (custody === 'none') return d.addTenant(id, { region, ...cacheTtl })
        const p = await d.keys.provision(id, { custody, ...(t.provider ? { provider: t.provider } : {}), ...(t.keyId ? { keyId: t.keyId } : {}) })
        const rec = await d.addTenant(id, { region, key: p.key, keyState: p.keyState, ...cacheTtl })
        if (t.byokMaterial !== undefined) return importByokMaterial(d, id, t.byokMaterial)
        return rec
      },
      regionAdmin: (region, fn) => internalsOf(d).router.withRegionAdmin(region, fn),
      localKeystore() {
        keystore ??= createLocalKeyProvider({ dir: keysDir })
        return keystore
      },
      async close() {
        await keystore?.close().catch(() => undefined)
        await d.close()
        await rm(dir, { recursive: true, force: true })
      },
    }
  } catch (e) {
    await domicile?.close().catch(() => undefined)
    await rm(dir, { recursive: true, force: true })
    throw e
  }
}

/**
 * The BYOK import as the key holder runs it: fetch an import job, wrap the 32-byte material with
 * RSAES-OAEP-SHA-256 under its public key, hand back the ciphertext with the token.
 */
export async function importByokMaterial(d: Domicile, tenantId: string, material: Uint8Array): Promise<TenantRecord> {
  const job = await d.keys.createImportJob(tenantId)
  const wrapped = rsaOaepSha256Encrypt(createPublicKey(job.wrappingPublicKeyPem), material)
  return d.keys.importKeyMaterial(tenantId, new Uint8Array(wrapped), job.importToken)
}

/** 32 fresh random bytes, e.g. BYOK key material. */
export function newKeyMaterial(): Uint8Array {
  return new Uint8Array(randomBytes(32))
}

/** Awaits `p`, asserts it rejects with a DomicileError of `code`, and returns that error. */
export async function rejectsWithCode(p: Promise<unknown>, code: DomicileErrorCode, what = 'the call'): Promise<DomicileError> {
  let caught: unknown
  try {
    await p
  } catch (e) {
    caught = e
  }
  assert.ok(caught !== undefined, `${what}: expected ${code}, but it succeeded`)
  assert.ok(isDomicileError(caught), `${what}: expected a DomicileError ${code}, got ${String(caught)}`)
  assert.equal(caught.code, code, `${what}: ${caught.message}`)
  return caught
}
