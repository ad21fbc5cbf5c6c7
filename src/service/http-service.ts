/**
 * The HTTP service of `domicile serve` (Hono on @hono/node-server): the tenant API (`/api`, per-tenant
 * API keys), the admin API (`/admin/api`, admin bearer token), `/healthz`, `/metrics` and the web
 * console at `/`. Limits: request bodies (default 64 KiB, 413), a deadline per request (default
 * 10 s, 503 ERR_TIMEOUT) and the Node server's header and request timeouts. Every error is JSON
 * `{ error: { code, message } }` (src/service/error-response.ts). Routes and auth: docs/SERVICE.md.
 */
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { randomBytes } from 'node:crypto'
import { Hono, type Context } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { routePath } from 'hono/route'
import { serve as nodeServe } from '@hono/node-server'
import type { Domicile } from '../domicile.js'
import { internalsOf } from '../domicile-internals.js'
import { adminApi } from './admin-api.js'
import { ApiKeyStore } from './api-keys.js'
import { bearerToken, configuredToken, tokenMatches } from './bearer-token.js'
import { errorAnswer, serviceError } from './error-response.js'
import { checkHealth } from './health.js'
import { NO_REGION, ServiceMetrics } from './service-metrics.js'
import type { ServiceEnv } from './service-env.js'
import { tenantApi } from './tenant-api.js'

export interface ServiceOptions {
  /** Admin bearer token; default `process.env.DOMICILE_ADMIN_TOKEN`. None = admin API disabled. */
  readonly adminToken?: string
  /** When set, `/metrics` and `/healthz` details need `Authorization: Bearer <metricsToken>`. */
  readonly metricsToken?: string
  /** Largest request body in bytes. Default 65 536. */
  readonly maxBodyBytes?: number
  /** Deadline for one request in ms. Default 10 000. */
  readonly requestTimeoutMs?: number
  /** How long a process trusts a looked-up API key (ms): the bound for a key revoked elsewhere. Default 5000. */
  readonly apiKeyCacheTtlMs?: number
  /** Deadline per health check (region or key service), ms. Default 2500. */
  readonly healthTimeoutMs?: number
  /** Node process metrics in /metrics. Default true. */
  readonly processMetrics?: boolean
  /** Where the service reports unexpected errors (error class only, never request data). Default: stderr. */
  readonly log?: (line: string) => void
}

export interface Service {
  readonly app: Hono<ServiceEnv>
  close(): Promise<void>
}

/** Content-Security-Policy for everything that is not the console page. */
const API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


function errorResponse(c: Context<ServiceEnv>, e: unknown, log: (line: string) => void): Response {
  const a = errorAnswer(e)
  if (a.body.error.code === 'ERR_UNEXPECTED') log(`domicile service: unexpected ${e instanceof Error ? e.name : typeof e} on ${c.req.method} ${routeLabel(c)}`)
  c.set('errorCode', a.body.error.code)
  return c.body(JSON.stringify(a.body), a.status as 400, { ...a.headers, 'Content-Type': 'application/json; charset=utf-8' })
}

function routeLabel(c: Context<ServiceEnv>): string {
  try {
    const p = routePath(c, -1)
    return p === '' || p.endsWith('*') ? 'unmatched' : p
  } catch {
    return 'unmatched'
  }
}

/**
 * Builds the service's Hono app on an open Domicile (the caller keeps owning and closes it).
 *
 * @example
 * const { app, close } = createService(domicile, { adminToken: process.env.DOMICILE_ADMIN_TOKEN })
 * const res = await app.request('/healthz')
 */
export function createService(d: Domicile, opts: ServiceOptions = {}): Service {
  const adminToken = configuredToken(opts.adminToken ?? process.env.DOMICILE_ADMIN_TOKEN, 'DOMICILE_ADMIN_TOKEN')
  const metricsToken = configuredToken(opts.metricsToken, 'metricsToken')
  const maxBody = opts.maxBodyBytes ?? 64 * 1024
  const deadline = opts.requestTimeoutMs ?? 10_000
  const log = opts.log ?? ((line: string) => process.stderr.write(line + '\n'))
  const metrics = new ServiceMetrics(d, { defaultMetrics: opts.processMetrics !== false })
  const keys = new ApiKeyStore(d, opts.apiKeyCacheTtlMs === undefined ? {} : { cacheTtlMs: opts.apiKeyCacheTtlMs })
  const app = new Hono<ServiceEnv>()

  // Outermost: measure, label by region and route, set the security headers on every answer.
  app.use('*', async (c, next) => {
    const started = performance.now()
    await next()
    c.header('X-Content-Type-Options', 'nosniff')
    c.header('Referrer-Policy', 'no-referrer')
    c.header('X-Frame-Options', 'DENY')
    c.header('Cross-Origin-Resource-Policy', 'same-origin')
    if (!c.res.headers.has('Content-Security-Policy')) c.header('Content-Security-Policy', API_CSP)
    if (!c.res.headers.has('Cache-Control')) c.header('Cache-Control', 'no-store')
    const code = c.get('errorCode')
    metrics.observe(c.get('region') ?? NO_REGION, routeLabel(c), c.req.method, c.res.status, (performance.now() - started) / 1000, code)
  })

  // The deadline: the client gets 503 ERR_TIMEOUT; the work it started finishes or fails on its own.
  app.use('*', async (_c, next) => {
    let timer: NodeJS.Timeout | undefined
    try {
      await Promise.race([next(), new Promise<never>((_r, reject) => {
        timer = setTimeout(() => reject(serviceError('ERR_TIMEOUT', `The request did not finish within ${deadline} ms. Retry it; if it keeps failing, check /healthz.`)), deadline)
      })])
    } finally {
      clearTimeout(timer)
    }
  })

  app.use('*', bodyLimit({
    maxSize: maxBody,
    onError: (c) => {
      // The rest of the body was never read: the connection cannot carry another request, so the
      // client is told not to reuse it (else its next request on it meets a closed socket).
      c.header('Connection', 'close')
      return errorResponse(c as Context<ServiceEnv>, serviceError('ERR_PAYLOAD_TOO_LARGE', `The request body is larger than ${maxBody} bytes.`), log)
    },
  }))

  const scraperAllowed = (c: Context<ServiceEnv>): void => {
    /* Precondition: with a metrics token configured, scrapes carry it. */
    if (metricsToken !== undefined && !tokenMatches(bearerToken(c.req.header('Authorization')), metricsToken)) {
      throw serviceError('ERR_UNAUTHORIZED', 'This endpoint needs "Authorization: Bearer <metrics token>".')
    }
  }

  app.get('/healthz', async (c) => {
    scraperAllowed(c)
    const h = await checkHealth(d, opts.healthTimeoutMs === undefined ? {} : { timeoutMs: opts.healthTimeoutMs })
    return c.json(h, h.status === 'ok' ? 200 : 503)
  })

  app.get('/metrics', async (c) => {
    scraperAllowed(c)
    return c.body(await metrics.text(), 200, { 'Content-Type': metrics.contentType })
  })

  app.get('/', async (c) => {
    const { consolePage, consoleContentSecurityPolicy } = await import('./console/console-page.js')
    const nonce = randomBytes(18).toString('base64')
    return c.html(consolePage({ nonce }), 200, { 'Content-Security-Policy': consoleContentSecurityPolicy(nonce) })
  })

  app.route('/admin/api', adminApi(d, { token: adminToken, keys, onKillSwitch: (action) => metrics.revocations.inc({ action }) }))
  app.route('/api', tenantApi(d, keys))

  app.notFound((c) => errorResponse(c, serviceError('ERR_NOT_FOUND', 'No such route. See docs/SERVICE.md for the routes of the service.'), log))
  app.onError((e, c) => errorResponse(c, e, log))

  return {
    app,
    async close() {
      metrics.close()
    },
  }
}

export interface ServeOptions extends ServiceOptions {
  /** Default 8080; 0 = any free port. */
  readonly port?: number
  /** Default 127.0.0.1 (loopback only). */
  readonly hostname?: string
  /** Node's bound on receiving a request's headers (ms). Default 10 000. */
  readonly headersTimeoutMs?: number
  /** Node's bound on receiving a whole request (ms). Default 30 000. */
  readonly serverRequestTimeoutMs?: number
  /**
   * Idle keep-alive connections are closed after this (ms). Default 65 000: longer than a load
   * balancer's usual 60 s idle timeout and than a client's keep-alive hint, so the client side
   * closes idle connections first and never sends a request on a socket the server is closing.
   */
  readonly keepAliveTimeoutMs?: number
}

/**
 * Starts the service on a TCP port. `close()` stops accepting, ends idle connections and waits for
 * requests in flight; closing the Domicile stays the caller's job.
 *
 * @example
 * const s = await serve(domicile, { port: 8080 })
 * console.log(s.url)
 * await s.close()
 */
export async function serve(d: Domicile, opts: ServeOptions = {}): Promise<{ url: string; close(): Promise<void> }> {
  const svc = createService(d, opts)
  // Open every region's store before accepting traffic (an embedded store takes seconds to start),
  // so the first health check and request do not pay for it. A region that is down stays down.
  const { router } = internalsOf(d)
  await Promise.all(router.stores.map((where) => router.probe(where)))
  const hostname = opts.hostname ?? '127.0.0.1'
  const headersTimeout = opts.headersTimeoutMs ?? 10_000
  const server = await new Promise<Server>((resolve, reject) => {
    const s = nodeServe({
      fetch: svc.app.fetch,
      port: opts.port ?? 8080,
      hostname,
      serverOptions: {
        headersTimeout,
        requestTimeout: Math.max(opts.serverRequestTimeoutMs ?? 30_000, headersTimeout),
        keepAliveTimeout: opts.keepAliveTimeoutMs ?? 65_000,
        maxHeaderSize: 16 * 1024,
      },
    }, () => resolve(s as Server)) as Server
    s.once('error', reject)
  })
  const addr = server.address() as AddressInfo
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address
  let closing: Promise<void> | undefined
  return {
    url: `http://${host}:${addr.port}`,
    close() {
      closing ??= (async () => {
        await new Promise<void>((resolve) => {
          // Requests in flight get a grace period; then every connection is cut.
          const cut = setTimeout(() => server.closeAllConnections(), 5000)
          server.close(() => { clearTimeout(cut); resolve() })
          server.closeIdleConnections()
        })
        await svc.close()
      })()
      return closing
    },
  }
}
