/**
 * The `xks` key provider (HYOK rung): wraps and unwraps tenant data keys with a key that lives in
 * the customer's own key manager, reached through an AWS KMS External Key Store proxy (XKS proxy API
 * v1, SigV4-signed JSON over HTTPS). Domicile never sees the key-encryption key.
 *
 * Mapping to the spec (src/xks/xks-api.ts):
 * - wrapKey    -> POST {uriPrefix}/kms/xks/v1/keys/{keyId}/encrypt, plaintext = data key,
 *                 additionalAuthenticatedData = encodeWrapContext(context), CDIV SHA_256 requested
 *                 and checked before the wrapped key is handed back.
 * - unwrapKey  -> POST .../decrypt with the same AAD.
 * - keyStatus  -> POST .../metadata: keyStatus ENABLED / DISABLED, and the key must be AES_256 with
 *                 ENCRYPT and DECRYPT in keyUsage (else ERR_KEY_INVALID).
 * - health     -> POST {uriPrefix}/kms/xks/v1/health, the answer checked as the spec describes.
 *
 * Transport (xks-http.ts): HTTPS with TLS 1.2 or later; `http://` endpoints are refused unless
 * `allowInsecureHttp` is set. A private CA or self-signed proxy certificate is trusted through
 * `ca`/`caFile`; a client certificate can be presented for proxies that require mutual TLS.
 * requestMetadata carries well-formed ARNs (`awsPrincipalArn`, `kmsKeyArn`, both configurable).
 *
 * Every call has a deadline: the caller's signal combined with `timeoutMs` (default 250 ms, the
 * budget AWS KMS itself gives a proxy). Errors: InvalidStateException -> ERR_KEY_REVOKED,
 * KeyNotFoundException -> ERR_KEY_NOT_FOUND, InvalidCiphertextException -> DecryptionFailedError,
 * InvalidKeyUsageException -> ERR_KEY_INVALID, everything else (timeouts, refused connections, TLS
 * failures, 5xx, bad signature, malformed answers) -> ERR_KEY_PROVIDER_UNAVAILABLE. Messages name
 * the proxy host and the operation, never bodies, keys or secrets.
 */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import { DecryptionFailedError, DomicileError } from '../../../errors.js'
import {
  encodeWrapContext,
  type KeyProvider,
  type KeyStatus,
  type OpOptions,
  type UnwrapRequest,
  type WrappedKey,
  type WrapRequest,
} from '../../key-provider.js'
import { signRequest, XKS_SIGV4_SERVICE } from '../../../xks/sigv4.js'
import { newestCredential, parseCredentialsFile, type XksCredential } from '../../../xks/xks-credentials.js'
import {
  decodeBase64Strict,
  healthResponseProblem,
  isValidXksKeyId,
  isWellFormedArn,
  isXksErrorName,
  normalizeUriPrefix,
  xksPath,
  XKS_KEY_SPEC,
  XKS_MAX_CIPHERTEXT_METADATA_BYTES,
  type XksEncryptResponse,
  type XksErrorName,
  type XksHealthResponse,
  type XksOperation,
} from '../../../xks/xks-api.js'
import { XksHttp } from './xks-http.js'

export interface XksKeyProviderOptions {
  /** Instance name from config. Default 'xks'. */
  readonly name?: string
  /** Proxy origin, `https://host:port`, no path. `http://` only with `allowInsecureHttp`. */
  readonly endpoint: string
  /** Optional path prefix before /kms/xks/v1, e.g. '/xks'. Default ''. */
  readonly uriPrefix?: string
  /** SigV4 credentials configured at the proxy. Give these or `credentialsFile`. */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string }
  /**
   * A credentials file: the one `domicile keyproxy init` writes (the newest credential is used), or
   * `{"accessKeyId","secretAccessKey"}`. Re-read when it changes (checked at most once a second),
   * so credentials rotated at the proxy are picked up without a restart.
   */
  readonly credentialsFile?: string
  /** SigV4 region in the credential scope, also the region of the default kmsKeyArn. Default 'us-east-1'. */
  readonly region?: string
  /** Per-request deadline in ms. Default 250. */
  readonly timeoutMs?: number
  /** requestMetadata.awsPrincipalArn, a well-formed ARN. Default 'arn:aws:iam::000000000000:role/domicile'. */
  readonly awsPrincipalArn?: string
  /**
   * requestMetadata.kmsKeyArn: an ARN template in which `{keyId}` stands for the external key id.
   * Default 'arn:aws:kms:{region}:000000000000:key/{keyId}' with the SigV4 region filled in.
   */
  readonly kmsKeyArn?: string
  /** Allow a plain `http://` endpoint (development only: SigV4 protects integrity, not secrecy). Default false. */
  readonly allowInsecureHttp?: boolean
  /** PEM certificate(s) to trust for the proxy (its private CA, or its self-signed certificate). */
  readonly ca?: string
  /** A file holding `ca`, e.g. the `DIR/tls/cert.pem` that `domicile keyproxy init` generates. */
  readonly caFile?: string
  /** PEM client certificate and key (or their files), for a proxy that requires mutual TLS. */
  readonly clientCert?: string
  readonly clientKey?: string
  readonly clientCertFile?: string
  readonly clientKeyFile?: string
}

/** Health summary returned by `health()`. */
export type XksHealth = XksHealthResponse

export interface XksKeyProvider extends KeyProvider {
  readonly kind: 'xks'
  /** GetHealthStatus. Throws ERR_KEY_PROVIDER_UNAVAILABLE if the proxy cannot be asked or answers out of spec. */
  health(opts?: OpOptions): Promise<XksHealth>
  /** Closes pooled connections; later calls fail with ERR_CLOSED. */
  close(): Promise<void>
}

export const DEFAULT_AWS_PRINCIPAL_ARN = 'arn:aws:iam::000000000000:role/domicile'
export const DEFAULT_KMS_KEY_ARN = 'arn:aws:kms:{region}:000000000000:key/{keyId}'

/*
 * Wrapped-key blob (what `wrapKey` returns as `ciphertext`, opaque to everyone else):
 *
 *   version (1 byte, 0x01)
 *   ivLen   (1 byte, 12 or 16)  || iv
 *   tagLen  (1 byte, 16)        || tag
 *   metaLen (1 byte, 0..20)     || ciphertextMetadata (vendor bytes some proxies return; usually empty)
 *   ciphertext (the rest; same length as the data key)
 *
 * The AAD is not stored: it is recomputed from the wrap context on unwrap, so a blob moved to
 * another tenant, region or key id does not open.
 */
const BLOB_VERSION = 1
const MAX_CIPHERTEXT_METADATA = XKS_MAX_CIPHERTEXT_METADATA_BYTES

function encodeBlob(iv: Uint8Array, tag: Uint8Array, meta: Uint8Array, ct: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + iv.length + tag.length + meta.length + ct.length)
  let o = 0
  out[o++] = BLOB_VERSION
  out[o++] = iv.length
  out.set(iv, o); o += iv.length
  out[o++] = tag.length
  out.set(tag, o); o += tag.length
  out[o++] = meta.length
  out.set(meta, o); o += meta.length
  out.set(ct, o)
  return out
}

function decodeBlob(blob: Uint8Array): { iv: Buffer; tag: Buffer; meta: Buffer; ct: Buffer } | undefined {
  const b = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength)
  let o = 0
  if (b.length < 4 || b[o++] !== BLOB_VERSION) return undefined
  const ivLen = b[o++]!
  if (ivLen !== 12 && ivLen !== 16) return undefined
  const iv = b.subarray(o, o + ivLen); o += ivLen
  const tagLen = b[o++]
  if (tagLen !== 16) return undefined
  const tag = b.subarray(o, o + tagLen); o += tagLen
  const metaLen = b[o++]
  if (metaLen === undefined || metaLen > MAX_CIPHERTEXT_METADATA) return undefined
  const meta = b.subarray(o, o + metaLen); o += metaLen
  const ct = b.subarray(o)
  if (iv.length !== ivLen || tag.length !== 16 || meta.length !== metaLen || ct.length === 0) return undefined
  return { iv, tag, meta, ct }
}

type OpName = XksOperation | 'health'

/** What went wrong, in words that are safe to show (no values). */
const ERROR_ADVICE: Partial<Record<XksErrorName, string>> = {
  AuthenticationFailedException: 'rejected the SigV4 signature. Check that the access key id and secret match the proxy\'s credentials and that the clocks agree within 5 minutes',
  AccessDeniedException: 'denied the request by its authorization policy. Ask the key holder to allow this principal',
  ValidationException: 'rejected the request as invalid. Check that the proxy implements XKS API v1',
  InvalidUriPathException: 'does not serve this URI path. Check the endpoint and uriPrefix',
  ThrottlingException: 'is throttling requests. Retry later or ask the key holder to raise the limit',
  UnsupportedOperationException: 'does not support this operation',
  DependencyTimeoutException: 'timed out reaching its key manager. Retry later',
  InternalException: 'reported an internal error with its key manager. Retry later',
  InvalidCiphertextException: 'rejected the request as invalid ciphertext',
  InvalidStateException: 'reports the key store is disabled. Ask the key holder to enable it',
}

/** TLS failures a client can fix by configuration, with what to do. */
const TLS_ADVICE: Record<string, string> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: 'presented a self-signed certificate this client does not trust. Set caFile to the proxy\'s certificate (DIR/tls/cert.pem of "domicile keyproxy init")',
  SELF_SIGNED_CERT_IN_CHAIN: 'presented a certificate chain ending in a CA this client does not trust. Set caFile to that CA certificate',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'presented a certificate this client cannot verify. Set caFile to the CA that issued it',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'presented a certificate whose issuer this client does not trust. Set caFile to the CA that issued it',
  CERT_HAS_EXPIRED: 'presented an expired certificate. Renew the proxy\'s certificate',
  ERR_TLS_CERT_ALTNAME_INVALID: 'presented a certificate that does not name this host. Use the host name in the certificate, or reissue it for this host',
}

const KEY_USAGE_ADVICE = 'Domicile needs an AES_256 key allowed to ENCRYPT and DECRYPT; create such a key at the key holder and bind it instead'

function readPem(file: string, path: string, what: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch {
    throw new DomicileError('ERR_CONFIG_INVALID', `xks provider: cannot read ${path} (${what}). Check the path and its permissions.`, { path })
  }
}

interface CredentialSource {
  current(): XksCredential
  /** Re-reads the file if it changed (at most once a second). */
  refresh(): void
}

function fixedCredentials(c: XksCredential): CredentialSource {
  return { current: () => c, refresh: () => undefined }
}

function fileCredentials(file: string): CredentialSource {
  const load = (): XksCredential => {
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch {
      throw new DomicileError('ERR_CONFIG_INVALID', 'xks provider: cannot read the credentials file. Check credentialsFile and its permissions.', { path: 'credentialsFile' })
    }
    const parsed = parseCredentialsFile(text)
    if (!parsed.ok) throw new DomicileError('ERR_CONFIG_INVALID', `xks provider: the credentials file ${parsed.problem}.`, { path: 'credentialsFile' })
    return newestCredential(parsed.credentials)
  }
  const stamp = (): string => {
    try {
      const st = statSync(file)
      return `${st.mtimeMs}:${st.size}:${st.ino}`
    } catch {
      return ''
    }
  }
  let cred = load()
  let seen = stamp()
  let checkedAt = Date.now()
  return {
    current: () => cred,
    refresh: () => {
      const now = Date.now()
      if (now - checkedAt < 1000) return
      checkedAt = now
      const s = stamp()
      if (s === seen || s === '') return
      try {
        cred = load()
        seen = s
      } catch {
        // A half-written or broken file: keep signing with the last good credential.
      }
    },
  }
}

class XksKeyProviderImpl implements XksKeyProvider {
  readonly kind = 'xks' as const
  readonly name: string
  readonly #host: string
  readonly #uriPrefix: string
  readonly #credentials: CredentialSource
  readonly #region: string
  readonly #timeoutMs: number
  readonly #principalArn: string
  readonly #kmsKeyArn: string
  readonly #http: XksHttp
  #closed = false

  constructor(o: XksKeyProviderOptions) {
    let url: URL
    try {
      url = new URL(o.endpoint)
    } catch {
      throw new DomicileError('ERR_CONFIG_INVALID', 'xks provider: endpoint must be an absolute https URL such as https://xks.example.com:443.', { path: 'endpoint' })
    }
    /* Precondition: endpoint is an http(s) origin without path, query or user info. */
    if ((url.protocol !== 'https:' && url.protocol !== 'http:') || (url.pathname !== '/' && url.pathname !== '') ||
      url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
      throw new DomicileError('ERR_CONFIG_INVALID', 'xks provider: endpoint must be an https origin (scheme, host, port) without path or query; put the path prefix in uriPrefix.', { path: 'endpoint' })
    }
    /* Precondition: the endpoint is https, unless allowInsecureHttp is set. */
    if (url.protocol === 'http:' && o.allowInsecureHttp !== true) {
      throw new DomicileError('ERR_CONFIG_INVALID', 'xks provider: endpoint must be https:// (the XKS API requires TLS). For a development proxy on plain HTTP set "allowInsecureHttp": true.', { path: 'endpoint' })
    }
    const prefix = normalizeUriPrefix(o.uriPrefix)
    /* Precondition: uriPrefix uses only A-Z a-z 0-9 / - _ and fits the 128-character XKS path limit. */
    if (prefix === undefined) {
      throw new DomicileError('ERR_CONFIG_INVALID', 'xks provider: uriPrefix must look like "/seg/seg" using A-Z a-z 0-9 - _ (no trailing slash, at most 117 characters).', { path: 'uriPrefix' })
    }
    /* Precondition: credentials are non-empty strings, given inline or in a credentials file (not both). */
    if (o.credentials !== undefined && o.credentialsFile !== undefined) {
      throw new DomicileError('ERR_CONFIG_INVALID', 'xks provider: give credentials or credentialsFile, not both.', { path: 'credentials' })
    }
    if (o.credentialsFile !== undefined) {
      this.#credentials = fileCredentials(o.credentialsFile)
    } else {
      if (typeof o.credentials?.accessKeyId !== 'string' || o.credentials.accessKeyId === '' ||
        typeof o.credentials.secretAccessKey !== 'string' || o.credentials.secretAccessKey === '') {
        throw new DomicileError('ERR_CONFIG_INVALID', 'xks provider: credentials.accessKeyId and credentials.secretAccessKey are required (the SigV4 credentials configured at the proxy), or a credentialsFile.', { path: 'credentials' })
      }
      this.#credentials = fixedCredentials({ accessKeyId: o.credentials.accessKeyId, secretAccessKey: o.credentials.secretAccessKey })
    }
    const timeoutMs = o.timeoutMs ?? 250
    /* Precondition: timeoutMs is a positive integer. */
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
      throw new DomicileError('ERR_CONFIG_INVALID', 'xks provider: timeoutMs must be a positive integer (milliseconds).', { path: 'timeoutMs' })
    }
    const region = o.region ?? 'us-east-1'
    /* Precondition: the SigV4 region is a region name (lower-case letters, digits, dashes). */
    if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(region)) {
      throw new DomicileError('ERR_CONFIG_INVALID', 'xks provider: region must be a region name such as us-east-1.', { path: 'region' })
    }
    const principalArn = o.awsPrincipalArn ?? DEFAULT_AWS_PRINCIPAL_ARN
    /* Precondition: awsPrincipalArn and kmsKeyArn are well-formed ARNs. */
    if (!isWellFormedArn(principalArn)) {
      throw new DomicileError('ERR_CONFIG_INVALID', 'xks provider: awsPrincipalArn must be an ARN such as arn:aws:iam::123456789012:role/domicile.', { path: 'awsPrincipalArn' })
    }
    const kmsKeyArn = (o.kmsKeyArn ?? DEFAULT_KMS_KEY_ARN).replaceAll('{region}', region)
    if (!isWellFormedArn(kmsKeyArn.replaceAll('{keyId}', 'k'.repeat(128)))) {
      throw new DomicileError('ERR_CONFIG_INVALID', 'xks provider: kmsKeyArn must be an ARN template such as arn:aws:kms:eu-west-1:123456789012:key/{keyId}.', { path: 'kmsKeyArn' })
    }
    /* Precondition: ca/caFile, clientCert/clientCertFile, clientKey/clientKeyFile are each given at most once, and a client certificate comes with its key. */
    for (const [inline, file] of [['ca', 'caFile'], ['clientCert', 'clientCertFile'], ['clientKey', 'clientKeyFile']] as const) {
      if (o[inline] !== undefined && o[file] !== undefined) {
        throw new DomicileError('ERR_CONFIG_INVALID', `xks provider: give ${inline} or ${file}, not both.`, { path: file })
      }
    }
    const ca = o.ca ?? (o.caFile !== undefined ? readPem(o.caFile, 'caFile', 'the CA certificate to trust for the proxy') : undefined)
    const clientCert = o.clientCert ?? (o.clientCertFile !== undefined ? readPem(o.clientCertFile, 'clientCertFile', 'the client certificate for mutual TLS') : undefined)
    const clientKey = o.clientKey ?? (o.clientKeyFile !== undefined ? readPem(o.clientKeyFile, 'clientKeyFile', 'the client private key for mutual TLS') : undefined)
    if ((clientCert === undefined) !== (clientKey === undefined)) {
      throw new DomicileError('ERR_CONFIG_INVALID', 'xks provider: a client certificate for mutual TLS needs both clientCertFile and clientKeyFile.', { path: clientCert === undefined ? 'clientCertFile' : 'clientKeyFile' })
    }
    this.name = o.name ?? 'xks'
    this.#host = url.host
    this.#uriPrefix = prefix
    this.#region = region
    this.#timeoutMs = timeoutMs
    this.#principalArn = principalArn
    this.#kmsKeyArn = kmsKeyArn
    this.#http = new XksHttp({
      origin: url,
      ...(ca !== undefined ? { ca } : {}),
      ...(clientCert !== undefined ? { clientCert } : {}),
      ...(clientKey !== undefined ? { clientKey } : {}),
    })
  }

  async wrapKey(req: WrapRequest, opts?: OpOptions): Promise<WrappedKey> {
    this.#checkKeyId(req.keyId)
    const aad = encodeWrapContext(req.context)
    const pt = Buffer.from(req.plaintextKey.buffer, req.plaintextKey.byteOffset, req.plaintextKey.byteLength)
    const body = {
      requestMetadata: this.#metadata('Encrypt', req.keyId),
      plaintext: pt.toString('base64'),
      encryptionAlgorithm: 'AES_GCM',
      additionalAuthenticatedData: Buffer.from(aad).toString('base64'),
      ciphertextDataIntegrityValueAlgorithm: 'SHA_256',
    }
    const res = await this.#call('encrypt', req.keyId, body, opts)
    const r = res as Partial<XksEncryptResponse>
    const ct = decodeBase64Strict(r.ciphertext)
    const iv = decodeBase64Strict(r.initializationVector)
    const tag = decodeBase64Strict(r.authenticationTag)
    const meta = r.ciphertextMetadata === undefined ? Buffer.alloc(0) : decodeBase64Strict(r.ciphertextMetadata)
    const cdiv = decodeBase64Strict(r.ciphertextDataIntegrityValue)
    if (ct === undefined || iv === undefined || tag === undefined || meta === undefined || cdiv === undefined ||
      ct.length !== pt.length || (iv.length !== 12 && iv.length !== 16) || tag.length !== 16 || meta.length > MAX_CIPHERTEXT_METADATA) {
      throw this.#unavailable('encrypt', 'returned a malformed encrypt response. Check that the proxy implements XKS API v1')
    }
    // Appendix C: CDIV = SHA-256(aad || ciphertextMetadata || iv || ciphertext || tag).
    const expected = createHash('sha256').update(aad).update(meta).update(iv).update(ct).update(tag).digest()
    /* Precondition: the proxy's ciphertext data integrity value matches what it returned. */
    if (cdiv.length !== expected.length || !timingSafeEqual(cdiv, expected)) {
      throw this.#unavailable('encrypt', 'returned an encrypt response whose integrity value does not match; the wrapped key was discarded. Retry; if it repeats, report it to the proxy administrator')
    }
    return { keyId: req.keyId, ciphertext: encodeBlob(iv, tag, meta, ct) }
  }

  async unwrapKey(req: UnwrapRequest, opts?: OpOptions): Promise<Uint8Array> {
    this.#checkKeyId(req.keyId)
    const parts = decodeBlob(req.ciphertext)
    /* Precondition: the wrapped key is a well-formed xks blob. */
    if (parts === undefined) throw new DecryptionFailedError()
    const aad = encodeWrapContext(req.context)
    const body = {
      requestMetadata: this.#metadata('Decrypt', req.keyId),
      ciphertext: parts.ct.toString('base64'),
      ...(parts.meta.length > 0 ? { ciphertextMetadata: parts.meta.toString('base64') } : {}),
      encryptionAlgorithm: 'AES_GCM',
      additionalAuthenticatedData: Buffer.from(aad).toString('base64'),
      initializationVector: parts.iv.toString('base64'),
      authenticationTag: parts.tag.toString('base64'),
    }
    const res = await this.#call('decrypt', req.keyId, body, opts)
    const pt = decodeBase64Strict((res as { plaintext?: unknown }).plaintext)
    if (pt === undefined || pt.length !== parts.ct.length) {
      pt?.fill(0)
      throw this.#unavailable('decrypt', 'returned a malformed decrypt response. Check that the proxy implements XKS API v1')
    }
    return new Uint8Array(pt.buffer, pt.byteOffset, pt.byteLength)
  }

  /**
   * GetKeyMetadata. ENABLED -> 'enabled', DISABLED (or InvalidStateException) -> 'disabled';
   * a proxy that cannot be asked -> 'unavailable'. An unknown key throws ERR_KEY_NOT_FOUND; a key
   * that is not AES_256 or not allowed to ENCRYPT and DECRYPT throws ERR_KEY_INVALID.
   */
  async keyStatus(keyId: string, opts?: OpOptions): Promise<KeyStatus> {
    this.#checkKeyId(keyId)
    let res: { keyStatus?: unknown; keySpec?: unknown; keyUsage?: unknown }
    try {
      res = await this.#call('metadata', keyId, { requestMetadata: this.#metadata('DescribeKey', keyId) }, opts)
    } catch (e) {
      if (e instanceof DomicileError && e.code === 'ERR_KEY_REVOKED') return { keyId, state: 'disabled' }
      if (e instanceof DomicileError && e.code === 'ERR_KEY_PROVIDER_UNAVAILABLE') return { keyId, state: 'unavailable' }
      throw e
    }
    if (res.keyStatus !== 'ENABLED' && res.keyStatus !== 'DISABLED') return { keyId, state: 'unavailable' }
    /* Precondition: the external key is AES_256 and allowed to ENCRYPT and DECRYPT. */
    if (res.keySpec !== XKS_KEY_SPEC) {
      throw new DomicileError('ERR_KEY_INVALID', `XKS proxy ${this.#host} reports the external key is not an AES_256 key (metadata). ${KEY_USAGE_ADVICE}.`)
    }
    const usage = Array.isArray(res.keyUsage) ? res.keyUsage : []
    const missing = (['ENCRYPT', 'DECRYPT'] as const).filter((u) => !usage.includes(u))
    if (missing.length > 0) {
      throw new DomicileError('ERR_KEY_INVALID', `XKS proxy ${this.#host} reports the external key may not ${missing.join(' or ')} (metadata). ${KEY_USAGE_ADVICE}.`)
    }
    return { keyId, state: res.keyStatus === 'ENABLED' ? 'enabled' : 'disabled' }
  }

  async health(opts?: OpOptions): Promise<XksHealth> {
    const res = await this.#call('health', undefined, { requestMetadata: { kmsRequestId: randomUUID(), kmsOperation: 'KmsHealthCheck' } }, opts)
    const problem = healthResponseProblem(res)
    /* Precondition: the health response has the fields and ranges the spec requires. */
    if (problem !== undefined) throw this.#unavailable('health', `returned a health response that ${problem}. Check that the proxy implements XKS API v1`)
    const h = res as unknown as XksHealth
    if (h.ekmFleetDetails.every((e) => e.healthStatus === 'UNAVAILABLE')) {
      throw this.#unavailable('health', 'reports every external key manager UNAVAILABLE. Ask the key holder to check their key manager')
    }
    return h
  }

  async close(): Promise<void> {
    this.#closed = true
    this.#http.close()
  }

  #checkKeyId(keyId: string): void {
    if (this.#closed) throw new DomicileError('ERR_CLOSED', `xks provider "${this.name}" is closed; create a new one.`)
    /* Precondition: the key id is a valid XKS external key id. */
    if (typeof keyId !== 'string' || !isValidXksKeyId(keyId)) {
      throw new DomicileError('ERR_KEY_NOT_FOUND', 'No such XKS key: external key ids are 1-128 characters of A-Z a-z 0-9 - . _. Check the key id in the tenant\'s key binding.')
    }
  }

  #metadata(kmsOperation: string, keyId: string): Record<string, string> {
    return {
      awsPrincipalArn: this.#principalArn,
      kmsKeyArn: this.#kmsKeyArn.replaceAll('{keyId}', keyId),
      kmsOperation,
      kmsRequestId: randomUUID(),
    }
  }

  #unavailable(op: OpName, what: string, cause?: unknown): DomicileError {
    return new DomicileError('ERR_KEY_PROVIDER_UNAVAILABLE', `XKS proxy ${this.#host} ${what} (${op}).`, cause === undefined ? undefined : { cause })
  }

  async #call(op: OpName, keyId: string | undefined, body: unknown, opts?: OpOptions): Promise<Record<string, unknown>> {
    if (this.#closed) throw new DomicileError('ERR_CLOSED', `xks provider "${this.name}" is closed; create a new one.`)
    const callerSignal = opts?.signal
    if (callerSignal?.aborted) throw this.#unavailable(op, 'was not asked: the caller\'s deadline had already passed')
    this.#credentials.refresh()
    const credentials = this.#credentials.current()
    const path = xksPath(this.#uriPrefix, op, keyId)
    const payload = JSON.stringify(body)
    const signed = signRequest(
      { method: 'POST', path, headers: { host: this.#host }, body: payload },
      { credentials, region: this.#region, service: XKS_SIGV4_SERVICE },
    )
    const timeout = AbortSignal.timeout(this.#timeoutMs)
    const signal = callerSignal === undefined ? timeout : AbortSignal.any([callerSignal, timeout])

    let status: number
    let text: string
    try {
      ({ status, text } = await this.#http.post(path, {
        host: this.#host,
        'content-type': 'application/json',
        authorization: signed.authorization,
        'x-amz-date': signed.amzDate,
      }, payload, signal))
    } catch (e) {
      if (timeout.aborted) throw this.#unavailable(op, `did not answer within ${this.#timeoutMs} ms. Check that the proxy is running and reachable; the call is safe to retry`)
      if (callerSignal?.aborted) throw this.#unavailable(op, 'did not answer before the caller\'s deadline')
      const code = (e as { code?: unknown })?.code
      if (typeof code === 'string' && TLS_ADVICE[code] !== undefined) throw this.#unavailable(op, `${TLS_ADVICE[code]} [${code}]`)
      const detail = typeof code === 'string' && /^[A-Z0-9_]+$/.test(code) ? ` (${code})` : ''
      throw this.#unavailable(op, `could not be reached${detail}. Check that the proxy is running and the endpoint is right`, e)
    }

    let json: unknown
    try {
      json = JSON.parse(text)
    } catch {
      json = undefined
    }
    if (status === 200) {
      if (typeof json !== 'object' || json === null || Array.isArray(json)) {
        throw this.#unavailable(op, 'returned a response that is not a JSON object. Check that the proxy implements XKS API v1')
      }
      return json as Record<string, unknown>
    }
    const errorName = (json as { errorName?: unknown } | undefined)?.errorName
    if (isXksErrorName(errorName)) {
      if (errorName === 'KeyNotFoundException') {
        throw new DomicileError('ERR_KEY_NOT_FOUND', `XKS proxy ${this.#host} has no such external key (${op}). Check the key id in the tenant's key binding.`)
      }
      if (errorName === 'InvalidStateException' && op !== 'health') {
        throw new DomicileError('ERR_KEY_REVOKED', `XKS proxy ${this.#host} reports the external key is disabled (${op}). The key holder must enable it in their key manager before its data can be read.`)
      }
      if (errorName === 'InvalidKeyUsageException') {
        throw new DomicileError('ERR_KEY_INVALID', `XKS proxy ${this.#host} says the external key does not allow this operation (${op}). ${KEY_USAGE_ADVICE}.`)
      }
      if (errorName === 'InvalidCiphertextException' && op === 'decrypt') throw new DecryptionFailedError()
      throw this.#unavailable(op, `${ERROR_ADVICE[errorName] ?? 'returned an error'} [${errorName}, HTTP ${status}]`)
    }
    throw this.#unavailable(op, `answered HTTP ${status} without an XKS error name. Check the endpoint and that the proxy implements XKS API v1`)
  }
}

/**
 * Creates an `xks` key provider talking to an XKS proxy.
 *
 * @example
 * const xks = createXksKeyProvider({
 *   endpoint: 'https://xks.acme.example:443',
 *   uriPrefix: '/xks',
 *   credentialsFile: '/etc/domicile/acme-xks-credentials.json',
 *   caFile: '/etc/domicile/acme-xks-ca.pem',
 * })
 * const wrapped = await xks.wrapKey({ keyId: 'acme-kek', plaintextKey: new Uint8Array(32), context: { tenantId: 'acme', region: 'eu-west-1', dataKeyId: 'dk1', purpose: 'data' } })
 */
export function createXksKeyProvider(options: XksKeyProviderOptions): XksKeyProvider {
  return new XksKeyProviderImpl(options)
}
