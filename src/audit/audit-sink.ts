/**
 * Audit sink: where components report security-relevant events.
 *
 * Events carry identifiers only (tenant, region, table, column, row key, key id, purpose, actor,
 * outcome). Never plaintext, key material, ciphertext or query parameter values.
 * The region-local, hash-chained audit log is one sink; tests use an in-memory one.
 */

export type AuditOutcome = 'ok' | 'denied' | 'error'

export interface AuditEvent {
  /** e.g. 'key.wrap', 'key.unwrap', 'key.revoke', 'field.reveal', 'tenant.add' */
  readonly type: string
  readonly tenantId?: string
  readonly region?: string
  readonly outcome: AuditOutcome
  /** Error code when outcome is not 'ok'. */
  readonly code?: string
  readonly actor?: string
  /** Free-form identifiers only. Callers must not put values here. */
  readonly detail?: Readonly<Record<string, string | number | boolean>>
  readonly at?: Date
}

export interface AuditSink {
  record(event: AuditEvent): void | Promise<void>
}

/** Keeps events in memory; for tests and for the CLI's --json echo. */
export class MemoryAuditSink implements AuditSink {
  readonly events: AuditEvent[] = []
  record(event: AuditEvent): void {
    this.events.push({ ...event, at: event.at ?? new Date() })
  }
}

export const noopAuditSink: AuditSink = { record() {} }
