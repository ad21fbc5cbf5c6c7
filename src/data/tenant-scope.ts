/**
 * The tenant scope handed to `withTenant(id, fn)`: repositories for the schema's tenant tables,
 * a typed query builder and raw SQL bound to the same transaction (row-level security on), and
 * the deliberate, audited reveal of sensitive fields.
 */
import type { Kysely } from 'kysely'
import { DomicileError } from '../errors.js'
import type { TenantTransaction } from '../regions/router.js'
import type { ResolvedTable, Schema } from '../schema/define-schema.js'
import type { FieldProtection } from './field-protection.js'
import { TableRepository, type Repository, type Row } from './repository.js'
import { sensitiveColumnGuard } from './sensitive-column-guard.js'
import { kyselyForSession } from './session-dialect.js'

export interface RevealOptions {
  /** Why the plaintext is needed; recorded in the audit log. Required. */
  readonly purpose: string
  /** Who asked (user id, service); recorded in the audit log. */
  readonly actor?: string
}

/** Reveal of sealed values; implemented by field encryption. */
export interface Revealer {
  reveal(value: unknown, opts: RevealOptions): Promise<unknown>
  revealRows<R extends Row>(rows: readonly R[], opts: RevealOptions & { columns?: readonly string[] }): Promise<R[]>
}

export interface TenantScope {
  readonly tenantId: string
  readonly region: string
  /** The repository for a tenant-scoped table. */
  table<R extends Row = Row>(name: string): Repository<R>
  /** Raw SQL on the scope's transaction; row-level security limits it to this tenant's rows. */
  sql<R = Row>(text: string, params?: readonly unknown[]): Promise<R[]>
  /** Typed query builder on the scope's transaction. */
  readonly db: Kysely<any>
  /** Opens one sealed value. Audited. */
  reveal<T = unknown>(value: unknown, opts: RevealOptions): Promise<T>
  /** Opens the sealed fields of a page of rows with one key fetch. Audited per field. */
  revealRows<R extends Row>(rows: readonly R[], opts: RevealOptions & { columns?: readonly string[] }): Promise<R[]>
}

/** The definition of a tenant-scoped table, for a repository. */
export function tenantTable(schema: Schema, name: string): ResolvedTable {
  const t = schema.table(name)
  /* Precondition: repositories exist only for tenant-scoped tables. */
  if (t.scope !== 'tenant') {
    throw new DomicileError('ERR_QUERY_UNSUPPORTED', `"${name}" is a global table (replicated reference data); read it with scope.sql or scope.db, and write it through the control plane.`)
  }
  return t
}

export class Scope implements TenantScope {
  readonly tenantId: string
  readonly region: string
  readonly #tx: TenantTransaction
  readonly #schema: Schema
  readonly #fields: (FieldProtection & Revealer) | undefined
  readonly #repos = new Map<string, Repository>()
  #db: Kysely<any> | undefined

  constructor(tx: TenantTransaction, schema: Schema, fields: (FieldProtection & Revealer) | undefined) {
    this.tenantId = tx.tenantId
    this.region = tx.region
    this.#tx = tx
    this.#schema = schema
    this.#fields = fields
  }

  table<R extends Row = Row>(name: string): Repository<R> {
    let repo = this.#repos.get(name)
    if (!repo) {
      repo = new TableRepository(tenantTable(this.#schema, name), this.#tx, this.#fields)
      this.#repos.set(name, repo)
    }
    return repo as Repository<R>
  }

  async sql<R = Row>(text: string, params: readonly unknown[] = []): Promise<R[]> {
    this.#tx.runsApplicationSql() // before it runs: the next scope on this connection starts with a reset
    return (await this.#tx.session.query<R>(text, params)).rows
  }

  get db(): Kysely<any> {
    this.#tx.runsApplicationSql()
    this.#db ??= kyselyForSession(this.#tx.session, [sensitiveColumnGuard(this.#schema)])
    return this.#db
  }

  #revealer(): Revealer {
    if (!this.#fields) throw new DomicileError('ERR_KEY_NOT_FOUND', `Tenant "${this.tenantId}" has no key binding, so it has no sealed fields to reveal.`)
    return this.#fields
  }

  async reveal<T = unknown>(value: unknown, opts: RevealOptions): Promise<T> {
    return (await this.#revealer().reveal(value, opts)) as T
  }

  async revealRows<R extends Row>(rows: readonly R[], opts: RevealOptions & { columns?: readonly string[] }): Promise<R[]> {
    return this.#revealer().revealRows(rows, opts)
  }
}
