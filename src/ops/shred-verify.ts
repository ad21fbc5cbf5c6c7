/**
 * `shred verify`: checks, after a revocation or a destruction, that a tenant's sealed data cannot be
 * opened, and issues a signed shred certificate (src/ops/shred-certificate.ts) saying what was
 * checked, the counts, the key references, when and how the erase happened, whether it can be
 * undone, and which NIST SP 800-88 cryptographic-erase conditions it meets or cannot vouch for.
 *
 * What it does, reading the stores with owner sessions (admin work; nothing is written but audit):
 * - asks the provider for the state of the key-encryption key(s);
 * - tries to unwrap every wrapped data and index key of the tenant left in any region directly at
 *   its provider, bypassing Domicile's own kill switch (all must fail; a key that unwraps is zeroed
 *   at once), and counts the wrapped copies left (none may be left after a destruction);
 * - reads every row of the tenant in every tenant table of every region: each non-null value of a
 *   sensitive column (and of a migration's shadow column) must parse as a sealed value whose data-key
 *   number is one of the tenant's, and each blind index must be index bytes, never text;
 * - tries to open a random sample of those sealed values through Domicile, as an application would
 *   (none may open; each attempt leaves its `field.reveal` audit record);
 * - looks for the tenant's plaintext in global tables (every region's copy and the control plane),
 *   in audit records, and in the tenant's plain columns: for the caller's known samples when given,
 *   structurally otherwise (PLAINTEXT_SEARCH_MEANING says what either can and cannot show).
 */
import { randomUUID } from 'node:crypto'
import type { Domicile } from '../domicile.js'
import { internalsOf } from '../domicile-internals.js'
import { DomicileError, isDomicileError } from '../errors.js'
import { loadOrCreateSigningKey } from '../evidence/signing-key.js'
import { readKeyNumber } from '../fields/field-codec.js'
import { keyWrapContext } from '../keys/keyring.js'
import type { KekDestruction } from '../keys/key-admin.js'
import type { ResolvedTable } from '../schema/define-schema.js'
import { SHADOW_SUFFIX } from '../schema/define-schema.js'
import { tenantMatch } from '../schema/tenant-column.js'
import type { Placement } from '../regions/placement.js'
import type { StoreSession } from '../regions/store-driver.js'
import { appendOperationAudit } from './ops-audit.js'
import { silentProgress, type Progress } from './progress.js'
import {
  nistAssessment,
  PLAINTEXT_SEARCH_MEANING,
  reversibilityOf,
  SHRED_SCOPE,
  signShredCertificate,
  type EraseMethod,
  type ShredCertificate,
  type ShredCertificatePayload,
  type ShredCheck,
} from './shred-certificate.js'
import type { DestroyCheckpoint } from './shred-destroy.js'
import { runningFor } from './shred-destroy.js'
import { evidenceSigningKeyFile } from './shred-evidence-key.js'
import { tenantSweepParam } from './tenant-rows.js'

export interface ShredVerifyOptions {
  /** How many sealed values to try to open through Domicile. Default 25. */
  readonly sampleSize?: number
  /**
   * Plaintext the caller knows the tenant held (e.g. a customer's e-mail address), searched for in
   * global tables, audit records and the tenant's plain columns. Kept in memory only: the
   * certificate holds their count, never them or their hashes.
   */
  readonly knownPlaintexts?: readonly string[]
  /** Who verifies (audit). */
  readonly actor?: string
  readonly progress?: Progress
  /** Rows read per batch. Default 1000. */
  readonly batchSize?: number
}

export interface IssueShredCertificateOptions extends ShredVerifyOptions {
  /** The Ed25519 signing key file; default `evidenceSigningKeyFile(config)`. */
  readonly signingKeyFile?: string
}

/** Audit detail fields that would carry values; none may appear in a tenant's audit records. */
const VALUE_FIELDS = ['value', 'values', 'plaintext', 'data', 'row', 'before', 'after', 'old', 'new', 'params', 'parameters'] as const
const MAX_SAMPLE = 1000

const q = (ident: string): string => `"${ident.replace(/"/g, '""')}"`

/**
 * Verifies the erase and returns the signed certificate.
 *
 * @example
 * const cert = await issueShredCertificate(domicile, 'acme', { knownPlaintexts: ['ada@acme.example'] })
 * await writeFile('acme.shred.json', JSON.stringify(cert, null, 2))
 */
export async function issueShredCertificate(domicile: Domicile, tenantId: string, opts: IssueShredCertificateOptions = {}): Promise<ShredCertificate> {
  const { config } = internalsOf(domicile)
  const file = opts.signingKeyFile ?? (config ? evidenceSigningKeyFile(config) : undefined)
  /* Precondition: a signing key file is known (from the configuration or the options). */
  if (file === undefined) throw new DomicileError('ERR_CONFIG_INVALID', 'No evidence signing key file: create the instance from a configuration, or pass signingKeyFile.')
  const key = loadOrCreateSigningKey(file)
  return signShredCertificate(key, await verifyShred(domicile, tenantId, opts))
}

/** Runs every check and returns the certificate payload (unsigned). */
export async function verifyShred(domicile: Domicile, tenantId: string, opts: ShredVerifyOptions = {}): Promise<ShredCertificatePayload> {
  const parts = internalsOf(domicile)
  const { directory, providers, journal, router, controlPlane, schema } = parts
  /* Precondition: the instance has key custody and an operations journal. */
  if (!providers || !journal) throw new DomicileError('ERR_KEY_PROVIDER_UNKNOWN', 'No key providers are configured for this instance, so there is nothing to verify.')
  const sampleSize = opts.sampleSize ?? 25
  /* Precondition: the sample size is an integer from 1 to 1000. */
  if (!Number.isInteger(sampleSize) || sampleSize < 1 || sampleSize > MAX_SAMPLE) throw new DomicileError('ERR_INPUT_INVALID', `The sample size must be an integer from 1 to ${MAX_SAMPLE}.`, { path: 'sampleSize' })
  const samples = opts.knownPlaintexts ?? []
  /* Precondition: known plaintext samples are non-empty strings. */
  if (samples.some((s) => typeof s !== 'string' || s === '')) throw new DomicileError('ERR_INPUT_INVALID', 'Known plaintext samples must be non-empty strings (one per line in a file).', { path: 'knownPlaintexts' })
  const progress = opts.progress ?? silentProgress
  const batchSize = opts.batchSize ?? 1000

  const tenant = await directory.get(tenantId)
  /* Precondition: the tenant has a key binding. */
  if (!tenant.key) throw new DomicileError('ERR_KEY_NOT_FOUND', `Tenant "${tenantId}" has no key binding, so it has no sealed data to verify.`)
  const running = await runningFor(journal, tenantId)
  /* Precondition: no operation is running for the tenant (a destruction in progress is finished first). */
  if (running) {
    throw new DomicileError('ERR_OPERATION_RUNNING', running.kind === 'key-destroy'
      ? `The destruction of tenant "${tenantId}" (operation #${running.id}) did not finish. Run "domicile key destroy ${tenantId}" again to complete it, then verify.`
      : `Operation #${running.id} (${running.kind}) is running for tenant "${tenantId}". Verify after it ends.`)
  }
  const binding = tenant.key
  const providerKind = providers.config(binding.provider).kind
  const providerState = await probe(domicile, binding.provider, binding.keyId)
  const method = eraseMethod(tenant.keyState, providerState, providerKind)
  /* Precondition: the tenant's key is revoked, destroyed, or deleted or disabled at its holder. */
  if (method === undefined) {
    throw new DomicileError('ERR_CONFLICT', `The key of tenant "${tenantId}" is usable (Domicile: ${tenant.keyState}, provider: ${providerState}): there is no erase to verify. Revoke it ("domicile key revoke"), destroy it ("domicile key destroy") or delete its material first.`)
  }
  const rev = reversibilityOf(method, providerKind)
  await appendOperationAudit(router, tenant, tenantId, [{ type: 'shred.verify.start', outcome: 'ok', actor: opts.actor ?? null, detail: { method, samples: samples.length } }])

  // When and by whom: the control-plane audit record of the erase.
  const recordType = method === 'destroyed' ? 'key.destroy' : method === 'material-deleted' ? 'key.delete-material' : method === 'revoked' ? 'key.revoke' : undefined
  const record = recordType === undefined ? undefined : await controlPlane.withSession((s) => s.query<{ id: string | number; at: Date | string; actor: string | null }>(
    `SELECT id, at, actor FROM domicile_control_audit WHERE tenant_id = $1 AND type = $2 AND outcome = 'ok' ORDER BY id DESC LIMIT 1`, [tenantId, recordType]), { role: 'owner' }).then((r) => r.rows[0])

  // The destruction, from the journal.
  const destroyOp = method === 'destroyed' ? (await journal.list({ tenantId, limit: 200 })).find((o) => o.kind === 'key-destroy' && o.status === 'done') : undefined
  const destroyCp = destroyOp?.checkpoint as DestroyCheckpoint | undefined
  const keks: readonly KekDestruction[] = destroyCp?.keks ?? []

  const checks: ShredCheck[] = []

  // 1. Key-encryption keys at their providers.
  if (method === 'destroyed') {
    const states: Record<string, number> = {}
    let stillThere = 0
    for (const k of keks) {
      const st = await probe(domicile, k.provider, k.keyId)
      states[st] = (states[st] ?? 0) + 1
      const expectGone = k.outcome === 'destroyed' || k.outcome === 'already-gone'
      if ((expectGone && st !== 'not-found') || (k.outcome === 'pending-deletion' && st !== 'deleted')) stillThere++
    }
    checks.push({
      id: 'kek-destroyed', title: 'The key-encryption keys we destroyed are gone at their providers', blocking: true,
      status: destroyOp === undefined || stillThere > 0 ? 'fail' : 'pass',
      counts: { keys: keks.length, notAsDestroyed: stillThere, ...prefixed('state.', states) },
      note: destroyOp === undefined ? 'No completed key-destroy operation is recorded for the tenant.' : `Outcomes: ${keks.map((k) => `${k.provider}/${k.keyId}: ${k.outcome}`).join('; ') || 'none'}.`,
    })
  } else {
    checks.push({ id: 'kek-state', title: 'The key-encryption key is refused', status: 'pass', blocking: true, counts: {},
      note: `Domicile key state: ${tenant.keyState}; provider state: ${providerState}.` })
  }

  // 2. Wrapped copies left, and an unwrap attempt of each at its provider.
  progress.update({ state: 'unwrap', done: 0, unit: 'keys' })
  const wrapped = await wrappedKeys(domicile, tenantId)
  const unwrapCounts: Record<string, number> = { attempted: 0, refused: 0, unwrapped: 0, inconclusive: 0 }
  for (const [i, w] of wrapped.entries()) {
    unwrapCounts.attempted!++
    const outcome = await tryUnwrap(domicile, tenantId, w)
    if (outcome === 'unwrapped') unwrapCounts.unwrapped!++
    else if (outcome === 'ERR_KEY_PROVIDER_UNAVAILABLE') unwrapCounts.inconclusive!++
    else unwrapCounts.refused!++
    if (outcome !== 'unwrapped') unwrapCounts[`code.${outcome}`] = (unwrapCounts[`code.${outcome}`] ?? 0) + 1
    progress.update({ state: 'unwrap', done: i + 1, total: wrapped.length, unit: 'keys' })
  }
  checks.push({
    id: 'wrapped-copies', title: method === 'destroyed' ? 'No wrapped copy of the tenant\'s data or index keys is left in any region' : 'Wrapped copies of the tenant\'s keys in the region stores',
    status: method === 'destroyed' ? (wrapped.length === 0 ? 'pass' : 'fail') : 'info', blocking: method === 'destroyed',
    counts: { left: wrapped.length, data: wrapped.filter((w) => w.purpose === 'data').length, index: wrapped.filter((w) => w.purpose === 'index').length,
      ...(destroyCp ? { destroyed: destroyCp.wrappedKeys?.length ?? 0 } : {}) },
    note: method === 'destroyed' ? 'Counted in domicile_data_keys of every region after the destruction.' : 'Kept: this erase leaves the wrapped keys in place and rests on their key-encryption key being refused.',
  })
  const unwrapOk = unwrapCounts.unwrapped === 0 && unwrapCounts.inconclusive === 0
  checks.push({
    id: 'unwrap-at-provider', title: 'Every wrapped data and index key fails to unwrap at its provider (Domicile\'s kill switch bypassed)',
    status: wrapped.length === 0 ? 'skipped' : unwrapOk ? 'pass' : 'fail', blocking: !rev.reversible, counts: unwrapCounts,
    note: wrapped.length === 0 ? 'No wrapped key is left to try.' : unwrapCounts.unwrapped! > 0
      ? 'Some keys still unwrap at their provider: the data is recoverable by whoever can enable the key in Domicile (a suspension, not an erase).'
      : unwrapCounts.inconclusive! > 0 ? 'The provider could not be reached for some keys: retry when it answers.' : 'Every attempt was refused.',
  })

  // 3. Every row of the tenant: sensitive values sealed, blind indexes not text; a random sample kept.
  const knownNumbers = new Set<string>([...(destroyCp?.wrappedKeys ?? []), ...wrapped].filter((w) => w.purpose === 'data').map((w) => `${w.region}|${w.keyNumber}`))
  const scan = await scanTenantRows(domicile, tenantId, tenant, knownNumbers, sampleSize, batchSize, progress)
  const sealedOk = scan.unsealed === 0 && scan.unknownKey === 0 && scan.badIndex === 0
  checks.push({
    id: 'sensitive-columns-sealed', title: 'Every non-null value of the tenant\'s sensitive columns is a sealed value under one of its data keys',
    status: sealedOk ? 'pass' : 'fail', blocking: true,
    counts: { regions: router.stores.length, tables: scan.tables, rows: scan.rows, values: scan.values, unsealed: scan.unsealed, unknownKeyNumber: scan.unknownKey, blindIndexes: scan.indexes, malformedBlindIndexes: scan.badIndex },
    note: 'Checked structurally (format version, data-key number, length) on every row of the tenant in every region; the AAD binding to tenant, table, column and row cannot be checked without the key.',
  })

  // 4. A sample of sealed values, opened as an application would.
  progress.update({ state: 'sample', done: 0, total: scan.sample.length, unit: 'values' })
  const sampleCounts: Record<string, number> = { sampled: scan.sample.length, opened: 0, refused: 0 }
  for (const [i, s] of scan.sample.entries()) {
    const outcome = await tryOpen(domicile, tenantId, s, opts.actor)
    if (outcome === 'opened') sampleCounts.opened!++
    else {
      sampleCounts.refused!++
      sampleCounts[`code.${outcome}`] = (sampleCounts[`code.${outcome}`] ?? 0) + 1
    }
    progress.update({ state: 'sample', done: i + 1, total: scan.sample.length, unit: 'values' })
  }
  checks.push({
    id: 'sample-open', title: 'No sampled sealed value opens through Domicile', status: scan.sample.length === 0 ? 'skipped' : sampleCounts.opened === 0 ? 'pass' : 'fail', blocking: true,
    counts: sampleCounts, note: scan.sample.length === 0 ? 'The tenant has no sealed values.' : 'A uniform random sample of the sealed values in the tenant\'s home region; each attempt is recorded as a field.reveal audit record (purpose "shred-verify").',
  })

  // 5. Plaintext outside the sealed columns.
  progress.update({ state: 'plaintext', done: 0, unit: 'stores' })
  const globalTables = [...schema.tables.values()].filter((t) => t.scope === 'global')
  const tenantTables = [...schema.tables.values()].filter((t) => t.scope === 'tenant')
  if (samples.length > 0) {
    const g = await searchGlobal(domicile, globalTables, samples)
    checks.push({ id: 'global-tables', title: 'No global table holds a known sample', status: g.hits === 0 ? 'pass' : 'fail', blocking: true,
      counts: { stores: g.stores, tables: globalTables.length, samples: samples.length, hits: g.hits }, note: 'Every global table in every region store and in the control plane.' })
    const p = await searchTenantPlain(domicile, tenantId, tenantTables, samples)
    checks.push({ id: 'tenant-plain-columns', title: 'No plain column of the tenant\'s rows holds a known sample', status: p.hits === 0 ? 'pass' : 'fail', blocking: true,
      counts: { regions: router.stores.length, tables: tenantTables.length, samples: samples.length, hits: p.hits },
      note: 'A hit means the plaintext is stored outside a sensitive column, where no cryptographic erase reaches it.' })
  } else {
    const structural = globalTables.every((t) => t.sensitiveColumns.length === 0 && t.tenantColumn === null && !t.columns.has('tenant_id'))
    checks.push({ id: 'global-tables', title: 'Global tables cannot hold the tenant\'s sealed fields', status: structural ? 'pass' : 'fail', blocking: true,
      counts: { tables: globalTables.length, samples: 0 }, note: 'Structural: the schema gives global tables no sensitive column and no tenant_id. No value was searched for.' })
    checks.push({ id: 'tenant-plain-columns', title: 'The tenant\'s plain columns hold no known sample', status: 'skipped', blocking: false, counts: { samples: 0 }, note: 'No known plaintext was supplied.' })
  }
  const a = await checkAudit(domicile, tenantId, samples)
  checks.push({
    id: 'audit-records', title: samples.length > 0 ? 'No audit record of the tenant holds a known sample or a value field' : 'No audit record of the tenant carries a value field',
    status: a.hits === 0 && a.valueFields.length === 0 ? 'pass' : 'fail', blocking: true,
    counts: { records: a.records, stores: a.stores, samples: samples.length, hits: a.hits, valueFields: a.valueFields.length },
    note: `Detail fields seen: ${a.keys.join(', ') || 'none'}${a.valueFields.length > 0 ? `; value fields found: ${a.valueFields.join(', ')}` : ''}.`,
  })

  const verdict = checks.some((c) => c.status === 'fail' && c.blocking) ? 'failed' : rev.reversible ? 'suspended' : 'erased'
  const destroyedAll = keks.length > 0 && keks.every((k) => k.outcome === 'destroyed' || k.outcome === 'already-gone')
  const payload: ShredCertificatePayload = {
    certificateId: randomUUID(),
    issuedAt: new Date().toISOString(),
    tenant: { id: tenant.id, homeRegion: tenant.region, status: tenant.status },
    key: { custody: binding.custody, provider: binding.provider, providerKind, keyId: binding.keyId, directoryState: tenant.keyState, providerState },
    erase: {
      method,
      at: record ? new Date(record.at).toISOString() : null,
      actor: record?.actor ?? null,
      auditRecordId: record ? Number(record.id) : null,
      ...rev,
    },
    destruction: destroyOp ? { operationId: destroyOp.id, status: destroyOp.status, keys: keks, wrappedKeysDestroyed: destroyCp?.wrappedKeys?.length ?? 0 } : null,
    checks,
    verdict,
    plaintextSearch: samples.length > 0
      ? { mode: 'known-samples', samples: samples.length, meaning: PLAINTEXT_SEARCH_MEANING['known-samples'] }
      : { mode: 'structural', samples: 0, meaning: PLAINTEXT_SEARCH_MEANING.structural },
    scope: SHRED_SCOPE,
    nist80088: nistAssessment({
      method, providerKind, custody: binding.custody, allSealed: sealedOk, sampleRefused: sampleCounts.opened === 0,
      unwrapRefused: unwrapOk, wrappedCopiesLeft: wrapped.length, destroyedAll,
    }),
  }
  await appendOperationAudit(router, tenant, tenantId, [{ type: 'shred.verify.end', outcome: verdict === 'failed' ? 'error' : 'ok', actor: opts.actor ?? null,
    detail: { certificateId: payload.certificateId, method, verdict, reversible: rev.reversible } }])
  return payload
}

/** The erase method from our key state and the provider's; undefined when the key is usable. */
function eraseMethod(directoryState: string, providerState: string, providerKind: string): EraseMethod | undefined {
  if (directoryState === 'destroyed') return 'destroyed'
  if (providerState === 'not-found') return 'key-missing-at-provider'
  if (providerState === 'deleted') return providerKind === 'local' ? 'material-deleted' : 'holder-disabled'
  if (providerState === 'disabled') return 'holder-disabled'
  if (directoryState === 'revoked') return 'revoked'
  return undefined
}

/** The provider's view of a key: its state, 'not-found', 'disabled' (refused) or 'unavailable'. */
async function probe(domicile: Domicile, provider: string, keyId: string): Promise<string> {
  const { providers } = internalsOf(domicile)
  try {
    return (await (await providers!.runtime(provider)).keyStatus(keyId)).state
  } catch (e) {
    if (isDomicileError(e, 'ERR_KEY_NOT_FOUND')) return 'not-found'
    if (isDomicileError(e, 'ERR_KEY_REVOKED')) return 'disabled'
    return 'unavailable'
  }
}

interface WrappedRow {
  readonly region: string
  readonly purpose: 'data' | 'index'
  readonly keyNumber: number
  readonly provider: string
  readonly keyId: string
  readonly wrapped: Uint8Array
}

async function wrappedKeys(domicile: Domicile, tenantId: string): Promise<WrappedRow[]> {
  const { router } = internalsOf(domicile)
  const out: WrappedRow[] = []
  for (const where of router.stores) {
    const region = where.region // the wrap context names the region (every cell of it)
    const r = await router.withRegionAdmin(where, (s) => s.query<{ purpose: 'data' | 'index'; key_number: number; provider: string; key_id: string; wrapped: Uint8Array }>(
      'SELECT purpose, key_number, provider, key_id, wrapped FROM domicile_data_keys WHERE tenant_id = $1 ORDER BY purpose, key_number', [tenantId]))
    for (const row of r.rows) out.push({ region, purpose: row.purpose, keyNumber: Number(row.key_number), provider: row.provider, keyId: row.key_id, wrapped: new Uint8Array(row.wrapped) })
  }
  return out
}

/** One unwrap attempt straight at the provider; a key that unwraps is zeroed at once. */
async function tryUnwrap(domicile: Domicile, tenantId: string, w: WrappedRow): Promise<string> {
  const { providers } = internalsOf(domicile)
  try {
    const provider = await providers!.runtime(w.provider)
    const key = await provider.unwrapKey({ keyId: w.keyId, ciphertext: w.wrapped, context: keyWrapContext(tenantId, w.region, w.purpose, w.keyNumber) })
    key.fill(0)
    return 'unwrapped'
  } catch (e) {
    return isDomicileError(e) ? e.code : 'ERR_KEY_PROVIDER_UNAVAILABLE'
  }
}

interface SampleRef {
  readonly table: string
  readonly pk: string | number
  readonly column: string
}

interface ScanResult {
  tables: number
  rows: number
  values: number
  unsealed: number
  unknownKey: number
  indexes: number
  badIndex: number
  sample: SampleRef[]
}

/** The physical columns of one table in one store (a migration may add a shadow column). */
async function catalog(s: StoreSession, table: string): Promise<Map<string, string>> {
  const r = await s.query<{ name: string; type: string }>(
    'SELECT a.attname::text AS name, format_type(a.atttypid, NULL) AS type FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped', [table])
  return new Map(r.rows.map((row) => [row.name, row.type]))
}

/** Reads every row of the tenant in every tenant table with sensitive columns, in every region. */
async function scanTenantRows(domicile: Domicile, tenantId: string, home: Placement, knownNumbers: ReadonlySet<string>, sampleSize: number,
  batchSize: number, progress: Progress): Promise<ScanResult> {
  const { router, schema } = internalsOf(domicile)
  const res: ScanResult = { tables: 0, rows: 0, values: 0, unsealed: 0, unknownKey: 0, indexes: 0, badIndex: 0, sample: [] }
  let seen = 0 // sealed values in the home region, for the reservoir sample
  const tables = [...schema.tables.values()].filter((t) => t.scope === 'tenant' && t.sensitiveColumns.length > 0)
  res.tables = tables.length
  for (const where of router.stores) {
    const region = where.region
    const atHome = where.region === home.region && where.cell === home.cell
    for (const t of tables) {
      await router.withRegionAdmin(where, async (s) => {
        const cols = await catalog(s, t.name)
        if (cols.size === 0) return
        // Each physical column of a sensitive column: the column itself, a migration's shadow, the blind index.
        const physical: { name: string; logical: string; kind: 'sealed' | 'plain' | 'index'; indexBytes: number }[] = []
        for (const c of t.sensitiveColumns) {
          for (const name of [c.name, `${c.name}${SHADOW_SUFFIX}`]) {
            const type = cols.get(name)
            if (type !== undefined) physical.push({ name, logical: c.name, kind: type === 'bytea' ? 'sealed' : 'plain', indexBytes: 0 })
          }
          if (c.indexColumn && cols.has(c.indexColumn) && c.sensitive) physical.push({ name: c.indexColumn, logical: c.name, kind: 'index', indexBytes: c.sensitive.indexBytes })
        }
        const pk = q(t.primaryKey)
        const select = physical.map((p, i) => `${q(p.name)} AS c${i}`).join(', ')
        const tenant = tenantSweepParam(t, tenantId)
        let after: unknown
        for (;;) {
          const r = await s.query<Record<string, unknown>>(
            `SELECT ${pk} AS pk, ${select} FROM ${q(t.name)} WHERE ${tenantMatch(t, '$1')}${after === undefined ? '' : ` AND ${pk} > $3`} ORDER BY ${pk} LIMIT $2`,
            after === undefined ? [tenant, batchSize] : [tenant, batchSize, after])
          for (const row of r.rows) {
            res.rows++
            physical.forEach((p, i) => {
              const v = row[`c${i}`]
              if (v === null || v === undefined) return
              if (p.kind === 'index') {
                res.indexes++
                if (!(v instanceof Uint8Array) || v.length !== p.indexBytes) res.badIndex++
                return
              }
              res.values++
              if (p.kind === 'plain' || !(v instanceof Uint8Array)) {
                res.unsealed++
                return
              }
              let n: number
              try {
                n = readKeyNumber(v)
              } catch {
                res.unsealed++
                return
              }
              if (!knownNumbers.has(`${region}|${n}`)) res.unknownKey++
              if (atHome) {
                // Reservoir sampling (algorithm R): a uniform sample of the home region's sealed values.
                seen++
                const ref = { table: t.name, pk: row.pk as string | number, column: p.logical }
                if (res.sample.length < sampleSize) res.sample.push(ref)
                else {
                  const j = Math.floor(Math.random() * seen)
                  if (j < sampleSize) res.sample[j] = ref
                }
              }
            })
          }
          progress.update({ state: 'scan', done: res.rows, unit: 'rows' })
          if (r.rows.length < batchSize) break
          after = r.rows[r.rows.length - 1]!.pk
        }
      })
    }
  }
  return res
}

/** One attempt to open a sealed value the way an application would; 'opened' or the error code. */
async function tryOpen(domicile: Domicile, tenantId: string, s: SampleRef, actor: string | undefined): Promise<string> {
  try {
    return await domicile.withTenant(tenantId, async (scope) => {
      const row = await scope.table(s.table).get(s.pk)
      const v = row?.[s.column]
      if (v === null || v === undefined) return 'ERR_ROW_NOT_FOUND'
      await scope.reveal(v, { purpose: 'shred-verify', ...(actor ? { actor } : {}) })
      return 'opened' // the plaintext is dropped here, never kept
    })
  } catch (e) {
    return isDomicileError(e) ? e.code : 'ERR_UNKNOWN'
  }
}

/** The text of a row's non-bytea columns but its tenant column (bytea would show as hex, where short samples match by chance). */
function textOf(t: ResolvedTable, cols: ReadonlyMap<string, string>): string | undefined {
  const parts = [...cols.entries()].filter(([name, type]) => type !== 'bytea' && name !== (t.tenantColumn?.name ?? 'tenant_id') && (t.columns.has(name) || name.endsWith(SHADOW_SUFFIX))).map(([name]) => `coalesce(${q(name)}::text, '')`)
  return parts.length === 0 ? undefined : `concat_ws(chr(31), ${parts.join(', ')})`
}

async function countHits(s: StoreSession, t: ResolvedTable, samples: readonly string[], tenantId?: string): Promise<number> {
  const cols = await catalog(s, t.name)
  const text = textOf(t, cols)
  if (text === undefined) return 0
  let hits = 0
  for (const sample of samples) {
    const r = tenantId === undefined
      ? await s.query<{ n: string | number }>(`SELECT count(*) AS n FROM ${q(t.name)} WHERE strpos(${text}, $1) > 0`, [sample])
      : await s.query<{ n: string | number }>(`SELECT count(*) AS n FROM ${q(t.name)} WHERE ${tenantMatch(t, '$2')} AND strpos(${text}, $1) > 0`, [sample, tenantSweepParam(t, tenantId)])
    hits += Number(r.rows[0]?.n ?? 0)
  }
  return hits
}

async function searchGlobal(domicile: Domicile, tables: readonly ResolvedTable[], samples: readonly string[]): Promise<{ stores: number; hits: number }> {
  const { router, controlPlane } = internalsOf(domicile)
  let hits = 0
  for (const where of router.stores) {
    hits += await router.withRegionAdmin(where, async (s) => {
      let n = 0
      for (const t of tables) n += await countHits(s, t, samples)
      return n
    })
  }
  hits += await controlPlane.withSession(async (s) => {
    let n = 0
    for (const t of tables) n += await countHits(s, t, samples)
    return n
  }, { role: 'owner' })
  return { stores: router.stores.length + 1, hits }
}

async function searchTenantPlain(domicile: Domicile, tenantId: string, tables: readonly ResolvedTable[], samples: readonly string[]): Promise<{ hits: number }> {
  const { router } = internalsOf(domicile)
  let hits = 0
  for (const where of router.stores) {
    hits += await router.withRegionAdmin(where, async (s) => {
      let n = 0
      for (const t of tables) n += await countHits(s, t, samples, tenantId)
      return n
    })
  }
  return { hits }
}

/** The tenant's audit records in every region and the control plane: detail fields, value fields, sample hits. */
async function checkAudit(domicile: Domicile, tenantId: string, samples: readonly string[]): Promise<{ stores: number; records: number; keys: string[]; valueFields: string[]; hits: number }> {
  const { router, controlPlane } = internalsOf(domicile)
  const keys = new Set<string>()
  let records = 0
  let hits = 0
  const inspect = async (s: StoreSession, table: 'domicile_audit' | 'domicile_control_audit'): Promise<void> => {
    const c = await s.query<{ n: string | number }>(`SELECT count(*) AS n FROM ${table} WHERE tenant_id = $1`, [tenantId])
    records += Number(c.rows[0]?.n ?? 0)
    const k = await s.query<{ k: string }>(`SELECT DISTINCT jsonb_object_keys(detail) AS k FROM ${table} WHERE tenant_id = $1 AND jsonb_typeof(detail) = 'object'`, [tenantId])
    for (const row of k.rows) keys.add(row.k)
    for (const sample of samples) {
      const h = await s.query<{ n: string | number }>(
        `SELECT count(*) AS n FROM ${table} WHERE tenant_id = $1 AND strpos(concat_ws(chr(31), type, outcome, actor, detail::text), $2) > 0`, [tenantId, sample])
      hits += Number(h.rows[0]?.n ?? 0)
    }
  }
  for (const where of router.stores) await router.withRegionAdmin(where, (s) => inspect(s, 'domicile_audit'))
  await controlPlane.withSession((s) => inspect(s, 'domicile_control_audit'), { role: 'owner' })
  const sorted = [...keys].sort()
  return { stores: router.stores.length + 1, records, keys: sorted, valueFields: sorted.filter((k) => (VALUE_FIELDS as readonly string[]).includes(k.toLowerCase())), hits }
}

function prefixed(prefix: string, counts: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(counts).map(([k, v]) => [`${prefix}${k}`, v]))
}
