/**
 * The xks (HYOK) key provider: a client for the AWS KMS External Key Store proxy API v1, and the
 * SigV4 signer/verifier it uses. No vendor dependency: node:crypto and the global fetch only.
 */

export { createXksKeyProvider } from './xks-key-provider.js'
export type { XksKeyProvider, XksKeyProviderOptions, XksHealth } from './xks-key-provider.js'
export { signRequest, verifyRequest, deriveSigningKey, XKS_SIGV4_SERVICE, DEFAULT_MAX_CLOCK_SKEW_MS } from './sigv4.js'
export type { SigV4Credentials, SigV4Request, SignOptions, SignedHeaders, VerifyOptions, VerifyResult, VerifyFailure } from './sigv4.js'
export { XKS_API_ROOT, XKS_ERROR_STATUS } from './xks-api.js'
export type { XksErrorName, XksOperation } from './xks-api.js'
