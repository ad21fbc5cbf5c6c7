/**
 * A fault-injecting HTTP proxy for the key service (test/chaos/): it sits between Domicile's `xks`
 * provider and the reference key proxy (a real child process serving plain HTTP, `--insecure-http`,
 * so faults can be injected at the HTTP level), counts every request that reaches it, and answers
 * each one according to its current mode:
 *
 *   pass       forward to the upstream key proxy (a dead upstream: the client's connection is reset)
 *   delay      forward after `ms` milliseconds (past the client's deadline: a slow key service)
 *   hang       read the request and never answer
 *   status     answer `status` with `body` (e.g. 500 + an XKS InternalException, or a plain 500)
 *   garbage    answer 200 with `bytes` seeded random bytes (not JSON)
 *   oversized  answer 200 with a JSON-looking body of `bytes` bytes (past the client's cap)
 *   close      destroy the connection without answering
 *   respond    answer with what `respond(path)` returns (malformed XKS answers, generated)
 *
 * The request's headers (its SigV4 signature covers the Host header) are forwarded unchanged.
 * Loopback only; every socket is destroyed by close().
 *
 * @example
 * const fp = await startFaultProxy({ upstream: proxy.url })
 * fp.setMode({ kind: 'delay', ms: 2000 })
 * const before = fp.requests
 * // ... calls through fp.url ...
 * fp.setMode({ kind: 'pass' }); await fp.close()
 */
import { createServer, request as httpRequest, Agent, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Rng } from '../support/chaos-rng.js'

export type FaultMode =
  | { readonly kind: 'pass' }
  | { readonly kind: 'delay'; readonly ms: number }
  | { readonly kind: 'hang' }
  | { readonly kind: 'status'; readonly status: number; readonly body: string; readonly contentType?: string }
  | { readonly kind: 'garbage'; readonly bytes: number }
  | { readonly kind: 'oversized'; readonly bytes: number }
  | { readonly kind: 'close' }
  | { readonly kind: 'respond'; readonly respond: (path: string) => { status: number; body: string | Uint8Array } }

export interface FaultProxy {
  /** http://127.0.0.1:PORT, for the provider's `endpoint`. */
  readonly url: string
  /** Requests that reached the proxy so far (every mode counts). */
  readonly requests: number
  /** Requests per mode kind so far. */
  readonly byMode: Readonly<Record<string, number>>
  /** Faults injected so far (requests answered in any mode but `pass`, plus passes to a dead upstream). */
  readonly faultsInjected: number
  mode(): FaultMode
  setMode(mode: FaultMode): void
  /** Point the proxy at another upstream (a restarted key proxy listens on a new port). */
  setUpstream(url: string): void
  close(): Promise<void>
}

export interface FaultProxyOptions {
  /** http://host:port of the key proxy to forward to. */
  readonly upstream: string
  /** Seeded randomness for garbage bodies (the seed is printed by chaosRng). */
  readonly rng?: Rng
}

export async function startFaultProxy(opts: FaultProxyOptions): Promise<FaultProxy> {
  let upstream = new URL(opts.upstream)
  let mode: FaultMode = { kind: 'pass' }
  let requests = 0
  let faults = 0
  const byMode: Record<string, number> = {}
  const sockets = new Set<Socket>()
  const timers = new Set<NodeJS.Timeout>()
  // A connection per forwarded request: a pooled one the key proxy closed while idle (its keep-alive
  // timeout passes during a slow set-up) would reset the client's request, a fault nobody injected.
  const agent = new Agent({ keepAlive: false, maxSockets: 16 })
  const rand = (n: number): Buffer => {
    const b = Buffer.alloc(n)
    for (let i = 0; i < n; i++) b[i] = opts.rng ? Math.floor(opts.rng.next() * 256) : (i * 131 + 7) & 0xff
    return b
  }

  const forward = (req: IncomingMessage, res: ServerResponse, body: Buffer): void => {
    const up = httpRequest({
      hostname: upstream.hostname, port: upstream.port, method: req.method, path: req.url, agent,
      headers: { ...req.headers, 'content-length': String(body.length) },
    }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers)
      ur.pipe(res)
    })
    up.on('error', (e) => {
      if (process.env.DOMICILE_CHAOS_DEBUG) console.error('# fault proxy upstream error', (e as NodeJS.ErrnoException).code, e.message, upstream.href)
      // The key service is gone: the client sees its connection reset, as it would without us.
      faults++
      res.socket?.destroy()
    })
    up.end(body)
  }

  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      requests++
      const m = mode
      byMode[m.kind] = (byMode[m.kind] ?? 0) + 1
      const body = Buffer.concat(chunks)
      if (m.kind !== 'pass') faults++
      switch (m.kind) {
        case 'pass':
          forward(req, res, body)
          return
        case 'delay': {
          const t = setTimeout(() => {
            timers.delete(t)
            if (!res.socket?.destroyed) forward(req, res, body)
          }, m.ms)
          timers.add(t)
          return
        }
        case 'hang':
          return
        case 'status':
          res.writeHead(m.status, { 'content-type': m.contentType ?? 'application/json' }).end(m.body)
          return
        case 'garbage':
          res.writeHead(200, { 'content-type': 'application/json' }).end(rand(m.bytes))
          return
        case 'oversized': {
          const filler = Buffer.alloc(m.bytes, 0x41)
          Buffer.from('{"plaintext":"').copy(filler)
          res.writeHead(200, { 'content-type': 'application/json' }).end(filler)
          return
        }
        case 'close':
          req.socket.destroy()
          return
        case 'respond': {
          const r = m.respond(req.url ?? '')
          res.writeHead(r.status, { 'content-type': 'application/json' }).end(r.body)
          return
        }
      }
    })
  })
  server.on('connection', (s: Socket) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  const port = (server.address() as { port: number }).port
  return {
    url: `http://127.0.0.1:${port}`,
    get requests() { return requests },
    get byMode() { return { ...byMode } },
    get faultsInjected() { return faults },
    mode: () => mode,
    setMode(m) { mode = m },
    setUpstream(url) { upstream = new URL(url) },
    async close() {
      for (const t of timers) clearTimeout(t)
      for (const s of sockets) s.destroy()
      agent.destroy()
      await new Promise<void>((r) => server.close(() => r()))
    },
  }
}
