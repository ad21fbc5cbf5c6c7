/**
 * Reads what an existing application database is made of, from pg_catalog: the ordinary and
 * partitioned tables of one schema (partitions are read through their parent), their columns
 * (type, NOT NULL, default, identity, generated), primary keys, foreign keys, the number of CHECK
 * constraints and indexes, and row counts. Works on PostgreSQL and PGlite, on any login that can
 * read the catalog and count the tables' rows. Reads only: no row content leaves this module.
 *
 * Row counts: exact (`count(*)`) for a table of at most 64 MB on disk or one never analysed;
 * otherwise the planner's estimate (`pg_class.reltuples`), marked as such.
 *
 * @example
 * ```ts
 * const catalog = await driver.withSession((s) => readCatalog(s, 'public'), { role: 'owner' })
 * for (const t of catalog.tables) console.log(t.name, t.primaryKey, t.rows)
 * ```
 */
import { DomicileError } from '../errors.js'
import type { StoreSession } from '../regions/store-driver.js'
import { q } from '../schema/ddl.js'

export interface CatalogColumn {
  readonly name: string
  /** As PostgreSQL prints it, e.g. `character varying(255)`, `bigint`, `timestamp without time zone`. */
  readonly sqlType: string
  /** The base type's name (`int8`, `varchar`, `citext`, `_text` for text[]); a domain's base type. */
  readonly baseType: string
  /** 'b' base, 'e' enum, 'c' composite, 'r' range, 'm' multirange, 'p' pseudo (of the base type). */
  readonly typeKind: string
  readonly notNull: boolean
  /** A DEFAULT expression (bigserial's nextval, now(), ...) or an identity column. */
  readonly hasDefault: boolean
  /** GENERATED ALWAYS AS (...) STORED: computed by the database, cannot be written. */
  readonly generated: boolean
}

export interface CatalogForeignKey {
  readonly name: string
  readonly columns: readonly string[]
  readonly refSchema: string
  readonly refTable: string
  readonly refColumns: readonly string[]
}

export interface CatalogTable {
  readonly name: string
  readonly partitioned: boolean
  readonly columns: readonly CatalogColumn[]
  /** The primary key's columns in key order; null when the table has none. */
  readonly primaryKey: readonly string[] | null
  readonly foreignKeys: readonly CatalogForeignKey[]
  readonly checks: number
  readonly indexes: number
  readonly rows: number
  /** false: `rows` is the planner's estimate. */
  readonly rowsExact: boolean
}

export interface Catalog {
  readonly schema: string
  readonly tables: readonly CatalogTable[]
}

/** Tables of at most this size on disk are counted exactly. */
const EXACT_COUNT_BYTES = 64 * 1024 * 1024

const TABLES_SQL = `
SELECT c.oid::int8 AS oid, c.relname AS name, c.relkind = 'p' AS partitioned, c.reltuples::float8 AS reltuples,
       (SELECT coalesce(sum(pg_relation_size(i.inhrelid)), 0) FROM pg_inherits i WHERE i.inhparent = c.oid)::float8
         + pg_relation_size(c.oid)::float8 AS bytes,
       (SELECT count(*) FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'c')::int AS checks,
       (SELECT count(*) FROM pg_index x WHERE x.indrelid = c.oid)::int AS indexes
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition
 ORDER BY c.relname`

const COLUMNS_SQL = `
SELECT a.attrelid::int8 AS oid, a.attname AS name, format_type(a.atttypid, a.atttypmod) AS sql_type,
       CASE WHEN t.typtype = 'd' THEN bt.typname ELSE t.typname END AS base_type,
       CASE WHEN t.typtype = 'd' THEN bt.typtype ELSE t.typtype END AS type_kind,
       a.attnotnull AS not_null, (a.atthasdef OR a.attidentity <> '') AS has_default, a.attgenerated <> '' AS generated
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_type t ON t.oid = a.atttypid LEFT JOIN pg_type bt ON bt.oid = t.typbasetype
 WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY a.attrelid, a.attnum`

const KEYS_SQL = `
SELECT k.conrelid::int8 AS oid, k.contype AS kind, k.conname AS name, rn.nspname AS ref_schema, rc.relname AS ref_table,
       (SELECT json_agg(a.attname ORDER BY u.ord) FROM unnest(k.conkey) WITH ORDINALITY u(num, ord)
          JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.num) AS columns,
       (SELECT json_agg(a.attname ORDER BY u.ord) FROM unnest(k.confkey) WITH ORDINALITY u(num, ord)
          JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.num) AS ref_columns
  FROM pg_constraint k
  JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_class rc ON rc.oid = k.confrelid LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
 WHERE n.nspname = $1 AND k.contype IN ('p', 'f') AND NOT c.relispartition
 ORDER BY k.conrelid, k.conname`

interface TableRow { oid: string | number; name: string; partitioned: boolean; reltuples: number | string; bytes: number | string; checks: number; indexes: number }
interface ColumnRow { oid: string | number; name: string; sql_type: string; base_type: string; type_kind: string; not_null: boolean; has_default: boolean; generated: boolean }
interface KeyRow { oid: string | number; kind: 'p' | 'f'; name: string; ref_schema: string | null; ref_table: string | null; columns: unknown; ref_columns: unknown }

/** json_agg arrives parsed (pg, PGlite) or as text (other drivers). */
function names(v: unknown): string[] {
  const a: unknown = typeof v === 'string' ? JSON.parse(v) : v
  return Array.isArray(a) ? a.map(String) : []
}

/**
 * Reads the catalog of `schema`. Runs in a READ ONLY transaction of its own on `s` (rolled back).
 * Throws ERR_INPUT_INVALID when the schema does not exist.
 */
export async function readCatalog(s: StoreSession, schema: string): Promise<Catalog> {
  await s.query('BEGIN READ ONLY')
  try {
    const ns = await s.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = $1', [schema])
    /* Precondition: the schema to inspect exists. */
    if (Number(ns.rows[0]?.n ?? 0) === 0) throw new DomicileError('ERR_INPUT_INVALID', `The database has no schema named ${JSON.stringify(schema)}. Pass the application's schema with --db-schema NAME (default: public).`, { path: '--db-schema' })
    const tables = (await s.query<TableRow>(TABLES_SQL, [schema])).rows
    const columns = (await s.query<ColumnRow>(COLUMNS_SQL, [schema])).rows
    const keys = (await s.query<KeyRow>(KEYS_SQL, [schema])).rows
    const out: CatalogTable[] = []
    for (const t of tables) {
      const oid = String(t.oid)
      const mine = keys.filter((k) => String(k.oid) === oid)
      const pk = mine.find((k) => k.kind === 'p')
      const reltuples = Number(t.reltuples)
      const exact = reltuples < 0 || Number(t.bytes) <= EXACT_COUNT_BYTES
      const rows = exact
        ? Number((await s.query<{ n: string | number }>(`SELECT count(*) AS n FROM ${q(schema)}.${q(t.name)}`)).rows[0]?.n ?? 0)
        : Math.round(reltuples)
      out.push({
        name: t.name,
        partitioned: t.partitioned,
        columns: columns.filter((c) => String(c.oid) === oid).map((c) => ({
          name: c.name, sqlType: c.sql_type, baseType: c.base_type, typeKind: c.type_kind,
          notNull: c.not_null, hasDefault: c.has_default, generated: c.generated,
        })),
        primaryKey: pk ? names(pk.columns) : null,
        foreignKeys: mine.filter((k) => k.kind === 'f').map((k) => ({
          name: k.name, columns: names(k.columns), refSchema: k.ref_schema ?? schema, refTable: k.ref_table ?? '', refColumns: names(k.ref_columns),
        })),
        checks: Number(t.checks),
        indexes: Number(t.indexes),
        rows,
        rowsExact: exact,
      })
    }
    return { schema, tables: out }
  } finally {
    await s.query('ROLLBACK').catch(() => s.discard())
  }
}
