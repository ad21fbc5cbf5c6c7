/**
 * The xks (HYOK) key provider: a client for the AWS KMS External Key Store proxy API v1 over
 * HTTPS. No vendor dependency: node:crypto and node:https only. The SigV4 signer/verifier and the
 * wire definitions it shares with the reference proxy live in src/xks/ and are re-exported here.
 */

export { createXksKeyProvider, DEFAULT_AWS_PRINCIPAL_ARN, DEFAULT_KMS_KEY_ARN } from './xks-key-provider.js'
export type { XksKeyProvider, XksKeyProviderOptions, XksHealth } from './xks-key-provider.js'
export { signRequest, verifyRequest, deriveSigningKey, XKS_SIGV4_SERVICE, DEFAULT_MAX_CLOCK_SKEW_MS } from '../../../xks/sigv4.js'
export type { SigV4Credentials, SigV4Request, SignOptions, SignedHeaders, VerifyOptions, VerifyResult, VerifyFailure } from '../../../xks/sigv4.js'
export { XKS_API_ROOT, XKS_ERROR_STATUS } from '../../../xks/xks-api.js'
export type { XksErrorName, XksOperation } from '../../../xks/xks-api.js'
export { parseCredentialsFile } from '../../../xks/xks-credentials.js'
