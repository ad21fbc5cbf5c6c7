/**
 * A residency report built by hand (no stores), for the renderer and signature tests. Values can be
 * overridden per test, e.g. a hostile key reference.
 */
import type { ResidencyReport } from '../../../src/report/residency-report.js'
import { GLOBAL_TABLE_PROVENANCE } from '../../../src/report/residency-report.js'

type Mutable<T> = { -readonly [K in keyof T]: T[K] extends object ? Mutable<T[K]> : T[K] }

export function sampleReport(edit: (r: Mutable<ResidencyReport>) => void = () => undefined): ResidencyReport {
  const r: Mutable<ResidencyReport> = {
    reportId: '00000000-0000-4000-8000-000000000001',
    generatedAt: '2025-01-02T03:04:05.000Z',
    generator: { name: 'domicile', version: '0.1.0' },
    tenant: { id: 'acme', status: 'active', createdAt: '2025-01-01T00:00:00.000Z', updatedAt: '2025-01-01T00:00:00.000Z', directoryVersion: 3 },
    residency: {
      region: 'eu-west-1', jurisdiction: 'EU', description: null, cell: 'main',
      store: { driver: 'postgres', location: 'PostgreSQL at db.eu.example:5432, database app', host: 'db.eu.example', port: 5432, database: 'app', sslmode: 'verify-full', dataDir: null, separateOwnerLogin: true },
    },
    controlPlane: { store: { driver: 'postgres', location: 'PostgreSQL at cp.example:5432, database control', host: 'cp.example', port: 5432, database: 'control', sslmode: null, dataDir: null, separateOwnerLogin: true }, holds: 'The tenant directory.' },
    tables: [
      { name: 'customers', classification: 'tenant', rowCount: 42, sensitiveColumns: ['email', 'tax_id'] },
      { name: 'plans', classification: 'global', rowCount: 3, sensitiveColumns: [] },
    ],
    rowCountsReadAs: 'tenant-scope',
    sensitiveColumns: [
      { table: 'customers', column: 'email', encryption: 'AES-256-GCM', search: 'blind-index', blindIndexBytes: 4, normalize: ['trim', 'lower'], storage: 'sealed' },
      { table: 'customers', column: 'tax_id', encryption: 'AES-256-GCM', search: 'none', blindIndexBytes: null, normalize: [], storage: 'sealed' },
    ],
    key: {
      custody: 'hyok', provider: 'xks:acme', providerKind: 'xks', keyReference: 'acme-kek-1', holder: 'customer-key-service', holderEndpoint: 'https://xks.acme.example:8443',
      directoryState: 'enabled', state: 'enabled', providerState: 'enabled',
      dataKeys: [{ purpose: 'data', keyNumber: 1, status: 'active', createdAt: '2025-01-01T00:00:01.000Z' }, { purpose: 'index', keyNumber: 1, status: 'active', createdAt: '2025-01-01T00:00:01.000Z' }],
      lastRotation: { keyEncryptionKey: null, dataKey: null, indexKey: null },
      lastRevocation: null,
    },
    revocation: { cacheTtlMs: 60_000, cacheTtlSource: 'custody-default', killSwitchPollMs: 500 },
    globalTables: [{ name: 'plans', rowsInRegion: 3, rowsInControlPlane: 3, replication: 'outbox', howItGetsThere: GLOBAL_TABLE_PROVENANCE }],
    globalReplication: { latestVersion: 3, regionVersion: 3, lagVersions: 0, lagSeconds: 0, reachable: true },
    events: {
      limit: 20,
      key: [{ id: 7, at: '2025-01-01T12:00:00.000Z', type: 'key.restore', outcome: 'ok', actor: 'ops', detail: { custody: 'hyok', provider: 'xks:acme' } }],
      moves: [],
      tenant: [{ id: 1, at: '2025-01-01T00:00:00.000Z', type: 'tenant.add', outcome: 'ok', actor: null, detail: { region: 'eu-west-1', custody: 'hyok' } }],
      operations: [],
      reveals: [{ id: 3, at: '2025-01-01T13:00:00.000Z', table: 'customers', column: 'email', purpose: 'support ticket 42', actor: 'alice', outcome: 'ok', code: null }],
      revealTotals: { ok: 1 },
    },
  }
  edit(r)
  return r as ResidencyReport
}
