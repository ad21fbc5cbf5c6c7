/**
 * The `xks` key provider (HYOK rung): wraps and unwraps tenant data keys with a key that lives in
 * the customer's own key manager, reached through an AWS KMS External Key Store proxy (XKS proxy API
 * v1, SigV4-signed JSON over HTTP). Domicile never sees the key-encryption key.
 *
 * Mapping to the spec (src/keys/providers/xks/xks-api.ts):
 * - wrapKey    -> POST {uriPrefix}/kms/xks/v1/keys/{keyId}/encrypt, plaintext = data key,
 *                 additionalAuthenticatedData = encodeWrapContext(context), CDIV SHA_256 requested
 *                 and checked before the wrapped key is handed back.
 * - unwrapKey  -> POST .../decrypt with the same AAD.
 * - keyStatus  -> POST .../metadata (keyStatus ENABLED / DISABLED).
 * - health     -> POST {uriPrefix}/kms/xks/v1/health.
 *
 * Every call has a deadline: the caller's signal combined with `timeoutMs` (default 250 ms, the
 * budget AWS KMS itself gives a proxy). Errors: InvalidStateException -> ERR_KEY_REVOKED,
 * KeyNotFoundException -> ERR_KEY_NOT_FOUND, InvalidCiphertextException -> DecryptionFailedError,
 * everything else (timeouts, refused connections, 5xx, bad signature, malformed answers) ->
 * ERR_KEY_PROVIDER_UNAVAILABLE. Messages name the proxy host and the operation, never bodies or keys.
 *
 * Uses the global fetch (undici), which keeps connections alive between calls.
 */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto'
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
import { signRequest, XKS_SIGV4_SERVICE } from './sigv4.js'
import {
  decodeBase64Strict,
  isValidXksKeyId,
  isXksErrorName,
  normalizeUriPrefix,
  xksPath,
  type XksEncryptResponse,
  type XksErrorName,
  type XksHealthResponse,
  type XksOperation,
} from './xks-api.js'

export interface XksKeyProviderOptions {
  /** Instance name from config. Default 'xks'. */
  readonly name?: string
  /** Proxy origin, `http(s)://host:port`, no path. */
  readonly endpoint: string
  /** Optional path prefix before /kms/xks/v1, e.g. '/xks'. Default ''. */
  readonly uriPrefix?: string
  /** SigV4 credentials configured at the proxy. */
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string }
  /** SigV4 region in the credential scope. Default 'us-east-1'. */
  readonly region?: string
  /** Per-request deadline in ms. Default 250. */
  readonly timeoutMs?: number
  /** Sent as requestMetadata.awsPrincipalArn (for the proxy's logs and authorization). Default 'domicile'. */
  readonly principalArn?: string
}

/** Health summary returned by `health()`. */
export type XksHealth = XksHealthResponse

export interface XksKeyProvider extends KeyProvider {
  readonly kind: 'xks'
  /** GetHealthStatus. Throws ERR_KEY_PROVIDER_UNAVAILABLE if the proxy cannot be asked. */
  health(opts?: OpOptions): Promise<XksHealth>
  /** Marks the provider closed; later calls fail with ERR_CLOSED. */
  close(): Promise<void>
}

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
const MAX_CIPHERTEXT_METADATA = 20

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
  InvalidKeyUsageException: 'says the external key does not allow this operation. Ask the key holder to allow ENCRYPT and DECRYPT',
  ThrottlingException: 'is throttling requests. Retry later or ask the key holder to raise the limit',
  UnsupportedOperationException: 'does not support this operation',
  DependencyTimeoutException: 'timed out reaching its key manager. Retry later',
  InternalException: 'reported an internal error with its key manager. Retry later',
  InvalidCiphertextException: 'rejected the request as invalid ciphertext',
  InvalidStateException: 'reports the key store is disabled. Ask the key holder to enable it',
}

class XksKeyProviderImpl implements XksKeyProvider {
  readonly kind = 'xks' as const
  readonly name: string
  readonly #origin: string
  readonly #host: string
  readonly #uriPrefix: string
  readonly #accessKeyId: string
  readonly #secretAccessKey: string
  readonly #region: string
  readonly #timeoutMs: number
  readonly #principalArn: string
  #closed = false

  constructor(o: XksKeyProviderOptions) {
    let url: URL
    try {
      url = new URL(o.endpoint)
    } catch {
      throw new DomicileError('ERR_CONFIG_INVALID', 'xks provider: endpoint must be an absolute http(s) URL such as https://xks.example.com:443.', { path: 'endpoint' })
    }
    /* Precondition: endpoint is an http(s) origin without path, query or user info. */
    if ((url.protocol !== 'https:' && url.protocol !== 'http:') || (url.pathname !== '/' && url.pathname !== '') ||
      url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
      throw new DomicileError('ERR_CONFIG_INVALID', 'xks provider: endpoint must be an http(s) origin (scheme, host, port) without path or query; put the path prefix in uriPrefix.', { path: 'endpoint' })
    }
    const prefix = normalizeUriPrefix(o.uriPrefix)
    /* Precondition: uriPrefix uses only A-Z a-z 0-9 / - _ and fits the 128-character XKS path limit. */
    if (prefix === undefined) {
      throw new DomicileError('ERR_CONFIG_INVALID', 'xks provider: uriPrefix must look like "/seg/seg" using A-Z a-z 0-9 - _ (no trailing slash, at most 117 characters).', { path: 'uriPrefix' })
    }
    /* Precondition: credentials are non-empty strings. */
    if (typeof o.credentials?.accessKeyId !== 'string' || o.credentials.accessKeyId === '' ||
      typeof o.credentials.secretAccessKey !== 'string' || o.credentials.secretAccessKey === '') {
      throw new DomicileError('ERR_CONFIG_INVALID', 'xks provider: credentials.accessKeyId and credentials.secretAccessKey are required (the SigV4 credentials configured at the proxy).', { path: 'credentials' })
    }
    const timeoutMs = o.timeoutMs ?? 250
    /* Precondition: timeoutMs is a positive integer. */
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
      throw new DomicileError('ERR_CONFIG_INVALID', 'xks provider: timeoutMs must be a positive integer (milliseconds).', { path: 'timeoutMs' })
    }
    this.name = o.name ?? 'xks'
    this.#origin = url.origin
    this.#host = url.host
    this.#uriPrefix = prefix
    this.#accessKeyId = o.credentials.accessKeyId
    this.#secretAccessKey = o.credentials.secretAccessKey
    this.#region = o.region ?? 'us-east-1'
    this.#timeoutMs = timeoutMs
    this.#principalArn = o.principalArn ?? 'domicile'
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
   * a proxy that cannot be asked -> 'unavailable'. An unknown key throws ERR_KEY_NOT_FOUND.
   */
  async keyStatus(keyId: string, opts?: OpOptions): Promise<KeyStatus> {
    this.#checkKeyId(keyId)
    try {
      const res = (await this.#call('metadata', keyId, { requestMetadata: this.#metadata('DescribeKey', keyId) }, opts)) as { keyStatus?: unknown }
      if (res.keyStatus === 'ENABLED') return { keyId, state: 'enabled' }
      if (res.keyStatus === 'DISABLED') return { keyId, state: 'disabled' }
      return { keyId, state: 'unavailable' }
    } catch (e) {
      if (e instanceof DomicileError && e.code === 'ERR_KEY_REVOKED') return { keyId, state: 'disabled' }
      if (e instanceof DomicileError && e.code === 'ERR_KEY_PROVIDER_UNAVAILABLE') return { keyId, state: 'unavailable' }
      throw e
    }
  }

  async health(opts?: OpOptions): Promise<XksHealth> {
    const res = (await this.#call('health', undefined, { requestMetadata: { kmsRequestId: randomUUID(), kmsOperation: 'KmsHealthCheck' } }, opts)) as Partial<XksHealthResponse>
    if (typeof res.xksProxyFleetSize !== 'number' || typeof res.xksProxyVendor !== 'string' || typeof res.xksProxyModel !== 'string' ||
      typeof res.ekmVendor !== 'string' || !Array.isArray(res.ekmFleetDetails)) {
      throw this.#unavailable('health', 'returned a malformed health response. Check that the proxy implements XKS API v1')
    }
    return res as XksHealth
  }

  async close(): Promise<void> {
    this.#closed = true
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
      // Not an AWS ARN: Domicile calls the proxy directly. Identifies the provider and key for the proxy's log.
      kmsKeyArn: `domicile:xks:${this.name}:${keyId}`,
      kmsOperation,
      kmsRequestId: randomUUID(),
    }
  }

  #unavailable(op: OpName, what: string, cause?: unknown): DomicileError {
    return new DomicileError('ERR_KEY_PROVIDER_UNAVAILABLE', `XKS proxy ${this.#host} ${what} (${op}).`, cause === undefined ? undefined : { cause })
  }

  async #call(op: OpName, keyId: string | undefined, body: unknown, opts?: OpOptions): Promise<Record<string, unknown>> {
    const path = xksPath(this.#uriPrefix, op, keyId)
    const payload = JSON.stringify(body)
    const signed = signRequest(
      { method: 'POST', path, headers: { host: this.#host }, body: payload },
      { credentials: { accessKeyId: this.#accessKeyId, secretAccessKey: this.#secretAccessKey }, region: this.#region, service: XKS_SIGV4_SERVICE },
    )
    const callerSignal = opts?.signal
    if (callerSignal?.aborted) throw this.#unavailable(op, 'was not asked: the caller\'s deadline had already passed')
    const timeout = AbortSignal.timeout(this.#timeoutMs)
    const signal = callerSignal === undefined ? timeout : AbortSignal.any([callerSignal, timeout])

    let status: number
    let text: string
    const send = () => fetch(this.#origin + path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: signed.authorization, 'x-amz-date': signed.amzDate },
      body: payload,
      signal,
    })
    try {
      let res: Response
      try {
        res = await send()
      } catch (e) {
        // A pooled keep-alive socket the proxy already closed fails before any response: every XKS
        // operation is safe to repeat, so retry once on a fresh connection within the same deadline.
        const code = (e as { cause?: { code?: unknown } })?.cause?.code
        if (signal.aborted || (code !== 'UND_ERR_SOCKET' && code !== 'ECONNRESET' && code !== 'EPIPE')) throw e
        res = await send()
      }
      status = res.status
      text = await res.text()
    } catch (e) {
      if (timeout.aborted) throw this.#unavailable(op, `did not answer within ${this.#timeoutMs} ms. Check that the proxy is running and reachable; the call is safe to retry`)
      if (callerSignal?.aborted) throw this.#unavailable(op, 'did not answer before the caller\'s deadline')
      const code = (e as { cause?: { code?: unknown } })?.cause?.code
      const detail = typeof code === 'string' && /^[A-Z_]+$/.test(code) ? ` (${code})` : ''
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
 *   credentials: { accessKeyId: 'AKSAMPLEACCESSKEYID234567', secretAccessKey: process.env.XKS_SECRET ?? '' },
 * })
 * const wrapped = await xks.wrapKey({ keyId: 'acme-kek', plaintextKey: new Uint8Array(32), context: { tenantId: 'acme', region: 'eu-west-1', dataKeyId: 'dk1', purpose: 'data' } })
 */
export function createXksKeyProvider(options: XksKeyProviderOptions): XksKeyProvider {
  return new XksKeyProviderImpl(options)
}
