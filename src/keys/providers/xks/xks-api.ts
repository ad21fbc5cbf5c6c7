/**
 * The AWS KMS External Key Store (XKS) proxy API v1 on the wire: paths, JSON shapes, error names
 * and their HTTP statuses, and the identifier rules. Shared by the `xks` client and the reference
 * proxy (src/keyproxy), so both read the specification from one place.
 *
 * Source: aws/aws-kms-xksproxy-api-spec, xks_proxy_api_spec.md (last updated Nov 10, 2022).
 */

/** Every XKS v1 path is `{uriPrefix}/kms/xks/v1/...`. */
export const XKS_API_ROOT = '/kms/xks/v1'

export type XksOperation = 'metadata' | 'encrypt' | 'decrypt'

/** The `requestMetadata` object every request carries. Fields are opaque to the proxy. */
export interface XksRequestMetadata {
  readonly awsPrincipalArn?: string
  readonly awsSourceVpc?: string
  readonly awsSourceVpce?: string
  readonly kmsKeyArn?: string
  readonly kmsOperation: string
  readonly kmsRequestId: string
  readonly kmsViaService?: string
}

export interface XksEncryptRequest {
  readonly requestMetadata: XksRequestMetadata
  readonly plaintext: string
  readonly encryptionAlgorithm: 'AES_GCM'
  readonly additionalAuthenticatedData?: string
  readonly ciphertextDataIntegrityValueAlgorithm?: 'SHA_256'
}

export interface XksEncryptResponse {
  readonly ciphertext: string
  readonly ciphertextMetadata?: string
  readonly initializationVector: string
  readonly authenticationTag: string
  readonly ciphertextDataIntegrityValue?: string
}

export interface XksDecryptRequest {
  readonly requestMetadata: XksRequestMetadata
  readonly ciphertext: string
  readonly ciphertextMetadata?: string
  readonly encryptionAlgorithm: 'AES_GCM'
  readonly additionalAuthenticatedData?: string
  readonly initializationVector: string
  readonly authenticationTag: string
}

export interface XksMetadataResponse {
  readonly keySpec: string
  readonly keyUsage: readonly string[]
  readonly keyStatus: 'ENABLED' | 'DISABLED'
}

export interface XksHealthResponse {
  readonly xksProxyFleetSize: number
  readonly xksProxyVendor: string
  readonly xksProxyModel: string
  readonly ekmVendor: string
  readonly ekmFleetDetails: ReadonlyArray<{ readonly id: string; readonly model: string; readonly healthStatus: 'ACTIVE' | 'DEGRADED' | 'UNAVAILABLE' }>
}

/** Error names of the spec's "Error codes" table, with their HTTP status. */
export const XKS_ERROR_STATUS = {
  ValidationException: 400,
  InvalidStateException: 400,
  InvalidCiphertextException: 400,
  InvalidKeyUsageException: 400,
  AuthenticationFailedException: 401,
  AccessDeniedException: 403,
  KeyNotFoundException: 404,
  InvalidUriPathException: 404,
  ThrottlingException: 429,
  UnsupportedOperationException: 501,
  DependencyTimeoutException: 503,
  InternalException: 500,
} as const

export type XksErrorName = keyof typeof XKS_ERROR_STATUS

export function isXksErrorName(s: unknown): s is XksErrorName {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(XKS_ERROR_STATUS, s)
}

/** Error body: `errorName` required; `errorMessage` optional, printable ASCII, under 512 chars. */
export interface XksErrorBody {
  readonly errorName: XksErrorName
  readonly errorMessage?: string
}

/** External key ids: 1-128 of A-Z a-z 0-9 - . _ (spec, "API operations"). */
export const XKS_KEY_ID_PATTERN = /^[A-Za-z0-9._-]{1,128}$/

export function isValidXksKeyId(id: string): boolean {
  return XKS_KEY_ID_PATTERN.test(id)
}

/**
 * URI path prefix (the `<optional-path-prefix>` before /kms/xks/v1): '' or '/seg[/seg...]' of
 * A-Z a-z 0-9 / - _, no trailing slash; with /kms/xks/v1 appended at most 128 characters.
 */
export function normalizeUriPrefix(prefix: string | undefined): string | undefined {
  const p = prefix ?? ''
  if (p === '' || p === '/') return ''
  if (!/^(\/[A-Za-z0-9_-]+)+$/.test(p)) return undefined
  if (p.length + XKS_API_ROOT.length > 128) return undefined
  return p
}

/** The full request path of an operation. */
export function xksPath(uriPrefix: string, op: XksOperation | 'health', keyId?: string): string {
  if (op === 'health') return `${uriPrefix}${XKS_API_ROOT}/health`
  return `${uriPrefix}${XKS_API_ROOT}/keys/${keyId ?? ''}/${op}`
}

const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/** Strict standard Base64 (RFC 4648 section 4) decode; undefined if not canonical Base64. */
export function decodeBase64Strict(s: unknown): Buffer | undefined {
  if (typeof s !== 'string' || !B64.test(s)) return undefined
  const b = Buffer.from(s, 'base64')
  return b.toString('base64') === s ? b : undefined
}
