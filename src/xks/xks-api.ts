/**
 * The AWS KMS External Key Store (XKS) proxy API v1 on the wire: paths, JSON shapes, error names
 * and their HTTP statuses, size limits, the identifier and ARN rules, and the health response
 * check. Neutral ground shared by the `xks` client (src/keys/providers/xks) and the reference proxy
 * (src/keyproxy), so both read the specification from one place and neither imports the other.
 *
 * Source: aws/aws-kms-xksproxy-api-spec, xks_proxy_api_spec.md (last updated Nov 10, 2022).
 */

/** Every XKS v1 path is `{uriPrefix}/kms/xks/v1/...`. */
export const XKS_API_ROOT = '/kms/xks/v1'

export type XksOperation = 'metadata' | 'encrypt' | 'decrypt'

/** The proxy MUST accept plaintext (and ciphertext) of up to this many bytes (spec, Encrypt). */
export const XKS_MAX_PLAINTEXT_BYTES = 4300
/** The proxy MUST accept AAD of up to this many bytes (spec, Encrypt). */
export const XKS_MAX_AAD_BYTES = 8192
/** ciphertextMetadata is at most 20 bytes (spec, Encrypt response). */
export const XKS_MAX_CIPHERTEXT_METADATA_BYTES = 20
/** ARNs in requestMetadata are at most 2048 characters. */
export const XKS_MAX_ARN_CHARS = 2048

/** The only key spec XKS v1 uses for Encrypt/Decrypt. */
export const XKS_KEY_SPEC = 'AES_256'
export type XksKeyUsage = 'ENCRYPT' | 'DECRYPT'
/** GetKeyMetadata health states of an external key manager. */
export const XKS_EKM_HEALTH = ['ACTIVE', 'DEGRADED', 'UNAVAILABLE'] as const

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
  readonly keyUsage: readonly XksKeyUsage[]
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

/**
 * A well-formed ARN: `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`, at most 2048 characters, no
 * whitespace or control characters. Region and account may be empty (IAM ARNs have no region).
 */
const ARN = /^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:(?:\d{12})?:[\x21-\x7e]+$/

export function isWellFormedArn(s: unknown): s is string {
  return typeof s === 'string' && s.length <= XKS_MAX_ARN_CHARS && ARN.test(s)
}

/**
 * Checks a GetHealthStatus response as the spec describes it: xksProxyFleetSize an integer > 0;
 * xksProxyVendor, xksProxyModel and ekmVendor non-empty strings; ekmFleetDetails 1 to 10 entries of
 * { id, model, healthStatus ACTIVE | DEGRADED | UNAVAILABLE }. Returns the first problem, in words
 * safe to show (no values), or undefined if the response is valid.
 */
export function healthResponseProblem(r: unknown): string | undefined {
  if (typeof r !== 'object' || r === null || Array.isArray(r)) return 'is not a JSON object'
  const h = r as Record<string, unknown>
  if (typeof h['xksProxyFleetSize'] !== 'number' || !Number.isInteger(h['xksProxyFleetSize']) || h['xksProxyFleetSize'] < 1) {
    return 'has no xksProxyFleetSize integer greater than zero'
  }
  for (const f of ['xksProxyVendor', 'xksProxyModel', 'ekmVendor'] as const) {
    if (typeof h[f] !== 'string' || h[f] === '') return `has no ${f} string`
  }
  const fleet = h['ekmFleetDetails']
  if (!Array.isArray(fleet) || fleet.length < 1 || fleet.length > 10) return 'does not list 1 to 10 ekmFleetDetails entries'
  for (const e of fleet) {
    if (typeof e !== 'object' || e === null) return 'has an ekmFleetDetails entry that is not an object'
    const d = e as Record<string, unknown>
    if (typeof d['id'] !== 'string' || d['id'] === '' || typeof d['model'] !== 'string' || d['model'] === '') {
      return 'has an ekmFleetDetails entry without id and model strings'
    }
    if (!(XKS_EKM_HEALTH as readonly unknown[]).includes(d['healthStatus'])) {
      return 'has an ekmFleetDetails entry whose healthStatus is not ACTIVE, DEGRADED or UNAVAILABLE'
    }
  }
  return undefined
}
