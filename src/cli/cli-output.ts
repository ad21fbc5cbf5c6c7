/**
 * Output of the `domicile` command: JSON for scripts (--json), aligned text for people.
 * Sealed values print as "[sealed]" in both (their own toJSON / toString); byte strings print as
 * \x-hex and bigints as strings, so every result is valid JSON.
 */
import type { TenantRecord } from '../control-plane/tenant-directory.js'

/** JSON.stringify that also handles bigint and byte arrays. */
export function toJson(v: unknown, indent?: number): string {
  return JSON.stringify(v, (_k, x: unknown) => {
    if (typeof x === 'bigint') return x.toString()
    if (x instanceof Uint8Array) return `\\x${Buffer.from(x.buffer, x.byteOffset, x.byteLength).toString('hex')}`
    return x
  }, indent)
}

export function println(line = ''): void {
  process.stdout.write(line + '\n')
}

export function printJson(v: unknown): void {
  println(toJson(v))
}

/** One value as a person reads it: strings raw, dates ISO, everything else JSON. */
export function plain(v: unknown): string {
  if (v === null || v === undefined) return 'null'
  if (typeof v === 'string') return v
  if (v instanceof Date) return v.toISOString()
  if (typeof v === 'object' && typeof (v as { toJSON?: unknown }).toJSON === 'function') return String((v as { toJSON(): unknown }).toJSON())
  return toJson(v) ?? String(v)
}

/**
 * An aligned text table. Columns of numbers ("-" for none) are right-aligned.
 *
 * @example
 * formatTable(['TENANT', 'ROWS'], [['acme', '3']]) // 'TENANT  ROWS\nacme       3'
 */
export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[], indent = ''): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const isNumber = (c: string | undefined): boolean => /^-?\d+(\.\d+)?$/.test(c ?? '')
  const numeric = headers.map((_h, i) => rows.some((r) => isNumber(r[i])) && rows.every((r) => isNumber(r[i]) || r[i] === '-'))
  const line = (cells: readonly string[]): string =>
    indent + cells.map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()
  return [line(headers), ...rows.map(line)].join('\n')
}

/** Key/value lines, keys aligned. */
export function formatFields(entries: ReadonlyArray<readonly [string, unknown]>, indent = ''): string {
  const w = Math.max(0, ...entries.map(([k]) => k.length))
  return entries.map(([k, v]) => `${indent}${k.padEnd(w)}  ${plain(v)}`).join('\n')
}

/** The stable JSON shape of a tenant (`tenant show --json`, `tenant list --json`). */
export interface TenantJson {
  readonly id: string
  readonly region: string
  /** The tenant's cell in its region ("main" for a region with one store). */
  readonly cell: string
  readonly status: string
  readonly custody: string | null
  readonly provider: string | null
  readonly keyId: string | null
  readonly keyState: string
  readonly version: number
  readonly createdAt: string
  readonly updatedAt: string
}

/**
 * `keyState` is the state `domicile key status` reports (Domicile's kill switch and the key
 * provider's own view combined) when the caller looked it up, else the directory's record.
 */
export function tenantJson(t: TenantRecord, keyState: string = t.keyState): TenantJson {
  return {
    id: t.id,
    region: t.region,
    cell: t.cell,
    status: t.status,
    custody: t.key?.custody ?? null,
    provider: t.key?.provider ?? null,
    keyId: t.key?.keyId ?? null,
    keyState,
    version: t.version,
    createdAt: t.createdAt.toISOString(),
    updatedAt: t.updatedAt.toISOString(),
  }
}

/** A tenant as key/value lines. */
export function formatTenant(t: TenantRecord, keyState: string = t.keyState): string {
  const j = tenantJson(t, keyState)
  return formatFields([
    ['id', j.id], ['region', j.region], ['cell', j.cell], ['status', j.status], ['custody', j.custody ?? 'none'],
    ['provider', j.provider ?? '-'], ['key id', j.keyId ?? '-'], ['key state', j.keyState],
    ['version', j.version], ['created', j.createdAt], ['updated', j.updatedAt],
  ])
}

/** Tenants as a table; `keyStates` as in tenantJson (default: the directory's record). */
export function formatTenantTable(ts: readonly TenantRecord[], keyStates: readonly string[] = ts.map((t) => t.keyState)): string {
  if (ts.length === 0) return '(no tenants; add one with "domicile tenant add ID --region R")'
  return formatTable(['TENANT', 'REGION', 'CELL', 'STATUS', 'CUSTODY', 'PROVIDER', 'KEY STATE'],
    ts.map((t, i) => [t.id, t.region, t.cell, t.status, t.key?.custody ?? 'none', t.key?.provider ?? '-', keyStates[i] ?? t.keyState]))
}
