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
 * Transport: HTTPS with TLS 1.2 or later (the spec's MUST), optionally requiring a client
 * certificate from a given CA (mutual TLS) and with a given subject CN. Plain HTTP only when the
 * caller says `insecureHttp: true` (development behind a TLS-terminating load balancer).
 *
 * Credentials can be replaced while serving (`setCredentials`): the CLI re-reads the credentials
 * file on change and on SIGHUP, so SigV4 credentials rotate without a restart.
 * The log callback gets request metadata (kmsRequestId etc.), never plaintext, keys or ciphertext.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import type { TLSSocket } from 'node:tls'
import { DomicileError, isDomicileError } from '../errors.js'
import { verifyRequest, XKS_SIGV4_SERVICE, type VerifyFailure } from '../xks/sigv4.js'
import {
  decodeBase64Strict,
  isValidXksKeyId,
  normalizeUriPrefix,
  XKS_API_ROOT,
  XKS_ERROR_STATUS,
  XKS_MAX_AAD_BYTES,
  XKS_MAX_CIPHERTEXT_METADATA_BYTES,
  XKS_MAX_PLAINTEXT_BYTES,
  type XksErrorName,
} from '../xks/xks-api.js'
import type { ProxyKeystore, ProxyKeyUsage } from './proxy-keystore.js'

/** Default request body limit. The spec's minimums (8192 B AAD + 4300 B plaintext, Base64, plus 2048-char ARNs) need ~21 KB. */
export const DEFAULT_MAX_BODY_BYTES = 32 * 1024
const MAX_PLAINTEXT = XKS_MAX_PLAINTEXT_BYTES
const MAX_AAD = XKS_MAX_AAD_BYTES
const MAX_CIPHERTEXT_METADATA = XKS_MAX_CIPHERTEXT_METADATA_BYTES
const PROXY_VERSION = '0.2.0'

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

export interface KeyProxyTlsOptions {
  /** PEM server certificate (chain). */
  readonly cert: string
  /** PEM private key of the certificate. */
  readonly key: string
  /** PEM CA certificate(s): when set, every client must present a certificate chained to one of them (mutual TLS). */
  readonly clientCa?: string
  /** With clientCa: the subject CN the client certificate must carry (e.g. cks.kms.eu-west-1.amazonaws.com). */
  readonly clientCommonName?: string
}

export interface KeyProxyOptions {
  /** Listen address. Default 127.0.0.1. */
  readonly host?: string
  /** Listen port; 0 picks a free one. Default 0. */
  readonly port?: number
  /** Path prefix before /kms/xks/v1, e.g. '/xks'. Default ''. */
  readonly uriPrefix?: string
  /** Serve HTTPS with this certificate. Required unless `insecureHttp` is true. */
  readonly tls?: KeyProxyTlsOptions
  /** Serve plain HTTP instead of HTTPS (development only). */
  readonly insecureHttp?: boolean
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
  /** `https://host:port` (`http://` with insecureHttp) */
  readonly url: string
  readonly uriPrefix: string
  /** Replaces the accepted SigV4 credentials; requests already verified are unaffected. */
  setCredentials(credentials: readonly KeyProxyCredential[]): void
  close(): Promise<void>
}

class XksFault extends Error {
  constructor(readonly errorName: XksErrorName, readonly errorMessage: string, readonly status: number = XKS_ERROR_STATUS[errorName]) {
    super(errorMessage)
  }
}

/** A body over the limit: 400 ValidationException, and the connection is closed (unread bytes remain). */
class OversizedBody extends XksFault {
  constructor(max: number) {
    super('ValidationException', `Request body exceeds ${max} bytes.`)
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

/**
 * A Base64 field. Over `max` bytes: UnsupportedOperationException (501) where the spec sets a
 * minimum this proxy meets exactly, ValidationException (400) where the spec sets a hard limit.
 */
function b64Field(body: Json, name: string, opts: { required: boolean; max: number; invalid: XksErrorName; tooBig?: XksErrorName }): Buffer | undefined {
  const v = body[name]
  if (v === undefined) {
    if (opts.required) throw new XksFault(opts.invalid, `${name} is required.`)
    return undefined
  }
  const b = decodeBase64Strict(v)
  if (b === undefined) throw new XksFault(opts.invalid, `${name} must be standard Base64.`)
  if (b.length > opts.max) {
    throw opts.tooBig === 'ValidationException'
      ? new XksFault('ValidationException', `${name} is longer than the XKS API allows.`)
      : new XksFault(opts.tooBig ?? 'UnsupportedOperationException', `${name} is larger than this proxy supports.`)
  }
  return b
}

function keystoreFault(e: unknown): XksFault {
  if (isDomicileError(e)) {
    switch (e.code) {
      case 'ERR_KEY_NOT_FOUND': return new XksFault('KeyNotFoundException', 'The external key was not found.')
      case 'ERR_KEY_REVOKED': return new XksFault('InvalidStateException', 'The external key is disabled.')
      case 'ERR_KEY_INVALID': return new XksFault('InvalidKeyUsageException', 'The external key does not support this operation.')
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
function credentialMap(list: readonly KeyProxyCredential[]): Map<string, string> {
  /* Precondition: at least one SigV4 credential, each with non-empty id and secret. */
  if (!Array.isArray(list) || list.length === 0 || list.some((c) => !str(c?.accessKeyId) || !str(c?.secretAccessKey))) {
    throw new DomicileError('ERR_CONFIG_INVALID', 'keyproxy: at least one credential { accessKeyId, secretAccessKey } is required. Run "domicile keyproxy init".', { path: 'credentials' })
  }
  return new Map(list.map((c) => [c.accessKeyId, c.secretAccessKey] as const))
}

/** The usage a request needs, checked before the keystore runs (CDIV needs DECRYPT too). */
async function requireUsage(keystore: ProxyKeystore, keyId: string, usage: readonly ProxyKeyUsage[]): Promise<void> {
  let info
  try {
    info = await keystore.describe(keyId)
  } catch (e) {
    throw keystoreFault(e)
  }
  if (info === undefined) throw new XksFault('KeyNotFoundException', 'The external key was not found.')
  if (info.state !== 'enabled') throw new XksFault('InvalidStateException', 'The external key is disabled.')
  if (info.keySpec !== 'AES_256' || usage.some((u) => !info.keyUsage.includes(u))) {
    throw new XksFault('InvalidKeyUsageException', 'The external key does not support this operation.')
  }
}

export async function startKeyProxy(opts: KeyProxyOptions): Promise<KeyProxyHandle> {
  const prefix = normalizeUriPrefix(opts.uriPrefix)
  /* Precondition: uriPrefix uses only A-Z a-z 0-9 / - _ and fits the 128-character XKS path limit. */
  if (prefix === undefined) {
    throw new DomicileError('ERR_CONFIG_INVALID', 'keyproxy: uriPrefix must look like "/seg/seg" using A-Z a-z 0-9 - _ (no trailing slash).', { path: 'uriPrefix' })
  }
  /* Precondition: HTTPS with a certificate and key, or plain HTTP asked for explicitly. */
  if (opts.insecureHttp === true ? opts.tls !== undefined : (typeof opts.tls?.cert !== 'string' || typeof opts.tls.key !== 'string')) {
    throw new DomicileError('ERR_CONFIG_INVALID', 'keyproxy: give tls { cert, key } to serve HTTPS, or insecureHttp: true (development only), not both.', { path: 'tls' })
  }
  /* Precondition: a client CN check comes with a client CA. */
  if (opts.tls?.clientCommonName !== undefined && opts.tls.clientCa === undefined) {
    throw new DomicileError('ERR_CONFIG_INVALID', 'keyproxy: clientCommonName needs clientCa (mutual TLS).', { path: 'tls.clientCommonName' })
  }
  let secrets = credentialMap(opts.credentials)
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
    /* Precondition: the request body is bounded (400 ValidationException). */
    if (declared > maxBody) throw new OversizedBody(maxBody)
    const chunks: Buffer[] = []
    let total = 0
    for await (const chunk of req) {
      total += (chunk as Buffer).length
      if (total > maxBody) throw new OversizedBody(maxBody)
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
      // With a CDIV the proxy decrypts its own output: the key must allow DECRYPT as well.
      if (cdivAlg === 'SHA_256') await requireUsage(keystore, keyId, ['ENCRYPT', 'DECRYPT'])
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
    /* Precondition: ciphertextMetadata is at most 20 bytes (400 ValidationException). */
    const meta = b64Field(body, 'ciphertextMetadata', { required: false, max: MAX_CIPHERTEXT_METADATA, invalid: 'InvalidCiphertextException', tooBig: 'ValidationException' }) ?? Buffer.alloc(0)
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
    let info
    try {
      info = await keystore.describe(keyId)
    } catch (e) {
      throw keystoreFault(e)
    }
    if (info === undefined) throw new XksFault('KeyNotFoundException', 'The external key was not found.')
    return { keySpec: info.keySpec, keyUsage: [...info.keyUsage], keyStatus: info.state === 'enabled' ? 'ENABLED' : 'DISABLED' }
  }

  async function handleHealth(body: Json): Promise<Json> {
    // The spec's error table leaves ValidationException out for GetHealthStatus, but its request
    // syntax makes requestMetadata { kmsRequestId, kmsOperation } REQUIRED, and AWS's own test
    // client expects ValidationException without it: a malformed health request is refused.
    readMetadata(body, ['kmsRequestId', 'kmsOperation'])
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
        out = await handleHealth(json as Json)
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
        send(res, fault.status, { errorName: fault.errorName, errorMessage: fault.errorMessage }, fault instanceof OversizedBody ? { connection: 'close' } : {})
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

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    void handle(req, res)
  }
  const timeouts = { requestTimeout: 10_000, headersTimeout: 5_000 }
  const tls = opts.tls
  let server: Server
  if (tls === undefined) {
    server = createHttpServer(timeouts, onRequest)
  } else {
    server = createHttpsServer({
      ...timeouts,
      cert: tls.cert,
      key: tls.key,
      minVersion: 'TLSv1.2',
      ...(tls.clientCa !== undefined ? { ca: tls.clientCa, requestCert: true, rejectUnauthorized: true } : {}),
    }, onRequest)
    const cn = tls.clientCommonName
    if (cn !== undefined) {
      // Spec (Authentication): terminate the connection of a client whose certificate names another subject.
      server.on('secureConnection', (socket: TLSSocket) => {
        const subject = socket.getPeerCertificate()?.subject as { CN?: string | string[] } | undefined
        if (subject?.CN !== cn) socket.destroy()
      })
    }
    // A failed handshake (untrusted client certificate, plain HTTP on the TLS port) is the client's problem.
    server.on('tlsClientError', (_e, socket) => socket.destroy())
  }
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
    url: `${tls === undefined ? 'http' : 'https'}://${hostPart}:${addr.port}`,
    uriPrefix: prefix,
    setCredentials(list: readonly KeyProxyCredential[]): void {
      secrets = credentialMap(list)
    },
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
      return closing
    },
  }
}
