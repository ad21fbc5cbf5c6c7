/**
 * Embedded store on PGlite (PostgreSQL compiled to WASM): the zero-setup default.
 * `@electric-sql/pglite` is imported lazily; only the subset used here is described.
 * PGlite has one connection, so sessions are serialised by a queue; a session requested while the
 * same async context already holds one is refused (it would wait forever, or share a transaction).
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import { mkdirSync } from 'node:fs'
import { DomicileError } from '../../errors.js'
import type { SessionOptions, StoreDriver, StoreQueryResult, StoreSession } from '../store-driver.js'
import { mapStoreError } from './store-errors.js'

/** The subset of a PGlite instance this driver uses. */
interface PGliteLike {
  waitReady: Promise<void>
  closed: boolean
  query<R>(sql: string, params?: unknown[]): Promise<{ rows: R[]; affectedRows?: number }>
  exec(sql: string): Promise<Array<{ rows: Record<string, unknown>[] }>>
  listen(channel: string, cb: (payload: string) => void): Promise<() => Promise<void>>
  close(): Promise<void>
}

export interface PGliteStoreOptions {
  /** Directory for the database files; 'memory://' for an in-memory store. */
  readonly dataDir: string
  readonly name?: string
  /** A ready instance instead of dataDir (tests). */
  readonly instance?: PGliteLike
}

export function createPGliteDriver(opts: PGliteStoreOptions): StoreDriver {
  return new PGliteDriver(opts)
}

class PGliteDriver implements StoreDriver {
  readonly kind = 'pglite' as const
  readonly description: string
  readonly #opts: PGliteStoreOptions
  #db: PGliteLike | undefined
  #opening: Promise<PGliteLike> | undefined
  #queue: Promise<unknown> = Promise.resolve()
  readonly #held = new AsyncLocalStorage<StoreSession>()
  #session: StoreSession | undefined
  /** One superuser connection: migrate and scopes share it (development and single-trust use). */
  readonly separateOwner = false
  #closed = false

  constructor(opts: PGliteStoreOptions) {
    this.#opts = opts
    this.description = opts.dataDir.startsWith('memory://') ? 'embedded, in memory' : `embedded at ${opts.dataDir}`
  }

  async init(): Promise<void> {
    await this.#open()
  }

  async #open(): Promise<PGliteLike> {
    if (this.#closed) throw new DomicileError('ERR_CLOSED', 'This store was closed. Create a new Domicile instance.')
    if (this.#db) return this.#db
    this.#opening ??= (async () => {
      let db = this.#opts.instance
      if (!db) {
        if (!this.#opts.dataDir.startsWith('memory://')) mkdirSync(this.#opts.dataDir, { recursive: true })
        const mod = (await import('@electric-sql/pglite')) as unknown as {
          PGlite: (new (dir: string, opts?: { startParams?: string[] }) => PGliteLike) & { defaultStartParams?: string[] }
        }
        // PGlite clears its shared buffers at every start: 16 MB instead of the default 128 MB saves
        // about half a second per store (a CLI command opens two), which an embedded store does not need.
        const base = mod.PGlite.defaultStartParams
        db = base ? new mod.PGlite(this.#opts.dataDir, { startParams: [...base, '-c', 'shared_buffers=16MB'] }) : new mod.PGlite(this.#opts.dataDir)
      }
      await db.waitReady
      this.#db = db
      return db
    })()
    try {
      return await this.#opening
    } catch (e) {
      this.#opening = undefined
      throw new DomicileError('ERR_REGION_UNAVAILABLE', `Embedded store "${this.#opts.name ?? this.#opts.dataDir}" could not be opened. Is another process using its data directory?`, { cause: e })
    }
  }

  async withSession<T>(fn: (session: StoreSession) => Promise<T>, _opts?: SessionOptions): Promise<T> {
    /* Precondition: no session is opened while this async context holds one (one connection: it would wait forever, or mix two tenants in one transaction). */
    if (this.#held.getStore()) {
      throw new DomicileError('ERR_INPUT_INVALID', 'The embedded store has a single session: finish one tenant scope before opening another inside it.')
    }
    const db = await this.#open()
    const session = (this.#session ??= this.#makeSession(db))
    const run = this.#queue.then(() => this.#held.run(session, () => fn(session)))
    this.#queue = run.catch(() => undefined)
    return run
  }

  /** The one session object of the one connection (the router keys per-connection state on it). */
  #makeSession(db: PGliteLike): StoreSession {
    const name = this.#opts.name ?? 'embedded'
    return {
      query: async <R>(sql: string, params?: readonly unknown[]): Promise<StoreQueryResult<R>> => {
        try {
          const r = await db.query<R>(sql, params as unknown[] | undefined)
          return { rows: r.rows, rowCount: r.affectedRows ?? r.rows.length }
        } catch (e) {
          throw mapStoreError(e, name, this.description)
        }
      },
      exec: async (sql: string): Promise<Record<string, unknown>[]> => {
        try {
          const results = await db.exec(sql)
          return results.at(-1)?.rows ?? []
        } catch (e) {
          throw mapStoreError(e, name, this.description)
        }
      },
      // One embedded connection, one trust domain: it cannot be replaced, and the session reset
      // before each transaction still runs on it.
      discard: () => undefined,
    }
  }

  async listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>> {
    const db = await this.#open()
    return db.listen(channel, onPayload)
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#queue.catch(() => undefined)
    if (this.#db && !this.#db.closed) await this.#db.close()
  }
}
