/**
 * AWS Signature Version 4 (HMAC-SHA256), signer and verifier, on node:crypto only.
 *
 * The XKS proxy API v1 authenticates every request with SigV4 under the service name
 * `kms-xks-proxy` (xks_proxy_api_spec.md, Appendix A). This module is neutral ground shared by both
 * ends: the client (src/keys/providers/xks) signs with `signRequest`; the reference proxy
 * (src/keyproxy) checks with `verifyRequest`, which recomputes the
 * signature, compares in constant time and refuses requests more than five minutes off the clock.
 *
 * Scope: header-based signing (Authorization header), no chunked payloads, no presigned URLs, no
 * session tokens. Paths are taken as they appear on the wire; each segment is decoded once and
 * re-encoded with the RFC 3986 unreserved set, so signer and verifier agree on the canonical URI.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto'

export const SIGV4_ALGORITHM = 'AWS4-HMAC-SHA256'
/** The SigV4 service name of the XKS proxy API. */
export const XKS_SIGV4_SERVICE = 'kms-xks-proxy'
/** Requests more than this far from the verifier's clock fail (spec: 5 minutes either way). */
export const DEFAULT_MAX_CLOCK_SKEW_MS = 5 * 60 * 1000

export interface SigV4Credentials {
  readonly accessKeyId: string
  readonly secretAccessKey: string
}

/** A request as signed: the wire path (no query), the raw query string, headers and exact body. */
export interface SigV4Request {
  readonly method: string
  /** Path as sent on the wire, percent-encoded, starting with '/'. No query string. */
  readonly path: string
  /** Raw query string without the leading '?'; '' or undefined for none. */
  readonly query?: string
  /** Header names in any case. Multi-valued headers may be arrays. */
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>
  readonly body: Uint8Array | string
}

export interface SignOptions {
  readonly credentials: SigV4Credentials
  readonly region: string
  readonly service: string
  /** Signing time; defaults to now. */
  readonly date?: Date
}

export interface SignedHeaders {
  /** The value for the `Authorization` header. */
  readonly authorization: string
  /** The value for the `X-Amz-Date` header (YYYYMMDD'T'HHMMSS'Z'). */
  readonly amzDate: string
  /** Lower-case hex signature. */
  readonly signature: string
}

const te = new TextEncoder()

function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex')
}

function hmac(key: Uint8Array | string, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest()
}

/** RFC 3986 percent-encoding of everything outside the unreserved set, as SigV4 requires. */
export function uriEncode(s: string): string {
  let out = ''
  for (const byte of te.encode(s)) {
    const c = String.fromCharCode(byte)
    if (/[A-Za-z0-9\-._~]/.test(c)) out += c
    else out += '%' + byte.toString(16).toUpperCase().padStart(2, '0')
  }
  return out
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s)
  } catch {
    return s
  }
}

/** Canonical URI: each path segment decoded once and re-encoded (no dot-segment normalisation). */
export function canonicalUri(path: string): string {
  if (path === '' || path === '/') return '/'
  return path.split('/').map((seg) => uriEncode(safeDecode(seg))).join('/')
}

/** Canonical query string: pairs encoded, sorted by name then value, joined with '&'. */
export function canonicalQuery(query: string | undefined): string {
  if (query === undefined || query === '') return ''
  const pairs = query.split('&').filter((p) => p !== '').map((p) => {
    const eq = p.indexOf('=')
    const k = eq === -1 ? p : p.slice(0, eq)
    const v = eq === -1 ? '' : p.slice(eq + 1)
    return [uriEncode(safeDecode(k)), uriEncode(safeDecode(v))] as const
  })
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
  return pairs.map(([k, v]) => `${k}=${v}`).join('&')
}

function headerValue(v: string | readonly string[]): string {
  const parts = typeof v === 'string' ? [v] : v
  return parts.map((s) => s.trim().replace(/\s+/g, ' ')).join(',')
}

function lowerHeaders(headers: SigV4Request['headers']): Map<string, string> {
  const m = new Map<string, string>()
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined) continue
    const name = k.toLowerCase()
    const value = headerValue(v)
    const prev = m.get(name)
    m.set(name, prev === undefined ? value : `${prev},${value}`)
  }
  return m
}

/**
 * Task 1 of SigV4: the canonical request over the given signed header names (lower case).
 * Throws if a signed header is absent from the request.
 */
export function canonicalRequest(req: SigV4Request, signedHeaders: readonly string[]): string {
  const headers = lowerHeaders(req.headers)
  const names = [...signedHeaders].map((h) => h.toLowerCase()).sort()
  const lines = names.map((n) => {
    const v = headers.get(n)
    /* Precondition: every signed header is present on the request. */
    if (v === undefined) throw new Error(`SigV4: signed header ${n} is missing from the request`)
    return `${n}:${v}\n`
  })
  return [
    req.method.toUpperCase(),
    canonicalUri(req.path),
    canonicalQuery(req.query),
    lines.join(''),
    names.join(';'),
    sha256Hex(req.body),
  ].join('\n')
}

/** Task 2: the string to sign. `scope` is `date/region/service/aws4_request`. */
export function stringToSign(amzDate: string, scope: string, canonical: string): string {
  return [SIGV4_ALGORITHM, amzDate, scope, sha256Hex(canonical)].join('\n')
}

/** Task 3: the signing key, HMAC chain over date (YYYYMMDD), region, service and "aws4_request". */
export function deriveSigningKey(secretAccessKey: string, dateStamp: string, region: string, service: string): Buffer {
  const kDate = hmac(`AWS4${secretAccessKey}`, dateStamp)
  const kRegion = hmac(kDate, region)
  const kService = hmac(kRegion, service)
  const kSigning = hmac(kService, 'aws4_request')
  kDate.fill(0)
  kRegion.fill(0)
  kService.fill(0)
  return kSigning
}

/** X-Amz-Date format: YYYYMMDD'T'HHMMSS'Z' in UTC. */
export function formatAmzDate(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '')
}

/** Parses an X-Amz-Date value; undefined if malformed. */
export function parseAmzDate(s: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s)
  if (m === null) return undefined
  const t = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]))
  const d = new Date(t)
  return formatAmzDate(d) === s ? d : undefined
}

function computeSignature(secret: string, amzDate: string, scope: string, region: string, service: string, canonical: string): string {
  const key = deriveSigningKey(secret, amzDate.slice(0, 8), region, service)
  try {
    return createHmac('sha256', key).update(stringToSign(amzDate, scope, canonical), 'utf8').digest('hex')
  } finally {
    key.fill(0)
  }
}

/**
 * Signs a request. Every header in `req.headers` is signed, plus `x-amz-date` (set from `date`).
 * The caller must include `host`. Returns the Authorization and X-Amz-Date header values.
 *
 * @example
 * const h = signRequest(
 *   { method: 'POST', path: '/kms/xks/v1/health', headers: { host: 'xks.example.com' }, body: '{}' },
 *   { credentials: { accessKeyId: 'AKID', secretAccessKey: 'secret' }, region: 'us-east-1', service: 'kms-xks-proxy' },
 * )
 * // fetch(url, { headers: { authorization: h.authorization, 'x-amz-date': h.amzDate, ... } })
 */
export function signRequest(req: SigV4Request, opts: SignOptions): SignedHeaders {
  const amzDate = formatAmzDate(opts.date ?? new Date())
  const headers = { ...req.headers }
  for (const k of Object.keys(headers)) if (k.toLowerCase() === 'x-amz-date') delete headers[k]
  const withDate: SigV4Request = { ...req, headers: { ...headers, 'x-amz-date': amzDate } }
  const signed = [...lowerHeaders(withDate.headers).keys()].sort()
  /* Precondition: the host header is signed (SigV4 requires it). */
  if (!signed.includes('host')) throw new Error('SigV4: the host header must be signed')
  const scope = `${amzDate.slice(0, 8)}/${opts.region}/${opts.service}/aws4_request`
  const canonical = canonicalRequest(withDate, signed)
  const signature = computeSignature(opts.credentials.secretAccessKey, amzDate, scope, opts.region, opts.service, canonical)
  return {
    authorization: `${SIGV4_ALGORITHM} Credential=${opts.credentials.accessKeyId}/${scope}, SignedHeaders=${signed.join(';')}, Signature=${signature}`,
    amzDate,
    signature,
  }
}

/** The parts of a SigV4 Authorization header. */
export interface ParsedAuthorization {
  readonly accessKeyId: string
  readonly dateStamp: string
  readonly region: string
  readonly service: string
  readonly signedHeaders: readonly string[]
  readonly signature: string
}

/** Parses `AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`; undefined if malformed. */
export function parseAuthorization(value: string): ParsedAuthorization | undefined {
  const prefix = `${SIGV4_ALGORITHM} `
  if (!value.startsWith(prefix)) return undefined
  const fields = new Map<string, string>()
  for (const part of value.slice(prefix.length).split(',')) {
    const p = part.trim()
    const eq = p.indexOf('=')
    if (eq <= 0) return undefined
    const k = p.slice(0, eq)
    if (fields.has(k)) return undefined
    fields.set(k, p.slice(eq + 1))
  }
  const credential = fields.get('Credential')
  const signedHeaders = fields.get('SignedHeaders')
  const signature = fields.get('Signature')
  if (credential === undefined || signedHeaders === undefined || signature === undefined || fields.size !== 3) return undefined
  const c = credential.split('/')
  if (c.length !== 5 || c[4] !== 'aws4_request') return undefined
  const [accessKeyId, dateStamp, region, service] = c as [string, string, string, string, string]
  if (accessKeyId === '' || !/^\d{8}$/.test(dateStamp) || region === '' || service === '') return undefined
  if (!/^[0-9a-f]{64}$/.test(signature)) return undefined
  const names = signedHeaders.split(';')
  if (names.some((n) => n === '' || n !== n.toLowerCase())) return undefined
  return { accessKeyId, dateStamp, region, service, signedHeaders: names, signature }
}

export interface VerifyOptions {
  /** Looks up the secret for an access key id; undefined if unknown. */
  readonly lookupSecret: (accessKeyId: string) => string | undefined
  /** Expected service name, e.g. 'kms-xks-proxy'. */
  readonly service: string
  /** If set, the credential scope's region must be one of these. */
  readonly regions?: readonly string[]
  /** Headers that must be among the signed headers (lower case). Default: host, x-amz-date. */
  readonly requiredSignedHeaders?: readonly string[]
  readonly maxClockSkewMs?: number
  /** The verifier's clock; defaults to now. */
  readonly now?: Date
}

/** Why verification failed: safe to log, carries no secret or signature. */
export type VerifyFailure =
  | 'missing-authorization'
  | 'malformed-authorization'
  | 'missing-date'
  | 'malformed-date'
  | 'clock-skew'
  | 'scope-mismatch'
  | 'unsigned-required-header'
  | 'unknown-access-key'
  | 'signature-mismatch'

export type VerifyResult =
  | { readonly ok: true; readonly accessKeyId: string; readonly region: string }
  | { readonly ok: false; readonly reason: VerifyFailure }

// Used to spend the same HMAC work on an unknown access key id as on a known one.
const DUMMY_SECRET = 'domicile-sigv4-unknown-access-key-dummy-secret'

/**
 * Verifies a signed request: recomputes the signature with the secret of the access key id named in
 * the Authorization header, compares in constant time, and checks that X-Amz-Date is within the
 * allowed clock skew and matches the credential scope.
 *
 * @example
 * const r = verifyRequest(req, { service: 'kms-xks-proxy', lookupSecret: (id) => secrets.get(id) })
 * if (!r.ok) respond401(r.reason)
 */
export function verifyRequest(req: SigV4Request, opts: VerifyOptions): VerifyResult {
  const headers = lowerHeaders(req.headers)
  const auth = headers.get('authorization')
  if (auth === undefined || auth === '') return { ok: false, reason: 'missing-authorization' }
  const parsed = parseAuthorization(auth)
  if (parsed === undefined) return { ok: false, reason: 'malformed-authorization' }
  const amzDate = headers.get('x-amz-date')
  if (amzDate === undefined) return { ok: false, reason: 'missing-date' }
  const when = parseAmzDate(amzDate)
  if (when === undefined) return { ok: false, reason: 'malformed-date' }
  const now = (opts.now ?? new Date()).getTime()
  /* Precondition: the request time is within the allowed clock skew (replay protection). */
  if (Math.abs(now - when.getTime()) > (opts.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS)) return { ok: false, reason: 'clock-skew' }
  if (parsed.dateStamp !== amzDate.slice(0, 8) || parsed.service !== opts.service) return { ok: false, reason: 'scope-mismatch' }
  if (opts.regions !== undefined && !opts.regions.includes(parsed.region)) return { ok: false, reason: 'scope-mismatch' }
  const required = opts.requiredSignedHeaders ?? ['host', 'x-amz-date']
  if (!required.every((h) => parsed.signedHeaders.includes(h))) return { ok: false, reason: 'unsigned-required-header' }
  if (parsed.signedHeaders.includes('authorization')) return { ok: false, reason: 'malformed-authorization' }
  if (!parsed.signedHeaders.every((h) => headers.has(h))) return { ok: false, reason: 'malformed-authorization' }

  const secret = opts.lookupSecret(parsed.accessKeyId)
  const scope = `${parsed.dateStamp}/${parsed.region}/${parsed.service}/aws4_request`
  const canonical = canonicalRequest(req, parsed.signedHeaders)
  const expected = Buffer.from(computeSignature(secret ?? DUMMY_SECRET, amzDate, scope, parsed.region, parsed.service, canonical), 'hex')
  const given = Buffer.from(parsed.signature, 'hex')
  const match = expected.length === given.length && timingSafeEqual(expected, given)
  if (secret === undefined) return { ok: false, reason: 'unknown-access-key' }
  if (!match) return { ok: false, reason: 'signature-mismatch' }
  return { ok: true, accessKeyId: parsed.accessKeyId, region: parsed.region }
}
