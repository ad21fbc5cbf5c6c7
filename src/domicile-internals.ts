/**
 * Package-internal access to a Domicile instance's parts (router, control plane, directory) for
 * the CLI, operations, the demo, benchmarks and tests of this package. Not exported from the
 * package entry point and not reachable through the package's `exports` map: the public API hands
 * out no owner session and nothing that bypasses row-level security.
 */
import type { Domicile, DomicileParts } from './domicile.js'

const parts = new WeakMap<Domicile, DomicileParts>()

/** Called once by the Domicile constructor. */
export function registerParts(d: Domicile, p: DomicileParts): void {
  parts.set(d, p)
}

/** The parts a Domicile instance was built from. */
export function internalsOf(d: Domicile): DomicileParts {
  const p = parts.get(d)
  if (!p) throw new TypeError('not a Domicile instance')
  return p
}
