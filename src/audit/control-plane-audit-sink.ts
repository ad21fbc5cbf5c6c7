/**
 * An audit sink writing into the control plane's audit table (`domicile_control_audit`, through
 * the tenant directory): for key-provider calls made outside any tenant transaction (provisioning,
 * key status, BYOK import). Calls made for a tenant transaction are recorded in the tenant's region
 * instead (src/audit/transaction-audit.ts). Identifiers only, never key material.
 */
import type { AuditEvent, AuditSink } from './audit-sink.js'

/** The part of the tenant directory this sink uses. */
export interface ControlPlaneAudit {
  audit(event: { tenantId?: string; type: string; outcome: string; actor?: string; detail?: Record<string, unknown> }): Promise<void>
}

export function controlPlaneAuditSink(directory: ControlPlaneAudit): AuditSink {
  return {
    record(e: AuditEvent): Promise<void> {
      return directory.audit({
        ...(e.tenantId === undefined ? {} : { tenantId: e.tenantId }),
        type: e.type,
        outcome: e.outcome,
        ...(e.actor === undefined ? {} : { actor: e.actor }),
        detail: { ...(e.detail ?? {}), ...(e.code === undefined ? {} : { code: e.code }), ...(e.region === undefined ? {} : { region: e.region }) },
      })
    },
  }
}
