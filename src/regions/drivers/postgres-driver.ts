/**
 * Store on a PostgreSQL server (or any Postgres-wire engine) through `pg`, imported lazily.
 * Connecting is bounded by `connectTimeoutMs`; a lost connection fails closed with
 * ERR_REGION_UNAVAILABLE and the broken client is discarded, not returned to the pool.
 */
import type { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { DomicileError } from '../../errors.js'
import type { SessionOptions, StoreDriver, StoreQueryResult, StoreSession } from '../store-driver.js'
import { ClientPool, holdProcess } from './client-pool.js'
import { scramSha256Verifier } from './scram-verifier.js'
import { isConnectionLoss, mapStoreError, regionUnavailable } from './store-errors.js'

/** The subset of `pg` used here. */
interface PgClientLike {
  readonly connection?: { readonly stream?: { ref?(): unknown; unref?(): unknown } }
  query(sql: string, params?: unknown[]): Promise<{ rows: unknown[]; rowCount: number | null }>
  on(event: 'notification', cb: (msg: { channel: string; payload?: string }) => void): void
  on(event: 'error' | 'end', cb: (e?: Error) => void): void
  connect(): Promise<void>
  end(): Promise<void>
}
interface PgModuleLike {
  Client: new (cfg: Record<string, unknown>) => PgClientLike
}
/** The subset of `pg-copy-streams` used here (an optional dependency, imported on first use). */
interface CopyStreamsLike {
  to(sql: string): Readable & { readonly rowCount?: number }
  from(sql: string): Writable & { readonly rowCount?: number }
}
let copyStreams: Promise<CopyStreamsLike> | undefined
function loadCopyStreams(): Promise<CopyStreamsLike> {
  copyStreams ??= import('pg-copy-streams').then((m) => ((m as unknown as { default?: CopyStreamsLike }).default ?? m) as unknown as CopyStreamsLike, () => {
    copyStreams = undefined
    throw new DomicileError('ERR_CONFIG_INVALID', 'Streaming COPY needs the optional package "pg-copy-streams". Install it (npm install pg-copy-streams).')
  })
  return copyStreams
}

export interface PostgresStoreOptions {
  /** The data plane's login: postgres://user:password@host:port/db (a role that owns nothing). */
  readonly url: string
  /** The owner's login, for migrate and admin work. Absent: the data plane's login serves both. */
  readonly ownerUrl?: string
  readonly name?: string
  /** Bound on connecting (ms). Default 2000. */
  readonly connectTimeoutMs?: number
  /** Pool size. Default 10. */
  readonly poolSize?: number
}

export function createPostgresDriver(opts: PostgresStoreOptions): StoreDriver {
  return new PostgresDriver(opts)
}

/** host:port/db of a URL, without credentials. */
export function describePostgresUrl(url: string): string {
  try {
    const u = new URL(url)
    return `${u.hostname}:${u.port || '5432'}${u.pathname}`
  } catch {
    return 'postgres (unparseable URL)'
  }
}

/** The login role of a URL, and the SCRAM verifier of its password (computed on demand). */
function dataLoginOf(url: string): { readonly user: string; scramVerifier(): string | undefined } | undefined {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    return undefined
  }
  const user = decodeURIComponent(u.username)
  if (!user) return undefined
  const password = u.password ? decodeURIComponent(u.password) : undefined
  return Object.freeze({ user, scramVerifier: () => (password === undefined ? undefined : scramSha256Verifier(password)) })
}

/**
 * Ends a client without waiting forever: `end()` of a pg client whose connection already broke can
 * stay pending (its 'end' event came and went), which would hang close().
 */
async function endQuietly(c: PgClientLike): Promise<void> {
  // An idle or listening connection's socket is unref'd; closing it is work the caller waits for.
  holdProcess(c, true)
  let timer: NodeJS.Timeout | undefined
  await Promise.race([
    c.end().catch(() => undefined),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, 1000)
    }),
  ])
  clearTimeout(timer)
}

class PgSession implements StoreSession {
  broken = false
  readonly #client: PgClientLike
  readonly #name: string
  readonly #description: string
  constructor(client: PgClientLike, name: string, description: string) {
    this.#client = client
    this.#name = name
    this.#description = description
  }

  async query<R>(sql: string, params?: readonly unknown[]): Promise<StoreQueryResult<R>> {
    try {
      const res = (await this.#client.query(sql, params as unknown[] | undefined)) as unknown
      // Several statements without parameters come back as one result each: the last one counts.
      const r = (Array.isArray(res) ? res.at(-1) ?? { rows: [], rowCount: 0 } : res) as { rows: unknown[]; rowCount: number | null }
      return { rows: r.rows as R[], rowCount: r.rowCount ?? r.rows.length }
    } catch (e) {
      throw this.#fail(e)
    }
  }

  discard(): void {
    this.broken = true
  }

  async exec(sql: string): Promise<Record<string, unknown>[]> {
    try {
      const r = (await this.#client.query(sql)) as unknown
      const last = Array.isArray(r) ? r.at(-1) : r
      return ((last as { rows?: Record<string, unknown>[] } | undefined)?.rows) ?? []
    } catch (e) {
      throw this.#fail(e)
    }
  }

  async copyOut(sql: string): Promise<Readable> {
    const cs = await loadCopyStreams()
    const stream = (this.#client as unknown as { query(s: unknown): Readable }).query(cs.to(sql))
    stream.once('error', () => {
      this.broken = true
    })
    return stream
  }

  async copyIn(sql: string, source: Readable): Promise<number> {
    const cs = await loadCopyStreams()
    const sink = (this.#client as unknown as { query(s: unknown): Writable & { readonly rowCount?: number } }).query(cs.from(sql))
    try {
      await pipeline(source, sink)
      return sink.rowCount ?? 0
    } catch (e) {
      // The server refusing the rows (a SQLSTATE: a duplicate key, a foreign key) ends COPY mode
      // cleanly and the connection goes on (the caller can roll back to a savepoint). A COPY cut
      // short otherwise (the source failed, the connection dropped) leaves the protocol in an
      // unknown state: the connection is not reused.
      const fromServer = typeof (e as { severity?: unknown })?.severity === 'string' && typeof (e as { code?: unknown })?.code === 'string'
      if (!fromServer || isConnectionLoss(e)) this.broken = true
      throw mapStoreError(e, this.#name, this.#description)
    }
  }

  #fail(e: unknown): unknown {
    if (isConnectionLoss(e)) this.broken = true
    return mapStoreError(e, this.#name, this.#description)
  }
}

/** How long owner work waits for a busy owner connection (operations hold one for minutes). */
const OWNER_WAIT_MS = 120_000

class PostgresDriver implements StoreDriver {
  readonly kind = 'postgres' as const
  readonly description: string
  readonly separateOwner: boolean
  readonly dataLogin: { readonly user: string; scramVerifier(): string | undefined } | undefined
  readonly #opts: PostgresStoreOptions
  #pg: PgModuleLike | undefined
  #pool: ClientPool<PgClientLike> | undefined
  #ownerPool: ClientPool<PgClientLike> | undefined
  #closed = false
  readonly #listeners = new Set<PgClientLike>()
  readonly #sessions = new WeakMap<PgClientLike, PgSession>()

  constructor(opts: PostgresStoreOptions) {
    this.#opts = opts
    this.description = describePostgresUrl(opts.url)
    this.separateOwner = opts.ownerUrl !== undefined && opts.ownerUrl !== opts.url
    this.dataLogin = dataLoginOf(opts.url)
  }

  get #name(): string {
    return this.#opts.name ?? this.description
  }

  async #module(): Promise<PgModuleLike> {
    if (!this.#pg) {
      const mod = (await import('pg')) as unknown as { default?: PgModuleLike } & PgModuleLike
      this.#pg = mod.default ?? mod
    }
    return this.#pg
  }

  async #getPool(owner = false): Promise<ClientPool<PgClientLike>> {
    if (this.#closed) throw new DomicileError('ERR_CLOSED', 'This store was closed. Create a new Domicile instance.')
    const pg = await this.#module()
    if (owner && this.separateOwner) {
      // The owner's pool is small and opened only when migrate or admin work asks for it. Operations
      // (a column's encryption, a move) hold an owner connection for long stretches: a caller waits
      // for the next one instead of failing as if the store were down.
      this.#ownerPool ??= this.#makePool(this.#opts.ownerUrl!, 4, pg, OWNER_WAIT_MS)
      return this.#ownerPool
    }
    this.#pool ??= this.#makePool(this.#opts.url, this.#opts.poolSize ?? 10, pg)
    return this.#pool
  }

  #makePool(url: string, max: number, pg: PgModuleLike, waitTimeoutMs?: number): ClientPool<PgClientLike> {
    const timeout = this.#opts.connectTimeoutMs ?? 2000
    return new ClientPool(() => new pg.Client({ connectionString: url, connectionTimeoutMillis: timeout }), { max, connectTimeoutMs: timeout, ...(waitTimeoutMs !== undefined ? { waitTimeoutMs } : {}) })
  }

  async init(): Promise<void> {
    await this.withSession(async (s) => {
      await s.query('select 1')
    })
  }

  async withSession<T>(fn: (session: StoreSession) => Promise<T>, opts?: SessionOptions): Promise<T> {
    const pool = opts?.role === 'owner' ? await this.#getPool(true) : (this.#pool ?? (await this.#getPool()))
    let client = pool.tryAcquire()
    if (!client) {
      try {
        client = await pool.acquire()
      } catch {
        throw regionUnavailable(this.#name, this.description)
      }
    }
    // One session object per pooled client, made on its first checkout (no per-call closures).
    let session = this.#sessions.get(client)
    if (!session) {
      const made = new PgSession(client, this.#name, this.description)
      client.on('error', () => {
        made.broken = true
      })
      this.#sessions.set(client, made)
      session = made
    }
    try {
      return await fn(session)
    } finally {
      // A client whose connection broke is destroyed, never handed out again.
      pool.release(client, session.broken)
    }
  }

  /**
   * LISTENs on a dedicated connection. A lost connection is re-established with backoff (up to
   * 5 s between tries) until unsubscribed; `onReconnect` runs after each re-LISTEN so the caller can
   * catch up on what it may have missed meanwhile.
   */
  async listen(channel: string, onPayload: (payload: string) => void, opts: { onReconnect?: () => void } = {}): Promise<() => Promise<void>> {
    if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new DomicileError('ERR_INPUT_INVALID', 'Channel names are lower-case identifiers.')
    const pg = await this.#module()
    let stopped = false
    let current: PgClientLike | undefined
    let timer: NodeJS.Timeout | undefined
    const connect = async (): Promise<void> => {
      const client = new pg.Client({ connectionString: this.#opts.url, connectionTimeoutMillis: this.#opts.connectTimeoutMs ?? 2000 })
      let lost = false
      const onLost = () => {
        if (lost) return
        lost = true
        this.#listeners.delete(client)
        if (current === client) current = undefined
        void endQuietly(client)
        if (!stopped && !this.#closed) schedule(250)
      }
      client.on('error', onLost)
      client.on('end', onLost)
      client.on('notification', (msg) => {
        if (msg.channel === channel) onPayload(msg.payload ?? '')
      })
      try {
        await client.connect()
        await client.query(`LISTEN ${channel}`)
      } catch (e) {
        lost = true
        await client.end().catch(() => undefined)
        throw e
      }
      current = client
      this.#listeners.add(client)
      // A background subscription: it does not keep the process alive by itself.
      holdProcess(client, false)
    }
    let delay = 250
    const schedule = (first: number) => {
      delay = first
      const attempt = () => {
        timer = undefined
        if (stopped || this.#closed) return
        connect().then(() => {
          delay = 250
          opts.onReconnect?.()
        }, () => {
          delay = Math.min(delay * 2, 5000)
          timer = setTimeout(attempt, delay)
          timer.unref()
        })
      }
      timer = setTimeout(attempt, delay)
      timer.unref()
    }
    try {
      await connect()
    } catch {
      throw regionUnavailable(this.#name, this.description)
    }
    return async () => {
      stopped = true
      if (timer) clearTimeout(timer)
      if (current) {
        this.#listeners.delete(current)
        await endQuietly(current)
      }
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    for (const c of this.#listeners) await endQuietly(c)
    this.#listeners.clear()
    await this.#pool?.end().catch(() => undefined)
    await this.#ownerPool?.end().catch(() => undefined)
  }
}
