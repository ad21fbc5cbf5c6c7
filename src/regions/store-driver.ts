/**
 * The store-driver seam: one region's (or the control plane's) PostgreSQL-speaking store.
 *
 * A driver does little: connect with a bounded timeout, lend an exclusive session, listen for
 * notifications, close. Transactions, tenant context, RLS role and the region stamp are handled
 * once, above the driver, by the router (router.ts). Store handles are private to the router.
 */
import type { Readable } from 'node:stream'

export type StoreDriverKind = 'pglite' | 'postgres'

export interface StoreQueryResult<R> {
  readonly rows: R[]
  readonly rowCount: number
}

/**
 * One exclusive connection. Not shared between concurrent callers. The same object is handed out
 * for the same physical connection every time (the router keys per-connection state on it).
 */
export interface StoreSession {
  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<StoreQueryResult<R>>
  /**
   * Several statements without parameters, in one round trip where the engine allows it.
   * Returns the rows of the last statement.
   */
  exec(sql: string): Promise<Record<string, unknown>[]>
  /** Marks the connection as not to be reused: it is closed when the session is released. */
  discard(): void
  /**
   * `COPY ... TO STDOUT` as a byte stream (PostgreSQL sessions only; undefined elsewhere). For owner
   * sessions in operations (a tenant move), never for application code. The session is busy until
   * the stream ends; a stream that fails discards the connection.
   */
  copyOut?(sql: string): Promise<Readable>
  /**
   * `COPY ... FROM STDIN` fed from `source` (PostgreSQL sessions only; undefined elsewhere). Resolves
   * with the rows the server took; failures map like query errors and discard the connection.
   */
  copyIn?(sql: string, source: Readable): Promise<number>
}

/** Which login a session uses. */
export interface SessionOptions {
  /**
   * 'data' (default): the data plane's login, which owns nothing. 'owner': the owner login used by
   * migrate and admin work (`ownerUrl`); without one configured, the data plane's login.
   */
  readonly role?: 'data' | 'owner'
}

export interface StoreDriver {
  readonly kind: StoreDriverKind
  /** A safe description for messages (host:port/db or "embedded"); never credentials. */
  readonly description: string
  /** Connects (once; later calls reuse). Fails with ERR_REGION_UNAVAILABLE within the connect timeout. */
  init(): Promise<void>
  /**
   * Whether owner sessions use a login of their own (`ownerUrl`). When false, scopes run on the
   * owner's login and isolation against hostile SQL is weaker (see docs/ARCHITECTURE.md).
   */
  readonly separateOwner: boolean
  /**
   * The data plane's login role, when the driver has one of its own (PostgreSQL): `migrate`
   * creates it if missing. `scramVerifier` is the SCRAM-SHA-256 verifier of its password (never the
   * password itself), for CREATE ROLE.
   */
  readonly dataLogin?: { readonly user: string; scramVerifier(): string | undefined }
  /** Runs fn on an exclusive session. Connection loss maps to ERR_REGION_UNAVAILABLE. */
  withSession<T>(fn: (session: StoreSession) => Promise<T>, opts?: SessionOptions): Promise<T>
  /**
   * Subscribes to NOTIFY on a channel. Returns an unsubscribe function. Drivers that can lose the
   * subscription re-establish it and then call `onReconnect`.
   */
  listen(channel: string, onPayload: (payload: string) => void, opts?: { onReconnect?: () => void }): Promise<() => Promise<void>>
  close(): Promise<void>
}

/** Driver options common to all engines. */
export interface StoreDriverOptions {
  /** Bound on connecting (ms). Default 2000. */
  readonly connectTimeoutMs?: number
  /** Maps an engine error to a DomicileError when it means the store is gone. */
  readonly name?: string
}

/** Accept a ready driver or a lazy factory (kysely's pattern). */
export type StoreDriverInput = StoreDriver | (() => StoreDriver | Promise<StoreDriver>)
