/**
 * The xks provider's HTTP(S) transport: one keep-alive agent per provider, TLS 1.2 or later, the
 * proxy's private CA (or self-signed certificate) trusted through `ca`, an optional client
 * certificate for proxies that require mutual TLS. node:http/node:https only.
 *
 * A request carries the caller's AbortSignal; a pooled keep-alive socket the proxy already closed
 * fails before any response, so a request is repeated once on a fresh connection (not from the
 * pool, which may hold more such sockets) within the same signal (every XKS operation is safe to
 * repeat). Responses are capped in size.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'

export interface XksHttpOptions {
  readonly origin: URL
  /** PEM certificates trusted for the proxy (replaces the system roots when set). */
  readonly ca?: string
  /** PEM client certificate and key, for mutual TLS. */
  readonly clientCert?: string
  readonly clientKey?: string
}

export interface XksHttpResponse {
  readonly status: number
  readonly text: string
}

/** Largest response body read from a proxy (a health answer or a 4300-byte plaintext fits many times). */
const MAX_RESPONSE_BYTES = 256 * 1024

/** Error codes of a reused socket the peer had already closed: safe to retry once. */
const STALE_SOCKET = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED'])

export class XksHttp {
  readonly #origin: URL
  readonly #secure: boolean
  readonly #agent: HttpAgent | HttpsAgent
  /** Same TLS settings, no pooling: the one repeat of a request whose pooled socket was stale. */
  readonly #fresh: HttpAgent | HttpsAgent

  constructor(o: XksHttpOptions) {
    this.#origin = o.origin
    this.#secure = o.origin.protocol === 'https:'
    const agent = (keepAlive: boolean) => this.#secure
      ? new HttpsAgent({
        keepAlive,
        minVersion: 'TLSv1.2',
        ...(o.ca !== undefined ? { ca: o.ca } : {}),
        ...(o.clientCert !== undefined ? { cert: o.clientCert } : {}),
        ...(o.clientKey !== undefined ? { key: o.clientKey } : {}),
      })
      : new HttpAgent({ keepAlive })
    this.#agent = agent(true)
    this.#fresh = agent(false)
  }

  /** POSTs `body` to `path` with `headers`; resolves with status and body text, rejects on transport errors. */
  async post(path: string, headers: Record<string, string>, body: string, signal: AbortSignal): Promise<XksHttpResponse> {
    try {
      return await this.#once(path, headers, body, signal, this.#agent)
    } catch (e) {
      const code = (e as { code?: unknown })?.code
      if (signal.aborted || typeof code !== 'string' || !STALE_SOCKET.has(code) || (e as { reusedSocket?: unknown }).reusedSocket !== true) throw e
      return this.#once(path, headers, body, signal, this.#fresh)
    }
  }

  #once(path: string, headers: Record<string, string>, body: string, signal: AbortSignal, agent: HttpAgent | HttpsAgent): Promise<XksHttpResponse> {
    return new Promise<XksHttpResponse>((resolve, reject) => {
      const send = this.#secure ? httpsRequest : httpRequest
      const req = send({
        protocol: this.#origin.protocol,
        hostname: this.#origin.hostname.replace(/^\[(.*)\]$/, '$1'),
        port: this.#origin.port === '' ? undefined : Number(this.#origin.port),
        method: 'POST',
        path,
        agent,
        signal,
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
      }, (res: IncomingMessage) => {
        const chunks: Buffer[] = []
        let total = 0
        res.on('data', (c: Buffer) => {
          total += c.length
          if (total > MAX_RESPONSE_BYTES) {
            req.destroy(Object.assign(new Error('response too large'), { code: 'XKS_RESPONSE_TOO_LARGE' }))
            return
          }
          chunks.push(c)
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }))
        res.on('error', reject)
      })
      req.on('error', (e) => {
        // Remember whether the socket came from the keep-alive pool: only then is a retry safe.
        if (req.reusedSocket) Object.assign(e, { reusedSocket: true })
        reject(e)
      })
      req.end(body)
    })
  }

  /** Closes pooled connections. */
  close(): void {
    this.#agent.destroy()
    this.#fresh.destroy()
  }
}
