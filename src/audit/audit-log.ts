/**
 * The audit log's public functions, for src/index.ts: chain verification (audit-chain-verify.ts)
 * and a tenant's recent records (audit-tail.ts).
 */
export { verifyAuditChains, type AuditVerification, type ChainVerification, type ChainBreak, type ChainProblem, type VerifyOptions } from './audit-chain-verify.js'
export { auditTail, type AuditTail, type AuditTailRecord } from './audit-tail.js'
