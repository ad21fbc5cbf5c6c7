/**
 * A region supplier maps a region name to that region's store driver, or `false` when the region
 * is not served. Policies are decorators around a supplier (the AWS Encryption SDK's
 * `limitRegions` pattern), not `if`s inside the router.
 */
import type { StoreDriver } from './store-driver.js'

export type RegionSupplier = (region: string) => StoreDriver | false

/** A supplier over a fixed map of drivers. */
export function regionMap(drivers: ReadonlyMap<string, StoreDriver>): RegionSupplier {
  return (region) => drivers.get(region) ?? false
}

/**
 * Serve only the listed regions, e.g. an EU-only deployment:
 * @example
 * ```ts
 * const supplier = limitRegions(regionMap(drivers), ['eu-west-1', 'eu-central-1'])
 * ```
 */
export function limitRegions(supplier: RegionSupplier, allowed: readonly string[]): RegionSupplier {
  const set = new Set(allowed)
  return (region) => (set.has(region) ? supplier(region) : false)
}

/** Refuse the listed regions. */
export function excludeRegions(supplier: RegionSupplier, denied: readonly string[]): RegionSupplier {
  const set = new Set(denied)
  return (region) => (set.has(region) ? false : supplier(region))
}
