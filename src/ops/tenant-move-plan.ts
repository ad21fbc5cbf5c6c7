/**
 * The plan of a tenant move: which tables hold the tenant's rows, each table's columns as both
 * region stores have them, and the order the tables' foreign keys accept (parents before children
 * for inserts, children before parents for deletes). Read from the stores' catalogs, so a
 * constraint added outside the schema DSL (a raw `REFERENCES`) is honoured too.
 */
import { DomicileError } from '../errors.js'
import type { StoreSession } from '../regions/store-driver.js'
import type { ResolvedTable, Schema, TenantColumnDef } from '../schema/define-schema.js'
import { q } from '../schema/ddl.js'
import { tenantColumnOf } from '../schema/tenant-column.js'

/** A foreign key from a tenant table to another (or the same) tenant table. */
export interface MoveForeignKey {
  readonly name: string
  readonly columns: readonly string[]
  readonly parent: string
  readonly parentColumns: readonly string[]
  readonly deferrable: boolean
}

/** A sequence owned by an integer column of an adopted table (bigserial, identity). */
export interface MoveSequence {
  /** The sequence, as its regclass text (quoted and qualified as PostgreSQL prints it). */
  readonly sequence: string
  readonly column: string
}

export interface MoveTable {
  readonly name: string
  /** The schema's table (the tenant-column helpers of src/schema/tenant-column.ts take it). */
  readonly def: ResolvedTable
  /** The column holding the tenant id: `tenant_id` text for a table Domicile creates, the declared one for an adopted table. */
  readonly tenantColumn: TenantColumnDef
  /** The column that tells the tenant's rows apart (the schema's single key) and its SQL type. */
  readonly pk: string
  readonly pkType: string
  /** The table's primary key as the database has it: the ON CONFLICT target of an upsert. */
  readonly keyColumns: readonly string[]
  /** Every column, the tenant column included, in the target table's physical order (the row type's order). */
  readonly columns: readonly string[]
  /** Foreign keys to tenant tables, as the target region enforces them. */
  readonly foreignKeys: readonly MoveForeignKey[]
  /** Sequences owned by the table's integer columns in the target (adopted tables only; none for a created table). */
  readonly sequences: readonly MoveSequence[]
  /**
   * The bulk copy may check this table's foreign keys once per chunk instead of once per row
   * (tenant-move-copier.ts `writeChunk`): the target's owner may set `session_replication_role`
   * (superuser, or `GRANT SET ON PARAMETER`), the table has foreign keys and each of them, as the
   * target enforces it, references a tenant table of this plan, is MATCH SIMPLE and not deferrable,
   * and the table has no trigger or rule of its own in the target (the replica role would skip them).
   */
  readonly chunkForeignKeyCheck: boolean
}

export interface MovePlan {
  /** Parents before children. */
  readonly tables: readonly MoveTable[]
  /** Some foreign keys form a cycle of DEFERRABLE constraints: writes defer them to commit. */
  readonly deferred: boolean
  /**
   * Foreign keys between tenant tables in the source whose columns no index starts with: each row
   * the purge deletes from the parent makes the server scan the child for it, so the purge grows
   * with the square of the tenant's rows. Advice for the operator (the move still runs).
   */
  readonly unindexedForeignKeys: ReadonlyArray<{ readonly table: string; readonly columns: readonly string[]; readonly parent: string }>
}

interface ColumnRow { table: string; column: string; type: string; pos: number }
interface FkRow { name: string; child: string; parent: string; cols: string[]; pcols: string[]; deferrable: boolean; match: string }

async function readColumns(s: StoreSession, tables: readonly string[]): Promise<ColumnRow[]> {
  const r = await s.query<ColumnRow>(
    `SELECT c.relname AS table, a.attname AS column, format_type(a.atttypid, a.atttypmod) AS type, a.attnum AS pos
     FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
     WHERE c.oid = ANY(SELECT to_regclass(t)::oid FROM unnest($1::text[]) t) AND a.attnum > 0 AND NOT a.attisdropped
     ORDER BY c.relname, a.attnum`, [tables.map((t) => q(t))])
  return r.rows
}

/** Sequences owned by integer columns of the tables (serial, bigserial, identity), with their columns. */
async function readSequences(s: StoreSession, tables: readonly string[]): Promise<Array<{ table: string; column: string; sequence: string }>> {
  if (tables.length === 0) return []
  const r = await s.query<{ table: string; column: string; sequence: string }>(
    `SELECT c.relname AS table, a.attname AS column, q.oid::regclass::text AS sequence
     FROM pg_depend d JOIN pg_class q ON q.oid = d.objid AND q.relkind = 'S'
     JOIN pg_class c ON c.oid = d.refobjid
     JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid AND NOT a.attisdropped
     WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
       AND a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype)
       AND d.refobjid = ANY(SELECT to_regclass(t)::oid FROM unnest($1::text[]) t)
     ORDER BY c.relname, a.attnum`, [tables.map((t) => q(t))])
  return r.rows
}

/** The leading columns of every index of the tables (as many as each index has key columns). */
async function readIndexPrefixes(s: StoreSession, tables: readonly string[]): Promise<Array<{ table: string; cols: string[] }>> {
  const r = await s.query<{ table: string; cols: string[] }>(
    `SELECT c.relname AS table,
            ARRAY(SELECT a.attname::text FROM unnest(x.indkey::int2[]) WITH ORDINALITY u(n, i) JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = u.n ORDER BY u.i) AS cols
     FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid
     WHERE x.indrelid = ANY(SELECT to_regclass(t)::oid FROM unnest($1::text[]) t)`, [tables.map((t) => q(t))])
  return r.rows
}

/** Foreign keys among the tables whose columns are not the leading columns (in any order) of an index. */
function unindexed(fks: readonly FkRow[], indexes: ReadonlyArray<{ table: string; cols: string[] }>, tables: readonly string[]): MovePlan['unindexedForeignKeys'] {
  return fks.filter((f) => tables.includes(f.parent) && f.child !== f.parent && !indexes.some((ix) =>
    ix.table === f.child && ix.cols.length >= f.cols.length && f.cols.every((c) => ix.cols.slice(0, f.cols.length).includes(c))))
    .map((f) => Object.freeze({ table: f.child, columns: Object.freeze([...f.cols]), parent: f.parent }))
}

async function readForeignKeys(s: StoreSession, tables: readonly string[]): Promise<FkRow[]> {
  const r = await s.query<FkRow>(
    `SELECT k.conname AS name, c.relname AS child, p.relname AS parent, k.condeferrable AS deferrable, k.confmatchtype::text AS match,
            ARRAY(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY u(n, i) JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.i) AS cols,
            ARRAY(SELECT a.attname::text FROM unnest(k.confkey) WITH ORDINALITY u(n, i) JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY u.i) AS pcols
     FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class p ON p.oid = k.confrelid
     WHERE k.contype = 'f' AND k.conrelid = ANY(SELECT to_regclass(t)::oid FROM unnest($1::text[]) t)
     ORDER BY k.conname`, [tables.map((t) => q(t))])
  return r.rows
}

/** Tables with a trigger or rule of their own (not a foreign key's internal triggers). */
async function readTriggeredTables(s: StoreSession, tables: readonly string[]): Promise<Set<string>> {
  const r = await s.query<{ table: string }>(
    `SELECT c.relname AS table FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
     WHERE NOT g.tgisinternal AND g.tgrelid = ANY(SELECT to_regclass(t)::oid FROM unnest($1::text[]) t)
     UNION
     SELECT c.relname FROM pg_rewrite w JOIN pg_class c ON c.oid = w.ev_class
     WHERE w.rulename <> '_RETURN' AND w.ev_class = ANY(SELECT to_regclass(t)::oid FROM unnest($1::text[]) t)`, [tables.map((t) => q(t))])
  return new Set(r.rows.map((x) => x.table))
}

/** Whether this session may set `session_replication_role` (PostgreSQL 15: superuser or GRANT SET ON PARAMETER). */
async function maySetReplicationRole(s: StoreSession): Promise<boolean> {
  try {
    const r = await s.query<{ ok: boolean }>("SELECT has_parameter_privilege('session_replication_role', 'SET') AS ok")
    return r.rows[0]?.ok === true
  } catch {
    return false // a server without the function (before PostgreSQL 15)
  }
}

/**
 * Orders tables so that every non-deferrable foreign key points backwards (parents first).
 * Self-references need no order (a table's rows are written in one statement per step).
 */
export function orderTables(names: readonly string[], fks: ReadonlyArray<{ readonly child: string; readonly parent: string; readonly deferrable: boolean }>): { order: string[]; deferred: boolean } {
  const parents = new Map<string, Set<string>>(names.map((n) => [n, new Set<string>()]))
  let deferred = false
  const edges = fks.filter((f) => f.child !== f.parent && parents.has(f.child) && parents.has(f.parent))
  for (const f of edges) {
    if (f.deferrable) deferred = true
    else parents.get(f.child)!.add(f.parent)
  }
  const order: string[] = []
  const placed = new Set<string>()
  const sorted = [...names].sort()
  while (order.length < sorted.length) {
    const next = sorted.find((n) => !placed.has(n) && [...parents.get(n)!].every((p) => placed.has(p)))
    if (next === undefined) {
      const stuck = sorted.filter((n) => !placed.has(n))
      throw new DomicileError('ERR_SCHEMA_INVALID',
        `Tables ${stuck.join(', ')} reference each other through foreign keys that are not DEFERRABLE, so no order of writes satisfies them. Declare those constraints DEFERRABLE (INITIALLY IMMEDIATE is fine) to move tenants.`)
    }
    placed.add(next)
    order.push(next)
  }
  return { order, deferred }
}

/**
 * Reads both stores' catalogs and makes the plan. Both regions must have the same tenant tables
 * with the same columns and types (`domicile migrate` brings them level).
 */
export async function planTables(schema: Schema, source: StoreSession, target: StoreSession): Promise<MovePlan> {
  const names = [...schema.tables.values()].filter((t) => t.scope === 'tenant').map((t) => t.name)
  const adopted = names.filter((n) => schema.table(n).adopted)
  const [srcCols, dstCols, srcFks, dstFks] = await Promise.all([readColumns(source, names), readColumns(target, names), readForeignKeys(source, names), readForeignKeys(target, names)])
  const dstSeqs = await readSequences(target, adopted)
  const [triggered, replicaAllowed] = await Promise.all([readTriggeredTables(target, names), maySetReplicationRole(target)])
  const srcIndexes = await readIndexPrefixes(source, names)
  const byTable = (rows: ColumnRow[]) => {
    const m = new Map<string, ColumnRow[]>()
    for (const r of rows) (m.get(r.table) ?? m.set(r.table, []).get(r.table)!).push(r)
    return m
  }
  const src = byTable(srcCols)
  const dst = byTable(dstCols)
  for (const n of names) {
    const a = src.get(n)
    const b = dst.get(n)
    const sig = (rows: ColumnRow[] | undefined) => (rows ?? []).map((r) => `${r.column}:${r.type}`).sort().join(',')
    /* Precondition: both regions hold every tenant table with the same columns and types. */
    if (!a || !b || sig(a) !== sig(b)) {
      throw new DomicileError('ERR_NOT_MIGRATED', `Table "${n}" differs between the two regions (or is missing in one). Run "domicile migrate" so both regions have the same tables, then start the move again.`)
    }
  }
  // Constraints of either side count: the target checks inserts, the source checks the purge.
  const fks = [...dstFks, ...srcFks.filter((f) => !dstFks.some((d) => d.name === f.name && d.child === f.child))]
  const { order, deferred } = orderTables(names, fks)
  const tables = order.map((name): MoveTable => {
    const def = schema.table(name)
    const tenantColumn = tenantColumnOf(def)
    const cols = dst.get(name)!
    const pk = cols.find((c) => c.column === def.primaryKey)
    // A created table's key is (tenant_id, pk); an adopted table's is the one the schema declares (checked by migrate).
    const keyColumns = def.adopted ? [...def.primaryKeyColumns] : [tenantColumn.name, def.primaryKey]
    /* Precondition: the table has its tenant column and every key column in the target. */
    if (!pk || !cols.some((c) => c.column === tenantColumn.name) || !keyColumns.every((k) => cols.some((c) => c.column === k))) {
      throw new DomicileError('ERR_NOT_MIGRATED', `Table "${name}" lacks its tenant column or a key column in the regions. Run "domicile migrate" so both regions have the tables the schema describes, then start the move again.`)
    }
    const enforced = dstFks.filter((f) => f.child === name)
    const chunkForeignKeyCheck = replicaAllowed && enforced.length > 0 && !triggered.has(name) &&
      enforced.every((f) => names.includes(f.parent) && !f.deferrable && f.match === 's')
    return Object.freeze({
      name, def, tenantColumn, pk: def.primaryKey, pkType: pk.type, keyColumns: Object.freeze(keyColumns), chunkForeignKeyCheck,
      columns: Object.freeze(cols.map((c) => c.column)),
      sequences: Object.freeze(dstSeqs.filter((x) => x.table === name).map((x) => Object.freeze({ sequence: x.sequence, column: x.column }))),
      foreignKeys: Object.freeze(dstFks.filter((f) => f.child === name && names.includes(f.parent)).map((f) => Object.freeze({
        name: f.name, columns: Object.freeze([...f.cols]), parent: f.parent, parentColumns: Object.freeze([...f.pcols]), deferrable: f.deferrable,
      }))),
    })
  })
  return Object.freeze({ tables: Object.freeze(tables), deferred, unindexedForeignKeys: Object.freeze(unindexed(srcFks, srcIndexes, names)) })
}
