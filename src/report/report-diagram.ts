/**
 * The residency report's diagram, as inline SVG (no external references): tenant → region → store;
 * who holds the key-encryption key (us / the customer's key in our KMS / the customer's own
 * service), the custody chain down to the encrypted fields; and what sits in the region as globally
 * replicated reference data. Every value is escaped and cut to fit its box.
 */
import { formatDuration, HOLDER_TEXT } from './report-answers.js'
import type { KeyHolder, ResidencyReport } from './residency-report.js'

/** Escapes text for HTML and SVG element content and attribute values. */
export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;')
}

const W = 960
const COL = [20, 350, 680] as const
const BOX_W = 260
const LINE = 17
const CHAR_W = 7.2

/** Cuts `s` to what fits `width` pixels of the diagram's font (cut before escaping, so no entity is split). */
function fit(s: string, width: number): string {
  const max = Math.max(4, Math.floor((width - 20) / CHAR_W))
  const flat = s.replace(/[\r\n\u2028\u2029\t]+/g, ' ')
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`
}

function text(x: number, y: number, s: string, cls: string, width: number): string {
  return `<text x="${x}" y="${y}" class="${cls}">${escapeXml(fit(s, width))}</text>`
}

function box(x: number, y: number, w: number, h: number, cls: string, title: string, lines: readonly string[]): string {
  const out = [`<g class="box ${cls}"><rect x="${x}" y="${y}" width="${w}" height="${h}" rx="8"/>`, text(x + 12, y + 22, title, 'title', w)]
  lines.forEach((l, i) => out.push(text(x + 12, y + 22 + LINE * (i + 1), l, 'line', w)))
  out.push('</g>')
  return out.join('')
}

function arrow(x1: number, y1: number, x2: number, y2: number, label: string, dashed = false): string {
  const mid = (x1 + x2) / 2
  return `<line x1="${x1}" y1="${y1}" x2="${x2 - 4}" y2="${y2}" class="arrow${dashed ? ' dashed' : ''}" marker-end="url(#dr-arrow)"/>` +
    (label ? `<text x="${mid}" y="${y1 - 8}" class="label" text-anchor="middle">${escapeXml(fit(label, x2 - x1 + 40))}</text>` : '')
}

const SHORT_HOLDER: Readonly<Record<KeyHolder, string>> = {
  operator: 'us (KMS)',
  'customer-key-in-operator-kms': 'you, in our KMS (BYOK)',
  'customer-key-service': 'you (HYOK)',
  none: 'nobody',
}

const rows = (n: number | null): string => (n === null ? '? rows' : `${n} row${n === 1 ? '' : 's'}`)

const heightFor = (lines: number) => Math.max(84, 34 + LINE * lines)

const LADDER: ReadonlyArray<{ holder: KeyHolder; title: string; line: string }> = [
  { holder: 'operator', title: 'Us', line: 'a key we manage in our KMS' },
  { holder: 'customer-key-in-operator-kms', title: 'Your key in our KMS', line: 'your material, imported (BYOK)' },
  { holder: 'customer-key-service', title: 'Your own key service', line: 'stays with you (HYOK)' },
]

/**
 * The diagram as one `<svg>` element.
 *
 * @example
 * const svg = residencyDiagram(report) // '<svg xmlns="http://www.w3.org/2000/svg" ...'
 */
export function residencyDiagram(r: ResidencyReport): string {
  const k = r.key
  const s = r.residency.store
  const parts: string[] = []
  const tenantRows = r.tables.filter((t) => t.classification === 'tenant').reduce((n, t) => n + t.rowCount, 0)
  const keyUnusable = k.holder !== 'none' && k.state !== 'enabled'

  // 1. Where the data lives.
  let y = 40
  parts.push(text(20, y - 14, 'Where the data lives', 'heading', W))
  const storeLines = s.driver === 'pglite'
    ? ['embedded PGlite', s.dataDir === null ? '' : `data directory: ${s.dataDir}`]
    : [s.host === null ? 'PostgreSQL' : `PostgreSQL ${s.host}${s.port === null ? '' : `:${s.port}`}`, s.database === null ? '' : `database: ${s.database}`]
  parts.push(box(COL[0], y, BOX_W, 84, 'tenant', 'Tenant', [r.tenant.id, `status: ${r.tenant.status}`]))
  parts.push(box(COL[1], y, BOX_W, 84, 'region', 'Home region', [r.residency.region, `jurisdiction: ${r.residency.jurisdiction ?? 'not set'}`]))
  parts.push(box(COL[2], y, BOX_W, 84, 'store', 'Store', [...storeLines.filter((l) => l !== ''), `${rows(tenantRows)} of this tenant`]))
  parts.push(arrow(COL[0] + BOX_W, y + 42, COL[1], y + 42, 'pinned to'))
  parts.push(arrow(COL[1] + BOX_W, y + 42, COL[2], y + 42, 'stored in'))

  // 2. Who holds the key-encryption key.
  y += 84 + 50
  parts.push(text(20, y - 14, 'Who holds the key-encryption key', 'heading', W))
  LADDER.forEach((l, i) => {
    const active = l.holder === k.holder
    parts.push(box(COL[i]!, y, BOX_W, 56, active ? (keyUnusable ? 'ladder active bad' : 'ladder active') : 'ladder', `${active ? '● ' : ''}${l.title}`, [l.line]))
  })
  if (k.holder === 'none') parts.push(text(20, y + 74, 'No key is bound to this tenant: it has no sealed data.', 'line', W))

  // 3. The custody chain.
  y += 56 + (k.holder === 'none' ? 70 : 50)
  parts.push(text(20, y - 14, 'Custody chain and encrypted fields', 'heading', W))
  const data = k.dataKeys.filter((d) => d.purpose === 'data').length
  const index = k.dataKeys.filter((d) => d.purpose === 'index').length
  const kekLines = k.holder === 'none' ? ['none'] : [
    `held by: ${SHORT_HOLDER[k.holder]}`,
    `${k.providerKind ?? 'provider'}: ${k.provider ?? ''}`,
    `key: ${k.keyReference ?? ''}`,
    ...(k.holderEndpoint ? [`at ${k.holderEndpoint}`] : []),
    `state: ${k.state}`,
  ]
  const fieldLines = r.sensitiveColumns.length === 0 ? ['none declared'] : ['AES-256-GCM per value', ...r.sensitiveColumns.map((c) => `${c.table}.${c.column}${c.search === 'blind-index' ? ' (searchable)' : ''}${c.storage === 'sealed' ? '' : ` [${c.storage}]`}`)]
  const keyLines = [`${data} data key${data === 1 ? '' : 's'}, ${index} index key${index === 1 ? '' : 's'}`, `wrapped, in the ${r.residency.region} store`, `cache TTL: ${formatDuration(r.revocation.cacheTtlMs)}`]
  const h3 = heightFor(Math.max(kekLines.length, fieldLines.length, keyLines.length))
  parts.push(box(COL[0], y, BOX_W, h3, keyUnusable ? 'kek bad' : 'kek', 'Key-encryption key', kekLines))
  parts.push(box(COL[1], y, BOX_W, h3, 'keys', 'Data keys', keyLines))
  parts.push(box(COL[2], y, BOX_W, h3, 'fields', 'Encrypted fields', fieldLines))
  parts.push(arrow(COL[0] + BOX_W, y + 42, COL[1], y + 42, 'wraps'))
  parts.push(arrow(COL[1] + BOX_W, y + 42, COL[2], y + 42, 'seal'))

  // 4. What is replicated globally.
  y += h3 + 50
  parts.push(text(20, y - 14, 'Replicated globally (reference data, never personal)', 'heading', W))
  const cpLines = r.globalTables.length === 0 ? ['no global tables'] : r.globalTables.map((g) => `${g.name}: ${rows(g.rowsInControlPlane)}`)
  const regionLines = r.globalTables.length === 0 ? ['no global tables'] : r.globalTables.map((g) => `${g.name}: ${rows(g.rowsInRegion)}`)
  const h4 = heightFor(Math.max(cpLines.length, regionLines.length))
  parts.push(box(COL[0], y, BOX_W, h4, 'global', 'Control plane (authoritative)', cpLines))
  parts.push(box(COL[2], y, BOX_W, h4, 'global', `Copy in ${r.residency.region}`, regionLines))
  if (r.globalTables.length > 0) {
    const g = r.globalReplication
    const label = g ? `replicated (outbox): version ${g.regionVersion ?? 0} of ${g.latestVersion}` : 'replicated through the outbox'
    parts.push(arrow(COL[0] + BOX_W, y + 42, COL[2], y + 42, label, g !== null && g.lagVersions > 0))
  }
  const height = y + h4 + 20

  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${height}" width="100%" role="img" aria-labelledby="dr-title" class="diagram">` +
    `<title id="dr-title">${escapeXml(`Residency of tenant ${r.tenant.id}: region ${r.residency.region}, key held by ${HOLDER_TEXT[k.holder]}`)}</title>` +
    '<defs><marker id="dr-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" class="arrowhead"/></marker></defs>' +
    parts.join('') + '</svg>'
}
