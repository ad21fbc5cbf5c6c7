/**
 * One transaction per call: the repository API of a tenant table without a `withTenant`
 * callback, for single-statement reads and writes.
 *
 *   const [c] = await domicile.tenant('acme').table('customers').find({ email: 'ada@example.com' })
 *
 * Each call runs exactly as `withTenant(id, (s) => s.table(name).<call>(...))` would: region stamp
 * checked before any statement, row-level security bound to the tenant, sensitive fields sealed
 * on the way in and returned as sealed values. A `find` runs its blind-index false-positive
 * filter while its COMMIT is in flight (src/data/candidate-filter.ts). A call whose statement was
 * written for a table layout an encrypt-in-place migration just changed (LayoutChangedError: the
 * statement failed before doing anything) is run once more with the layout read again.
 */
import type { TenantTransaction } from '../regions/router.js'
import type { ResolvedTable } from '../schema/define-schema.js'
import { finishWhileCommitting } from './candidate-filter.js'
import type { FieldProtection } from './field-protection.js'
import { LayoutChangedError, TableRepository, type ListOptions, type Page, type Repository, type Row } from './repository.js'

/** Runs `fn` in one tenant transaction (Domicile supplies it, with the tenant's field protection). */
export type TenantTransactionRunner = <T>(fn: (tx: TenantTransaction, fields: FieldProtection | undefined) => Promise<T>) => Promise<T>

export class OneShotRepository<R extends Row = Row> implements Repository<R> {
  readonly #table: ResolvedTable
  readonly #run: TenantTransactionRunner

  constructor(table: ResolvedTable, run: TenantTransactionRunner) {
    this.#table = table
    this.#run = run
  }

  async #in<T>(fn: (repo: TableRepository<R>, tx: TenantTransaction) => Promise<T>): Promise<T> {
    try {
      return await this.#run((tx, fields) => fn(new TableRepository<R>(this.#table, tx, fields), tx))
    } catch (e) {
      if (!(e instanceof LayoutChangedError)) throw e
      return this.#run((tx, fields) => fn(new TableRepository<R>(this.#table, tx, fields), tx))
    }
  }

  insert(row: R): Promise<R> {
    return this.#in((repo) => repo.insert(row))
  }

  get(id: string | number): Promise<R | undefined> {
    return this.#in((repo) => repo.get(id))
  }

  async find(where: Partial<R>, opts: { limit?: number } = {}): Promise<R[]> {
    let rows: (() => R[]) | undefined
    await this.#in(async (repo, tx) => {
      rows = finishWhileCommitting(tx, await repo.findDeferred(where, opts))
    })
    return rows!()
  }

  update(id: string | number, patch: Partial<R>): Promise<R | undefined> {
    return this.#in((repo) => repo.update(id, patch))
  }

  delete(id: string | number): Promise<boolean> {
    return this.#in((repo) => repo.delete(id))
  }

  list(opts: ListOptions = {}): Promise<Page<R>> {
    return this.#in((repo) => repo.list(opts))
  }
}
