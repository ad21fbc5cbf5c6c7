/**
 * A Kysely dialect bound to one open tenant transaction: the typed query builder a scope hands
 * out runs on the same connection, inside the same transaction, under the same row-level
 * security as the repositories. It reuses Kysely's PostgreSQL compiler and adapter (the same SQL
 * serves PGlite and PostgreSQL) and refuses to open transactions of its own.
 */
import {
  CompiledQuery, Kysely, PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler,
  type DatabaseConnection, type Dialect, type Driver, type KyselyPlugin, type QueryResult,
} from 'kysely'
import { DomicileError } from '../errors.js'
import type { StoreSession } from '../regions/store-driver.js'

class SessionConnection implements DatabaseConnection {
  readonly #session: StoreSession
  constructor(session: StoreSession) {
    this.#session = session
  }
  async executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
    const r = await this.#session.query<R>(compiled.sql, compiled.parameters)
    return { rows: r.rows, numAffectedRows: BigInt(r.rowCount) }
  }
  // eslint-disable-next-line require-yield
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new DomicileError('ERR_QUERY_UNSUPPORTED', 'Streaming queries are not supported inside a tenant scope; page with limit/offset or list().')
  }
}

const noNested = (): never => {
  throw new DomicileError('ERR_QUERY_UNSUPPORTED', 'The scope is already a transaction; do not open another one inside it.')
}

class SessionDriver implements Driver {
  readonly #conn: SessionConnection
  constructor(session: StoreSession) {
    this.#conn = new SessionConnection(session)
  }
  async init(): Promise<void> {}
  async acquireConnection(): Promise<DatabaseConnection> {
    return this.#conn
  }
  async beginTransaction(): Promise<void> {
    noNested()
  }
  async commitTransaction(): Promise<void> {
    noNested()
  }
  async rollbackTransaction(): Promise<void> {
    noNested()
  }
  async releaseConnection(): Promise<void> {}
  async destroy(): Promise<void> {}
}

/** A Kysely instance whose every query runs on `session`. */
export function kyselyForSession<DB>(session: StoreSession, plugins: readonly KyselyPlugin[] = []): Kysely<DB> {
  const dialect: Dialect = {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () => new SessionDriver(session),
    createIntrospector: (db) => new PostgresIntrospector(db),
    createQueryCompiler: () => new PostgresQueryCompiler(),
  }
  return new Kysely<DB>({ dialect, plugins: [...plugins] })
}

export { CompiledQuery }
