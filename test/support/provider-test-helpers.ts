/** Small helpers shared by the key-provider integration tests. */
import { strict as assert } from 'node:assert'
import { isDomicileError, type DomicileError } from '../../src/errors.js'
import type { WrapContext } from '../../src/keys/key-provider.js'

/** A wrap context for tests, with fields overridable. */
export const wrapContext = (over: Partial<WrapContext> = {}): WrapContext => ({
  tenantId: 'acme', region: 'eu-west-1', dataKeyId: 'dk-1', purpose: 'data', ...over,
})

/** Awaits a promise that must fail with a DomicileError, and returns that error. */
export async function rejection(p: Promise<unknown>): Promise<DomicileError> {
  let caught: unknown
  try {
    await p
  } catch (e) {
    caught = e
  }
  assert.ok(caught !== undefined, 'expected the call to fail')
  assert.ok(isDomicileError(caught), `expected a DomicileError, got ${String(caught)}`)
  return caught
}
