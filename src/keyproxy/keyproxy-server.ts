/**
 * The reference HYOK key proxy: an AWS KMS External Key Store proxy (XKS API v1) a customer runs in
 * their own environment, in front of their own keystore (a directory or a PKCS#11 token).
 *
 * Per request: bounded body read -> SigV4 check (401 AuthenticationFailedException) -> route
 * (404 InvalidUriPathException) -> JSON validation (400 ValidationException) -> keystore. AES-256-GCM
 * runs inside the keystore; key bytes never leave it. The proxy's AAD for the keystore follows the
 * spec's recommendation: u16be(len(aad)) || aad || u8(len(ciphertextMetadata)) || ciphertextMetadata.
 * This proxy never issues ciphertextMetadata, so that length is 0 on encrypt.
 *
 * Plain HTTP only: put TLS in front (a reverse proxy or load balancer) when it leaves the host.
 * The log callback gets request metadata (kmsRequestId etc.), never plaintext, keys or ciphertext.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { DomicileError, isDomicileError } from '../errors.js'
import { verifyRequest, XKS_SIGV4_SERVICE, type VerifyFailure } from '../keys/providers/xks/sigv4.js'
import {
  decodeBase64Strict,
  isValidXksKeyId,
  normalizeUriPrefix,
  XKS_API_ROOT,
  XKS_ERROR_STATUS,
  type XksErrorName,
} from '../keys/providers/xks/xks-api.js'
import type { ProxyKeystore } from './proxy-keystore.js'

/** Default request body limit. The spec's minimums (8192 B AAD + 4300 B plaintext, Base64, plus 2048-char ARNs) need ~21 KB. */
export const DEFAULT_MAX_BODY_BYTES = 32 * 1024
const MAX_PLAINTEXT = 4300
const MAX_AAD = 8192
const MAX_CIPHERTEXT_METADATA = 20
const PROXY_VERSION = '0.1.0'

export interface KeyProxyCredential {
  readonly accessKeyId: string
  readonly secretAccessKey: string
}

/** One line of the proxy's request log. No plaintext, ciphertext or key bytes. */
export interface KeyProxyLogEvent {
  readonly time: string
  readonly operation: 'metadata' | 'encrypt' | 'decrypt' | 'health' | 'unknown'
  readonly keyId?: string
  readonly status: number
  readonly errorName?: XksErrorName
  readonly authFailure?: VerifyFailure
  readonly accessKeyId?: string
  readonly kmsRequestId?: string
  readonly kmsOperation?: string
  readonly awsPrincipalArn?: string
  readonly kmsKeyArn?: string
  readonly durationMs: number
}

export interface KeyProxyOptions {
  /** Listen address. Default 127.0.0.1. */
  readonly host?: string
  /** Listen port; 0 picks a free one. Default 0. */
  readonly port?: number
  /** Path prefix before /kms/xks/v1, e.g. '/xks'. Default ''. */
  readonly uriPrefix?: string
  /** Accepted SigV4 credentials (two at once allow rotation without downtime). */
  readonly credentials: readonly KeyProxyCredential[]
  readonly keystore: ProxyKeystore
  /** If set, only these SigV4 regions are accepted. */
  readonly regions?: readonly string[]
  /** Request body limit in bytes. Default 32 KiB. */
  readonly maxBodyBytes?: number
  readonly log?: (event: KeyProxyLogEvent) => void
}

export interface KeyProxyHandle {
  /** `http://host:port` */
  readonly url: string
  readonly uriPrefix: string
  close(): Promise<void>
}

class XksFault extends Error {
  constructor(readonly errorName: XksErrorName, readonly errorMessage: string, readonly status: number = XKS_ERROR_STATUS[errorName]) {
    super(errorMessage)
  }
}

type Json = Record<string, unknown>

function u16be(n: number): Buffer {
  const b = Buffer.alloc(2)
  b.writeUInt16BE(n)
  return b
}

/** Spec (Encrypt, ciphertextMetadata): AAD for the key manager = u16be(len aad) || aad || u8(len meta) || meta. */
function ekmAad(aad: Buffer, meta: Buffer): Buffer {
  return Buffer.concat([u16be(aad.length), aad, Buffer.from([meta.length]), meta])
}

function str(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= 2048
}

function readMetadata(body: Json, required: readonly string[]): Json {
  const md = body['requestMetadata']
  if (typeof md !== 'object' || md === null || Array.isArray(md)) {
    throw new XksFault('ValidationException', 'requestMetadata is required and must be an object.')
  }
  for (const f of required) {
    if (!str((md as Json)[f])) throw new XksFault('ValidationException', `requestMetadata.${f} is required.`)
  }
  return md as Json
}

function b64Field(body: Json, name: string, opts: { required: boolean; max: number; invalid: XksErrorName }): Buffer | undefined {
  const v = body[name]
  if (v === undefined) {
    if (opts.required) throw new XksFault(opts.invalid, `${name} is required.`)
    return undefined
  }
  const b = decodeBase64Strict(v)
  if (b === undefined) throw new XksFault(opts.invalid, `${name} must be standard Base64.`)
  if (b.length > opts.max) throw new XksFault('UnsupportedOperationException', `${name} is larger than this proxy supports.`)
  return b
}

function keystoreFault(e: unknown): XksFault {
  if (isDomicileError(e)) {
    switch (e.code) {
      case 'ERR_KEY_NOT_FOUND': return new XksFault('KeyNotFoundException', 'The external key was not found.')
      case 'ERR_KEY_REVOKED': return new XksFault('InvalidStateException', 'The external key is disabled.')
      case 'ERR_DECRYPTION_FAILED': return new XksFault('InvalidCiphertextException', 'The ciphertext, IV, AAD or authentication tag is invalid.')
      default: break
    }
  }
  return new XksFault('InternalException', 'The key manager failed to process the request.')
}

/**
 * Starts the proxy on node:http and resolves once it listens.
 *
 * @example
 * const ks = new FileKeystore('/var/lib/keyproxy')
 * const proxy = await startKeyProxy({ port: 8443, uriPrefix: '/xks', credentials: [{ accessKeyId, secretAccessKey }], keystore: ks })
 * // ... later
 * await proxy.close()
 */
export async function startKeyProxy(opts: KeyProxyOptions): Promise<KeyProxyHandle> {
  const prefix = normalizeUriPrefix(opts.uriPrefix)
  /* Precondition: uriPrefix uses only A-Z a-z 0-9 / - _ and fits the 128-character XKS path limit. */
  if (prefix === undefined) {
    throw new DomicileError('ERR_CONFIG_INVALID', 'keyproxy: uriPrefix must look like "/seg/seg" using A-Z a-z 0-9 - _ (no trailing slash).', { path: 'uriPrefix' })
  }
  /* Precondition: at least one SigV4 credential, each with non-empty id and secret. */
  if (!Array.isArray(opts.credentials) || opts.credentials.length === 0 ||
    opts.credentials.some((c) => !str(c?.accessKeyId) || !str(c?.secretAccessKey))) {
    throw new DomicileError('ERR_CONFIG_INVALID', 'keyproxy: at least one credential { accessKeyId, secretAccessKey } is required. Run "domicile keyproxy init".', { path: 'credentials' })
  }
  const secrets = new Map(opts.credentials.map((c) => [c.accessKeyId, c.secretAccessKey] as const))
  const keystore = opts.keystore
  const maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES
  const apiRoot = `${prefix}${XKS_API_ROOT}`
  const keyRoute = `${apiRoot}/keys/`
  const log = opts.log

  function route(path: string): { op: 'health' } | { op: 'metadata' | 'encrypt' | 'decrypt'; keyId: string } | undefined {
    if (path === `${apiRoot}/health`) return { op: 'health' }
    if (!path.startsWith(keyRoute)) return undefined
    const rest = path.slice(keyRoute.length).split('/')
    if (rest.length !== 2) return undefined
    const [keyId, op] = rest as [string, string]
    if (op !== 'metadata' && op !== 'encrypt' && op !== 'decrypt') return undefined
    return { op, keyId }
  }

  async function readBody(req: IncomingMessage): Promise<Buffer> {
    const declared = Number(req.headers['content-length'] ?? 0)
    if (declared > maxBody) throw new XksFault('ValidationException', `Request body exceeds ${maxBody} bytes.`, 413)
    const chunks: Buffer[] = []
    let total = 0
    for await (const chunk of req) {
      total += (chunk as Buffer).length
      if (total > maxBody) throw new XksFault('ValidationException', `Request body exceeds ${maxBody} bytes.`, 413)
      chunks.push(chunk as Buffer)
    }
    return Buffer.concat(chunks)
  }

  async function handleEncrypt(keyId: string, body: Json): Promise<Json> {
    readMetadata(body, ['awsPrincipalArn', 'kmsKeyArn', 'kmsOperation', 'kmsRequestId'])
    if (body['encryptionAlgorithm'] !== 'AES_GCM') throw new XksFault('ValidationException', 'encryptionAlgorithm must be AES_GCM.')
    const cdivAlg = body['ciphertextDataIntegrityValueAlgorithm']
    if (cdivAlg !== undefined && cdivAlg !== 'SHA_256') throw new XksFault('ValidationException', 'ciphertextDataIntegrityValueAlgorithm must be SHA_256.')
    const pt = b64Field(body, 'plaintext', { required: true, max: MAX_PLAINTEXT, invalid: 'ValidationException' })!
    try {
      if (pt.length === 0) throw new XksFault('ValidationException', 'plaintext must not be empty.')
      const aad = b64Field(body, 'additionalAuthenticatedData', { required: false, max: MAX_AAD, invalid: 'ValidationException' }) ?? Buffer.alloc(0)
      const fullAad = ekmAad(aad, Buffer.alloc(0))
      let sealed
      try {
        sealed = await keystore.encrypt(keyId, pt, fullAad)
      } catch (e) {
        throw keystoreFault(e)
      }
      const iv = Buffer.from(sealed.iv)
      const ct = Buffer.from(sealed.ciphertext)
      const tag = Buffer.from(sealed.tag)
      const out: Json = { ciphertext: ct.toString('base64'), initializationVector: iv.toString('base64'), authenticationTag: tag.toString('base64') }
      if (cdivAlg === 'SHA_256') {
        // Appendix C: compute the CDIV first, then prove the output decrypts, then answer.
        out['ciphertextDataIntegrityValue'] = createHash('sha256').update(aad).update(iv).update(ct).update(tag).digest('base64')
        let back: Uint8Array
        try {
          back = await keystore.decrypt(keyId, iv, ct, tag, fullAad)
        } catch {
          throw new XksFault('InternalException', 'The key manager could not verify its own ciphertext.')
        }
        const b = Buffer.from(back.buffer, back.byteOffset, back.byteLength)
        const same = b.length === pt.length && timingSafeEqual(b, pt)
        b.fill(0)
        if (!same) throw new XksFault('InternalException', 'The key manager could not verify its own ciphertext.')
      }
      return out
    } finally {
      pt.fill(0)
    }
  }

  async function handleDecrypt(keyId: string, body: Json): Promise<Json> {
    readMetadata(body, ['awsPrincipalArn', 'kmsKeyArn', 'kmsOperation', 'kmsRequestId'])
    if (body['encryptionAlgorithm'] !== 'AES_GCM') throw new XksFault('ValidationException', 'encryptionAlgorithm must be AES_GCM.')
    const ct = b64Field(body, 'ciphertext', { required: true, max: MAX_PLAINTEXT + MAX_CIPHERTEXT_METADATA, invalid: 'InvalidCiphertextException' })!
    const iv = b64Field(body, 'initializationVector', { required: true, max: 16, invalid: 'InvalidCiphertextException' })!
    const tag = b64Field(body, 'authenticationTag', { required: true, max: 16, invalid: 'InvalidCiphertextException' })!
    const aad = b64Field(body, 'additionalAuthenticatedData', { required: false, max: MAX_AAD, invalid: 'ValidationException' }) ?? Buffer.alloc(0)
    const meta = b64Field(body, 'ciphertextMetadata', { required: false, max: MAX_CIPHERTEXT_METADATA, invalid: 'InvalidCiphertextException' }) ?? Buffer.alloc(0)
    if (ct.length === 0 || (iv.length !== 12 && iv.length !== 16) || tag.length !== 16) {
      throw new XksFault('InvalidCiphertextException', 'The ciphertext, IV, AAD or authentication tag is invalid.')
    }
    let pt: Uint8Array
    try {
      pt = await keystore.decrypt(keyId, iv, ct, tag, ekmAad(aad, meta))
    } catch (e) {
      throw keystoreFault(e)
    }
    const b = Buffer.from(pt.buffer, pt.byteOffset, pt.byteLength)
    const out = { plaintext: b.toString('base64') }
    b.fill(0)
    return out
  }

  async function handleMetadata(keyId: string, body: Json): Promise<Json> {
    readMetadata(body, ['awsPrincipalArn', 'kmsOperation', 'kmsRequestId'])
    let state
    try {
      state = await keystore.getState(keyId)
    } catch (e) {
      throw keystoreFault(e)
    }
    if (state === 'missing') throw new XksFault('KeyNotFoundException', 'The external key was not found.')
    return { keySpec: 'AES_256', keyUsage: ['ENCRYPT', 'DECRYPT'], keyStatus: state === 'enabled' ? 'ENABLED' : 'DISABLED' }
  }

  async function handleHealth(): Promise<Json> {
    // GetHealthStatus does not return ValidationException (spec table), so the body is not checked.
    try {
      await keystore.healthCheck?.()
    } catch {
      throw new XksFault('InternalException', 'The key manager failed its health check.')
    }
    return {
      xksProxyFleetSize: 1,
      xksProxyVendor: 'Domicile',
      xksProxyModel: `Domicile keyproxy ${PROXY_VERSION}`,
      ekmVendor: keystore.vendor,
      ekmFleetDetails: [{ id: 'ekm-1', model: keystore.model, healthStatus: 'ACTIVE' }],
    }
  }

  function send(res: ServerResponse, status: number, body: Json, extra: Record<string, string> = {}): void {
    const text = JSON.stringify(body)
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...extra })
    res.end(text)
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now()
    const rawUrl = req.url ?? '/'
    const q = rawUrl.indexOf('?')
    const path = q === -1 ? rawUrl : rawUrl.slice(0, q)
    const query = q === -1 ? '' : rawUrl.slice(q + 1)
    const r = route(path)
    const ev: { -readonly [K in keyof KeyProxyLogEvent]?: KeyProxyLogEvent[K] } = { operation: r?.op ?? 'unknown' }
    if (r !== undefined && r.op !== 'health' && isValidXksKeyId(r.keyId)) ev.keyId = r.keyId
    let status = 200
    try {
      // Load balancer liveness (spec, "Load balancer health checks"): unauthenticated, says nothing.
      if (req.method === 'GET' && path === '/ping') {
        send(res, 200, { status: 'ok' })
        return
      }
      /* Precondition: XKS API URIs accept POST only (spec: GET -> 405). */
      if (r !== undefined && req.method !== 'POST') {
        status = 405
        send(res, 405, { errorName: 'ValidationException', errorMessage: 'Use POST.' }, { allow: 'POST' })
        return
      }
      const body = await readBody(req)
      const auth = verifyRequest(
        { method: req.method ?? '', path, query, headers: req.headers, body },
        { service: XKS_SIGV4_SERVICE, lookupSecret: (id) => secrets.get(id), ...(opts.regions ? { regions: opts.regions } : {}) },
      )
      if (!auth.ok) {
        ev.authFailure = auth.reason
        throw new XksFault('AuthenticationFailedException', 'The request signature could not be verified.')
      }
      ev.accessKeyId = auth.accessKeyId
      if (r === undefined) throw new XksFault('InvalidUriPathException', 'The URI path is not valid for this proxy.')
      let json: unknown
      try {
        json = JSON.parse(body.toString('utf8'))
      } catch {
        throw new XksFault('ValidationException', 'The request body is not valid JSON.')
      }
      if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new XksFault('ValidationException', 'The request body must be a JSON object.')
      const md = (json as Json)['requestMetadata']
      if (typeof md === 'object' && md !== null) {
        for (const f of ['kmsRequestId', 'kmsOperation', 'awsPrincipalArn', 'kmsKeyArn'] as const) {
          const v = (md as Json)[f]
          if (str(v)) ev[f] = v
        }
      }
      let out: Json
      if (r.op === 'health') {
        out = await handleHealth()
      } else {
        /* Precondition: the external key id is 1-128 of A-Z a-z 0-9 - . _ */
        if (!isValidXksKeyId(r.keyId)) throw new XksFault('ValidationException', 'The external key id is not valid.')
        out = r.op === 'encrypt' ? await handleEncrypt(r.keyId, json as Json)
          : r.op === 'decrypt' ? await handleDecrypt(r.keyId, json as Json)
          : await handleMetadata(r.keyId, json as Json)
      }
      send(res, 200, out)
    } catch (e) {
      const fault = e instanceof XksFault ? e : new XksFault('InternalException', 'Internal error.')
      status = fault.status
      ev.errorName = fault.errorName
      if (!res.headersSent) {
        // After an oversized body the connection holds unread bytes: close it.
        send(res, fault.status, { errorName: fault.errorName, errorMessage: fault.errorMessage }, fault.status === 413 ? { connection: 'close' } : {})
      } else {
        res.destroy()
      }
    } finally {
      ev.status = status
      ev.time = new Date().toISOString()
      ev.durationMs = Math.round((performance.now() - started) * 1000) / 1000
      if (log !== undefined) {
        try {
          log(ev as KeyProxyLogEvent)
        } catch {
          // a failing logger must not take the proxy down
        }
      }
    }
  }

  const server = createServer({ requestTimeout: 10_000, headersTimeout: 5_000 }, (req, res) => {
    void handle(req, res)
  })
  server.keepAliveTimeout = 5_000

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
  const addr = server.address() as AddressInfo
  const hostPart = addr.address.includes(':') ? `[${addr.address}]` : addr.address
  let closing: Promise<void> | undefined
  return {
    url: `http://${hostPart}:${addr.port}`,
    uriPrefix: prefix,
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
      return closing
    },
  }
}
