/**
 * Where a tenant's rows live: a region and one of its cells. A region lists one store (its only
 * cell, named "main") or several (cells), each its own PostgreSQL; the directory records each
 * tenant's cell. A cell is a unit of capacity inside one jurisdiction, never a fallback: a tenant
 * is served by exactly one cell, and a cell that is down fails only its own tenants.
 */
import { DomicileError } from '../errors.js'

export { CELL_NAME, DEFAULT_CELL } from '../config/config-types.js'

export interface Placement {
  readonly region: string
  readonly cell: string
}

/** The regions a router knows and the cells of each, in configuration order. */
export type CellMap = ReadonlyMap<string, readonly string[]>

/** A name from input, for a message: quoted, control characters escaped, at most 64 characters. */
export function shown(name: string): string {
  return JSON.stringify(name.length > 64 ? `${name.slice(0, 64)}…` : name)
}

/** A store's name in listings and messages: the region, or `region/cell` when the region has several cells. */
export function storeLabel(p: Placement, cells: CellMap): string {
  return (cells.get(p.region)?.length ?? 1) > 1 ? `${p.region}/${p.cell}` : p.region
}

/** Every store of the map, region by region (each cell once). */
export function allStores(cells: CellMap): Placement[] {
  return [...cells].flatMap(([region, list]) => list.map((cell) => ({ region, cell })))
}

/** ERR_REGION_UNKNOWN for a region the map does not list. */
export function regionUnknown(region: string, cells: CellMap): DomicileError {
  return new DomicileError('ERR_REGION_UNKNOWN', `Region ${shown(region)} is not configured (configured: ${[...cells.keys()].join(', ')}).`)
}

/**
 * The one check that `cell` is one of the region's cells (the region is listed). Throws
 * ERR_REGION_UNKNOWN, or ERR_CELL_UNKNOWN with `advice` appended (what the caller's user should do).
 */
export function checkCell(cells: CellMap, region: string, cell: string, advice?: string): void {
  const list = cells.get(region)
  if (!list) throw regionUnknown(region, cells)
  if (!list.includes(cell)) {
    throw new DomicileError('ERR_CELL_UNKNOWN', `Region ${shown(region)} has no cell named ${shown(cell)} (its cells: ${list.join(', ')}).${advice ? ` ${advice}` : ''}`)
  }
}

/**
 * The cell a tenant goes to: `requested` when given (it must be one of the region's cells), else
 * the cell with the fewest tenants (ties: the first in configuration order), never `exclude` (a
 * moving tenant's own cell). Undefined when `exclude` was the region's only cell.
 */
export function chooseCell(region: string, cells: CellMap, tenantsPerCell: ReadonlyMap<string, number>,
  opts: { readonly requested?: string; readonly exclude?: string } = {}): string | undefined {
  if (opts.requested !== undefined) {
    checkCell(cells, region, opts.requested, `Add it under regions.${region}.cells in the config and run "domicile migrate".`)
    return opts.requested
  }
  const list = cells.get(region)
  if (!list) throw regionUnknown(region, cells)
  let best: string | undefined
  for (const c of list) if (c !== opts.exclude && (best === undefined || (tenantsPerCell.get(c) ?? 0) < (tenantsPerCell.get(best) ?? 0))) best = c
  return best
}
