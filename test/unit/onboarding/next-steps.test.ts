/**
 * The next steps onboarding prints: real commands of this CLI, for the tenant at hand, and none
 * when the tenant is ready.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { nextStepsFor } from '../../../src/onboarding/onboard-tenant.js'
import type { TenantRecord } from '../../../src/control-plane/tenant-directory.js'

const tenant = (key: TenantRecord['key'], keyState: TenantRecord['keyState']): TenantRecord => ({
  id: 'acme', region: 'eu-west-1', cell: 'main', status: 'active', key, keyState, cacheTtlMs: null, version: 1, createdAt: new Date(0), updatedAt: new Date(0),
})

test('a ready tenant has no next steps', () => {
  assert.deepEqual(nextStepsFor(tenant({ custody: 'kms', provider: 'local', keyId: 'lk_1' }, 'enabled'), 'enabled', 'local'), [])
  assert.deepEqual(nextStepsFor(tenant({ custody: 'hyok', provider: 'xks:acme', keyId: 'k' }, 'enabled'), 'enabled', 'xks'), [])
})

test('a local BYOK key pending import lists import-job, the openssl wrap and import, for this tenant', () => {
  const steps = nextStepsFor(tenant({ custody: 'byok', provider: 'local', keyId: 'lk_1' }, 'pending-import'), 'pending-import', 'local')
  assert.equal(steps.length, 4)
  assert.equal(steps[0], 'domicile key import-job acme --out ./acme-import')
  assert.match(steps[2]!, /^openssl pkeyutl -encrypt -pubin -inkey \.\/acme-import\/wrapping-key\.pem .* -in key\.bin -out key\.wrapped$/)
  assert.equal(steps[3], 'domicile key import acme --material key.wrapped --token ./acme-import/import-token')
})

test('a BYOK key pending import elsewhere points at the provider\'s tooling and key status', () => {
  const steps = nextStepsFor(tenant({ custody: 'byok', provider: 'aws-kms', keyId: 'arn' }, 'enabled'), 'pending-import', 'aws-kms')
  assert.match(steps.join('\n'), /domicile key status acme/)
})

test('a tenant without a key is told how to bind one', () => {
  assert.deepEqual(nextStepsFor(tenant(null, 'none'), 'none'), ['Tenant "acme" has no key, so it cannot hold sensitive fields. Bind one: domicile tenant bind-key acme --custody kms (or byok / hyok).'])
})
