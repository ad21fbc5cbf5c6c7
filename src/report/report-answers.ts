/**
 * The security-questionnaire answers of a residency report, as plain text filled from the report's
 * live figures: where the data is stored, who holds the keys, what a revocation does, who can read
 * the sensitive fields, what is replicated globally. Markdown and HTML render the same answers
 * (each escapes every value for its own format), so the two never say different things.
 */
import type { ReportOperation, ResidencyReport } from './residency-report.js'

export interface Answer {
  readonly id: string
  readonly question: string
  readonly paragraphs: readonly string[]
  /** Paragraphs that need the reader's attention (plaintext still stored, key revoked, store down). */
  readonly warnings: readonly string[]
}

/** A duration for people: "5 min", "60 s", "750 ms", "0 (no caching)". */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0 (no caching)'
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`
  if (ms % 60_000 === 0) return `${ms / 60_000} min`
  if (ms % 1000 === 0) return `${ms / 1000} s`
  return `${ms} ms`
}

const PROVIDER_KIND_TEXT: Readonly<Record<string, string>> = {
  local: 'Domicile\'s local keystore (key files encrypted under a root key)',
  pkcs11: 'a hardware security module (PKCS#11)',
  'aws-kms': 'AWS KMS',
  xks: 'an external key store proxy (AWS XKS API)',
}

export function providerKindText(kind: string | null): string {
  return (kind !== null ? PROVIDER_KIND_TEXT[kind] : undefined) ?? 'a key service this instance does not describe'
}

/** Who holds the key-encryption key, in one phrase. */
export const HOLDER_TEXT: Readonly<Record<ResidencyReport['key']['holder'], string>> = {
  operator: 'Us: a key we manage in our key service (KMS custody)',
  'customer-key-in-operator-kms': 'Your key material, imported into our key service (BYOK)',
  'customer-key-service': 'You: your own key service (HYOK)',
  none: 'Nobody: no key is bound',
}

function opText(o: ReportOperation | null): string {
  if (o === null) return 'none recorded'
  return o.status === 'done' ? `${o.finishedAt ?? o.startedAt} (operation #${o.id})` : `started ${o.startedAt}, ${o.status} at step "${o.state}" (operation #${o.id})`
}

function list(items: readonly string[]): string {
  if (items.length <= 1) return items.join('')
  return `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`
}

function where(r: ResidencyReport): Answer {
  const s = r.residency.store
  const tenantTables = r.tables.filter((t) => t.classification === 'tenant')
  const rows = tenantTables.reduce((n, t) => n + t.rowCount, 0)
  const p: string[] = []
  const w: string[] = []
  p.push(`Your tenant "${r.tenant.id}" lives in region ${r.residency.region}${r.residency.jurisdiction ? ` (jurisdiction: ${r.residency.jurisdiction})` : ' (no jurisdiction is set for this region in the configuration)'}${r.residency.description ? `: ${r.residency.description}` : ''}. Its rows are stored in ${s.location}.`)
  p.push('Every transaction for your tenant is routed to that store only, and checks the store\'s region stamp before any row is read or written; no other region\'s store is used for your rows. Inside the store, row-level security on the tenant id separates your rows from other tenants\'.')
  p.push(`The store holds ${rows} of your rows in ${tenantTables.length} tenant table${tenantTables.length === 1 ? '' : 's'} (${list(tenantTables.map((t) => `${t.name}: ${t.rowCount}`))}), counted ${r.rowCountsReadAs === 'tenant-scope' ? 'through a tenant scope, under row-level security' : 'with the region owner\'s session, filtered on your tenant id (the tenant is not active, so no tenant scope opens)'}.`)
  p.push(`The tenant directory (your tenant id, home region, key reference and states; no personal data) is kept in the control plane: ${r.controlPlane.store.location}.`)
  const cutover = r.events.moves.find((e) => e.type === 'tenant.move.cutover')
  p.push(cutover
    ? `Your tenant was last moved${typeof cutover.detail.from === 'string' ? ` from ${cutover.detail.from}` : ''}${typeof cutover.detail.to === 'string' ? ` to ${cutover.detail.to}` : ''} at ${cutover.at}${typeof cutover.detail.operation === 'number' ? ` (operation #${cutover.detail.operation})` : ''}; the source region's copy is purged after the move.`
    : 'No move of your tenant between regions is recorded.')
  if (r.tenant.status === 'suspended') w.push('Your tenant is suspended: requests for it are refused until it is resumed.')
  if (r.tenant.status === 'moving') w.push('Your tenant is in the short write freeze of a move between regions.')
  if (s.driver === 'pglite') w.push('The store is embedded PGlite, meant for development and single-trust deployments (one superuser connection; see the README).')
  return { id: 'where', question: 'Where is our data stored?', paragraphs: p, warnings: w }
}

function keys(r: ResidencyReport): Answer {
  const k = r.key
  const p: string[] = []
  const w: string[] = []
  const ref = k.keyReference ?? ''
  const kind = providerKindText(k.providerKind)
  switch (k.holder) {
    case 'operator':
      p.push(`We do. Your key-encryption key is a key we manage in ${kind}; provider "${k.provider}", key reference ${ref}. It wraps your data keys; your sealed fields are encrypted under those data keys.`)
      break
    case 'customer-key-in-operator-kms':
      p.push(`You supplied the key material (bring your own key). It is held in ${kind}, which we call to wrap and unwrap your data keys. You can delete the material (or have it deleted) to make your sealed data unreadable; only re-importing the same material brings it back. Provider "${k.provider}", key reference ${ref}.`)
      break
    case 'customer-key-service':
      p.push(`You do. The key-encryption key stays in your own key service${k.holderEndpoint ? ` at ${k.holderEndpoint}` : ''} (key reference ${ref}), reached through the external key store API. Every unwrap of one of your data keys is a request to your service, which can log and refuse it. We store only your data keys wrapped by that key.`)
      break
    case 'none':
      p.push('No key is bound to your tenant, so it has no sealed data: writes to a sensitive column are refused until a key is bound.')
      break
  }
  if (k.holder !== 'none') {
    p.push(`State now: ${k.state} (Domicile: ${k.directoryState}; the key service answers: ${k.providerState}).`)
    const data = k.dataKeys.filter((d) => d.purpose === 'data')
    const index = k.dataKeys.filter((d) => d.purpose === 'index')
    const active = data.filter((d) => d.status === 'active').map((d) => `#${d.keyNumber}`)
    p.push(`Your home region holds ${data.length} wrapped data key${data.length === 1 ? '' : 's'}${active.length ? ` (active for writes: ${list(active)})` : ''} and ${index.length} wrapped index key${index.length === 1 ? '' : 's'}; only their wrapped form is stored, never the keys themselves.`)
    p.push(`Last rotation of the key-encryption key: ${opText(k.lastRotation.keyEncryptionKey)}. Of the data key: ${opText(k.lastRotation.dataKey)}. Of the blind-index key: ${opText(k.lastRotation.indexKey)}.`)
  }
  if (k.directoryState === 'pending-import') w.push('The key is waiting for its key material: sealed fields can be neither written nor read until it is imported.')
  return { id: 'keys', question: 'Who holds the keys?', paragraphs: p, warnings: w }
}

function revoke(r: ResidencyReport): Answer {
  const k = r.key
  const v = r.revocation
  const p: string[] = []
  const w: string[] = []
  const ttl = formatDuration(v.cacheTtlMs)
  const ttlWhy = v.cacheTtlSource === 'tenant-override' ? 'set for your tenant' : 'the default for your custody level'
  if (k.holder === 'none') {
    p.push('There is no key to revoke: your tenant has no sealed data.')
    return { id: 'revoke', question: 'What happens when we revoke?', paragraphs: p, warnings: w }
  }
  if (k.directoryState === 'destroyed') {
    p.push('Your key was destroyed: every wrapped copy of your data and index keys was deleted from our stores and the key-encryption key destroyed where we hold it. This cannot be undone; your sensitive fields are unrecoverable. "domicile shred verify" issues a signed certificate of the erase.')
    return { id: 'revoke', question: 'What happens when we revoke?', paragraphs: p, warnings: w }
  }
  if (k.directoryState === 'revoked') {
    const rv = k.lastRevocation
    w.push(`Your key is revoked now${rv ? ` (since ${rv.at}${rv.actor ? `, by ${rv.actor}` : ''})` : ''}: your sensitive fields and blind-index search cannot be used. Other columns stay readable; other tenants are not affected. "domicile key restore" undoes it.`)
  } else if (k.state === 'revoked') {
    w.push(`Your key service refuses the key now (it answers: ${k.providerState}): your sensitive fields cannot be read. Enabling the key at the key service undoes it.`)
  }
  p.push(`Our kill switch ("domicile key revoke") marks the key revoked in the tenant directory. Every process refuses it on the push notification at once, or at worst after one poll of the directory (${formatDuration(v.killSwitchPollMs)}), and drops any data key it had cached; scopes already open are refused at their next key use.`)
  if (k.holder === 'customer-key-service') {
    p.push(`Your kill switch: disable the key at your key service, or stop the service. Processes that already unwrapped a data key may keep using it until their cache expires: at most ${ttl} (the data-key cache TTL, ${ttlWhy}). After that every read of a sensitive field and every blind-index search fails.`)
  } else if (k.holder === 'customer-key-in-operator-kms') {
    p.push(`Your kill switch: delete the imported key material (or disable the key). Processes that already unwrapped a data key may keep using it for at most ${ttl} (the data-key cache TTL, ${ttlWhy}); after that your sensitive fields cannot be read until the same material is imported again.`)
  } else {
    p.push(`The key is ours, so a revocation is ours to make on your request. Its effect is bounded by the directory poll above; the data-key cache TTL (${ttl}, ${ttlWhy}) bounds only a change made at the key service itself.`)
  }
  p.push('A revocation makes your sensitive fields and their search unusable; non-sensitive columns and row counts stay readable, and other tenants are not affected. It is reversible ("domicile key restore"); "domicile key destroy" is the irreversible erase.')
  return { id: 'revoke', question: 'What happens when we revoke?', paragraphs: p, warnings: w }
}

function readers(r: ResidencyReport): Answer {
  const p: string[] = []
  const w: string[] = []
  const cols = r.sensitiveColumns
  if (cols.length === 0) {
    p.push('The schema declares no sensitive columns: every column is stored as written, protected by row-level security and the store\'s own access control only.')
  } else {
    p.push(`${cols.length} column${cols.length === 1 ? ' is' : 's are'} sealed with AES-256-GCM under your data keys: ${list(cols.map((c) => `${c.table}.${c.column} (${c.search === 'blind-index' ? `equality search through a ${c.blindIndexBytes}-byte blind index` : 'not searchable'})`))}. Each value is bound to your tenant, its table, column and row, so it cannot be moved to another row or tenant and still open.`)
    const totals = Object.entries(r.events.revealTotals).map(([o, n]) => `${n} ${o}`)
    p.push(`A sealed value is read only through an explicit reveal by application code serving your tenant, with a stated purpose, while your key is usable. Each reveal, allowed or refused, is recorded in your home region's audit log, without the value (${totals.length ? `recorded so far: ${list(totals)}` : 'none recorded so far'}).`)
    p.push(`Database administrators, backups and replicas of the store see only ciphertext and short blind indexes in these columns.${r.key.holder === 'customer-key-service' ? ' Opening a value needs a data key that only your key service can unwrap.' : ''}`)
    for (const c of cols) {
      if (c.storage === 'plaintext') w.push(`${c.table}.${c.column} is declared sensitive but its values are still stored in plaintext: run "domicile migrate encrypt ${c.table}.${c.column}".`)
      if (c.storage === 'encrypting') w.push(`${c.table}.${c.column} is being encrypted in place: rows not yet migrated still hold plaintext.`)
      if (c.storage === 'decrypting') w.push(`${c.table}.${c.column} is being decrypted (the rollback of an encryption): migrated rows hold plaintext.`)
    }
  }
  return { id: 'readers', question: 'Who can read the sensitive fields?', paragraphs: p, warnings: w }
}

function replicated(r: ResidencyReport): Answer {
  const p: string[] = []
  if (r.globalTables.length === 0) {
    p.push(`Nothing of your tenant: the schema has no global tables. Your rows and your wrapped data keys stay in ${r.residency.region}.`)
  } else {
    p.push(`Global tables hold reference data shared by all tenants, never personal data: the schema refuses sensitive columns in them and they have no tenant id. In your region: ${list(r.globalTables.map((g) => `${g.name} (${g.rowsInRegion} rows here${g.rowsInControlPlane === null ? '' : `, ${g.rowsInControlPlane} in the control plane`})`))}.`)
    p.push(`How they get there: ${r.globalTables[0]!.howItGetsThere}`)
    const g = r.globalReplication
    if (g) p.push(g.lagVersions === 0 ? `The copy in ${r.residency.region} is current: it has applied every global change (version ${g.latestVersion}).` : `The copy in ${r.residency.region} has applied version ${g.regionVersion ?? 0} of ${g.latestVersion}; ${g.lagVersions} change(s) are on their way.`)
    p.push(`Your rows and your wrapped data keys are never copied to another region (a move between regions copies them once and purges the source).`)
  }
  const w = r.globalReplication && r.globalReplication.lagVersions > 0
    ? [`The copy of the global tables in ${r.residency.region} is ${r.globalReplication.lagVersions} change(s) behind the control plane (oldest ${Math.round(r.globalReplication.lagSeconds)} s)${r.globalReplication.reachable ? '' : '; the region did not answer'}.`]
    : r.globalTables.filter((g) => g.rowsInControlPlane !== null && g.rowsInControlPlane !== g.rowsInRegion)
      .map((g) => `The copy of ${g.name} in ${r.residency.region} has ${g.rowsInRegion} rows, the control plane's ${g.rowsInControlPlane}: rows were written into one of the stores outside Domicile's replication.`)
  return { id: 'replicated', question: 'What is replicated globally?', paragraphs: p, warnings: w }
}

/** The summary table at the top of the Markdown and HTML reports: label and value. */
export function summaryRows(r: ResidencyReport): Array<[string, string]> {
  const k = r.key
  return [
    ['Tenant', `${r.tenant.id} (${r.tenant.status})`],
    ['Home region', r.residency.region],
    ['Jurisdiction', r.residency.jurisdiction ?? 'not set'],
    ['Store', r.residency.store.location],
    ['Who holds the key-encryption key', HOLDER_TEXT[k.holder]],
    ['Key state', k.holder === 'none' ? 'no key' : `${k.state} (Domicile: ${k.directoryState}; key service: ${k.providerState})`],
    ['Time to revocation', k.holder === 'none' ? '-' : `our kill switch: push, at worst ${formatDuration(r.revocation.killSwitchPollMs)}; at the key service: the data-key cache TTL, ${formatDuration(r.revocation.cacheTtlMs)}`],
    ['Sealed columns', r.sensitiveColumns.map((c) => `${c.table}.${c.column}`).join(', ') || 'none'],
    ['Global tables in the region', r.globalTables.map((g) => g.name).join(', ') || 'none'],
  ]
}

/** The questionnaire answers, in order. */
export function questionnaire(r: ResidencyReport): readonly Answer[] {
  return [where(r), keys(r), revoke(r), readers(r), replicated(r)]
}
