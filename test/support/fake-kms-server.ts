/**
 * A fake AWS KMS for contract tests: a loopback HTTP server speaking the KMS JSON 1.1 wire protocol
 * (POST /, `X-Amz-Target: TrentService.<Operation>`, `Content-Type: application/x-amz-json-1.1`,
 * base64 blobs, errors as HTTP 400 `{"__type": "...", "message": "..."}`).
 *
 * It implements Encrypt, Decrypt, DescribeKey, DisableKey and EnableKey with real AES-256-GCM
 * (the encryption context is authenticated, as in KMS), records every request for shape
 * assertions, and can be told to fail or hang the next calls. It does not check SigV4
 * signatures (it records the Authorization header so tests can check one was sent).
 * This is a stand-in for a cloud service, never for our own code.
 */

import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto'
import { createServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export type FakeKmsKeyState = 'Enabled' | 'Disabled' | 'PendingImport' | 'PendingDeletion' | 'Unavailable'

export interface RecordedKmsRequest {
  /** e.g. 'Encrypt' (the part after 'TrentService.'). */
  readonly operation: string
  readonly method: string
  readonly path: string
  readonly target: string | undefined
  readonly contentType: string | undefined
  readonly authorization: string | undefined
  readonly body: Record<string, unknown>
}

interface FakeKey {
  readonly id: string
  readonly arn: string
  state: FakeKmsKeyState
  readonly material: Buffer
  readonly created: number
}

interface Injected {
  readonly kind: 'fail' | 'hang'
  readonly status?: number
  readonly type?: string
}

class KmsError extends Error {
  constructor(readonly type: string, message: string, readonly status = 400) {
    super(message)
  }
}

const ACCOUNT = '111122223333'
const BLOB_VERSION = 0x01

export class FakeKmsServer {
  readonly requests: RecordedKmsRequest[] = []
  readonly region: string
  readonly #server: Server
  readonly #keys = new Map<string, FakeKey>()
  readonly #injected: Injected[] = []
  readonly #hanging = new Set<ServerResponse>()
  /** Requests whose client went away before we answered (e.g. aborted by a deadline). */
  abortedRequests = 0

  private constructor(server: Server, region: string) {
    this.#server = server
    this.region = region
  }

  /** Start on 127.0.0.1 with an OS-chosen port. */
  static async start(opts: { region?: string } = {}): Promise<FakeKmsServer> {
    let self: FakeKmsServer | undefined
    const server = createServer((req, res) => { void self!.#handle(req, res) })
    self = new FakeKmsServer(server, opts.region ?? 'eu-west-1')
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () => resolve())
    })
    return self
  }

  get endpoint(): string {
    const addr = this.#server.address() as AddressInfo
    return `http://127.0.0.1:${addr.port}`
  }

  /** Admin: create a symmetric key (Enabled unless told otherwise); returns its key id (a UUID). */
  createKey(state: FakeKmsKeyState = 'Enabled'): string {
    const id = randomUUID()
    this.#keys.set(id, { id, arn: this.arn(id), state, material: randomBytes(32), created: Math.floor(Date.now() / 1000) })
    return id
  }

  arn(keyId: string): string {
    return `arn:aws:kms:${this.region}:${ACCOUNT}:key/${keyId}`
  }

  /** Admin: what DisableKey does. */
  disableKey(keyId: string): void {
    this.#key(keyId).state = 'Disabled'
  }

  /** Admin: what EnableKey does. */
  enableKey(keyId: string): void {
    this.#key(keyId).state = 'Enabled'
  }

  setKeyState(keyId: string, state: FakeKmsKeyState): void {
    this.#key(keyId).state = state
  }

  /** The next `count` requests fail with this error type and HTTP status (e.g. ThrottlingException / 400). */
  failNext(count: number, type: string, status = 400): void {
    for (let i = 0; i < count; i++) this.#injected.push({ kind: 'fail', type, status })
  }

  /** The next `count` requests are never answered (until the client gives up or the server closes). */
  hangNext(count: number): void {
    for (let i = 0; i < count; i++) this.#injected.push({ kind: 'hang' })
  }

  requestsFor(operation: string): RecordedKmsRequest[] {
    return this.requests.filter((r) => r.operation === operation)
  }

  async close(): Promise<void> {
    for (const res of this.#hanging) res.destroy()
    this.#server.closeAllConnections()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }

  #key(keyId: string): FakeKey {
    const k = this.#resolve(keyId)
    if (k === undefined) throw new Error(`fake KMS has no key ${keyId}`)
    return k
  }

  #resolve(keyId: unknown): FakeKey | undefined {
    if (typeof keyId !== 'string') return undefined
    const m = /^arn:aws:kms:[^:]+:\d{12}:key\/(.+)$/.exec(keyId)
    return this.#keys.get(m ? m[1]! : keyId)
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    const target = header(req, 'x-amz-target')
    let body: Record<string, unknown> = {}
    try {
      body = chunks.length === 0 ? {} : (JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>)
    } catch {
      body = { __unparseable: true }
    }
    const operation = target?.startsWith('TrentService.') ? target.slice('TrentService.'.length) : ''
    this.requests.push({
      operation,
      method: req.method ?? '',
      path: req.url ?? '',
      target,
      contentType: header(req, 'content-type'),
      authorization: header(req, 'authorization'),
      body,
    })
    const injected = this.#injected.shift()
    if (injected?.kind === 'hang') {
      this.#hanging.add(res)
      res.on('close', () => {
        if (this.#hanging.delete(res)) this.abortedRequests += 1
      })
      return
    }
    try {
      if (injected?.kind === 'fail') throw new KmsError(injected.type ?? 'KMSInternalException', 'injected failure', injected.status)
      if (req.method !== 'POST' || req.url !== '/') throw new KmsError('UnknownOperationException', 'POST / only')
      if (header(req, 'content-type') !== 'application/x-amz-json-1.1') throw new KmsError('SerializationException', 'expected application/x-amz-json-1.1')
      if (body.__unparseable === true) throw new KmsError('SerializationException', 'body is not JSON')
      send(res, 200, this.#dispatch(operation, body))
    } catch (e) {
      if (e instanceof KmsError) send(res, e.status, { __type: e.type, message: e.message })
      else send(res, 500, { __type: 'KMSInternalException', message: 'fake KMS bug' })
    }
  }

  #dispatch(operation: string, body: Record<string, unknown>): Record<string, unknown> {
    switch (operation) {
      case 'Encrypt': return this.#encrypt(body)
      case 'Decrypt': return this.#decrypt(body)
      case 'DescribeKey': {
        const k = this.#found(body.KeyId)
        return {
          KeyMetadata: {
            AWSAccountId: ACCOUNT, KeyId: k.id, Arn: k.arn, CreationDate: k.created, Enabled: k.state === 'Enabled',
            KeyState: k.state, KeyUsage: 'ENCRYPT_DECRYPT', KeySpec: 'SYMMETRIC_DEFAULT', CustomerMasterKeySpec: 'SYMMETRIC_DEFAULT',
            Origin: 'AWS_KMS', KeyManager: 'CUSTOMER', EncryptionAlgorithms: ['SYMMETRIC_DEFAULT'], MultiRegion: false,
          },
        }
      }
      case 'DisableKey': this.#found(body.KeyId).state = 'Disabled'; return {}
      case 'EnableKey': this.#found(body.KeyId).state = 'Enabled'; return {}
      default: throw new KmsError('UnknownOperationException', 'unsupported operation')
    }
  }

  #found(keyId: unknown): FakeKey {
    const k = this.#resolve(keyId)
    if (k === undefined) throw new KmsError('NotFoundException', 'Key does not exist')
    return k
  }

  #usable(k: FakeKey): void {
    if (k.state === 'Disabled') throw new KmsError('DisabledException', `${k.arn} is disabled.`)
    if (k.state !== 'Enabled') throw new KmsError('KMSInvalidStateException', `${k.arn} is ${k.state}`)
  }

  #encrypt(body: Record<string, unknown>): Record<string, unknown> {
    const k = this.#found(body.KeyId)
    this.#usable(k)
    const plaintext = blob(body.Plaintext)
    if (plaintext === undefined || plaintext.length === 0 || plaintext.length > 4096) throw new KmsError('ValidationException', 'Plaintext must be 1 to 4096 bytes')
    const nonce = randomBytes(12)
    const cipher = createCipheriv('aes-256-gcm', k.material, nonce)
    cipher.setAAD(contextAad(body.EncryptionContext))
    const ct = Buffer.concat([cipher.update(plaintext), cipher.final()])
    // Our own blob layout: version || key id (16-byte UUID) || nonce || ciphertext || tag.
    const idBytes = Buffer.from(k.id.replace(/-/g, ''), 'hex')
    const out = Buffer.concat([Buffer.from([BLOB_VERSION]), idBytes, nonce, ct, cipher.getAuthTag()])
    return { CiphertextBlob: out.toString('base64'), KeyId: k.arn, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' }
  }

  #decrypt(body: Record<string, unknown>): Record<string, unknown> {
    const requested = body.KeyId === undefined ? undefined : this.#found(body.KeyId)
    const ct = blob(body.CiphertextBlob)
    if (ct === undefined || ct.length < 1 + 16 + 12 + 16 + 1 || ct[0] !== BLOB_VERSION) throw new KmsError('InvalidCiphertextException', '')
    const hex = ct.subarray(1, 17).toString('hex')
    const id = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
    const k = this.#keys.get(id)
    if (requested !== undefined && (k === undefined || k.id !== requested.id)) throw new KmsError('IncorrectKeyException', 'The key ID in the request does not identify a KMS key that can perform this operation.')
    if (k === undefined) throw new KmsError('InvalidCiphertextException', '')
    this.#usable(k)
    try {
      const decipher = createDecipheriv('aes-256-gcm', k.material, ct.subarray(17, 29))
      decipher.setAAD(contextAad(body.EncryptionContext))
      decipher.setAuthTag(ct.subarray(ct.length - 16))
      const pt = Buffer.concat([decipher.update(ct.subarray(29, ct.length - 16)), decipher.final()])
      return { Plaintext: pt.toString('base64'), KeyId: k.arn, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' }
    } catch {
      throw new KmsError('InvalidCiphertextException', '')
    }
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name]
  return Array.isArray(v) ? v.join(',') : v
}

function blob(v: unknown): Buffer | undefined {
  return typeof v === 'string' ? Buffer.from(v, 'base64') : undefined
}

/** Encryption context as AAD: sorted key/value pairs, JSON. */
function contextAad(ctx: unknown): Buffer {
  const entries = typeof ctx === 'object' && ctx !== null ? Object.entries(ctx as Record<string, unknown>) : []
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return Buffer.from(JSON.stringify(entries), 'utf8')
}

function send(res: ServerResponse, status: number, payload: Record<string, unknown>): void {
  const text = JSON.stringify(payload)
  res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'content-length': Buffer.byteLength(text), 'x-amzn-requestid': randomUUID() })
  res.end(text)
}
