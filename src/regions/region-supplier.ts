/**
 * A region supplier maps a region's cell to its store driver, or `false` when it is not served.
 * Policies are decorators around a supplier (the AWS Encryption SDK's `limitRegions` pattern), not
 * `if`s inside the router. A region configured with one store has one cell, "main".
 */
import { DEFAULT_CELL } from './placement.js'
import type { StoreDriver } from './store-driver.js'

export type RegionSupplier = (region: string, cell: string) => StoreDriver | false

/**
 * A supplier over a fixed map of drivers, keyed by region (its only cell) or by `region/cell`.
 */
export function regionMap(drivers: ReadonlyMap<string, StoreDriver>): RegionSupplier {
  return (region, cell) => drivers.get(`${region}/${cell}`) ?? (cell === DEFAULT_CELL ? drivers.get(region) : undefined) ?? false
}

/**
 * Serve only the listed regions (every cell of each), e.g. an EU-only deployment:
 * @example
 * ```ts
 * const supplier = limitRegions(regionMap(drivers), ['eu-west-1', 'eu-central-1'])
 * ```
 */
export function limitRegions(supplier: RegionSupplier, allowed: readonly string[]): RegionSupplier {
  const set = new Set(allowed)
  return (region, cell) => (set.has(region) ? supplier(region, cell) : false)
}

/** Refuse the listed regions. */
export function excludeRegions(supplier: RegionSupplier, denied: readonly string[]): RegionSupplier {
  const set = new Set(denied)
  return (region, cell) => (set.has(region) ? false : supplier(region, cell))
}
