/**
 * A Kysely plugin on the scope's query builder: it refuses queries that would write plaintext
 * into a sensitive column (or its blind index), or filter, order, group or join on one, since
 * that would send a plaintext comparison to the database. Selecting a sensitive column is allowed
 * (it returns ciphertext). Raw SQL fragments (`sql\`...\``) are opaque to it: the repository API
 * is the supported way to read and write sensitive fields.
 */
import type { KyselyPlugin, OperationNode, PluginTransformQueryArgs, PluginTransformResultArgs, QueryResult, RootOperationNode, UnknownRow } from 'kysely'
import { DomicileError } from '../errors.js'
import type { Schema } from '../schema/define-schema.js'

type AnyNode = OperationNode & Record<string, unknown>

function walk(node: unknown, visit: (n: AnyNode) => void): void {
  if (Array.isArray(node)) {
    for (const x of node) walk(x, visit)
    return
  }
  if (typeof node !== 'object' || node === null) return
  const n = node as AnyNode
  if (typeof n.kind === 'string') visit(n)
  for (const v of Object.values(n)) if (typeof v === 'object' && v !== null) walk(v, visit)
}

const identifier = (n: unknown): string | undefined => {
  const id = n as { name?: unknown } | undefined
  return typeof id?.name === 'string' ? id.name : undefined
}

function columnsIn(node: unknown): string[] {
  const out: string[] = []
  walk(node, (n) => {
    if (n.kind === 'ColumnNode') {
      const name = identifier(n.column)
      if (name) out.push(name)
    }
  })
  return out
}

export function sensitiveColumnGuard(schema: Schema): KyselyPlugin {
  const byTable = new Map<string, Set<string>>()
  for (const t of schema.tables.values()) {
    const names = new Set<string>()
    for (const c of t.sensitiveColumns) {
      names.add(c.name)
      if (c.indexColumn) names.add(c.indexColumn)
    }
    if (names.size > 0) byTable.set(t.name, names)
  }
  const refuse = (what: string, column: string): never => {
    throw new DomicileError('ERR_QUERY_UNSUPPORTED',
      `The query builder cannot ${what} the sensitive column "${column}": that would put plaintext in the database. Use the repository (scope.table(...)), which seals values and searches through blind indexes.`)
  }
  return {
    transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
      const root = args.node as unknown as AnyNode
      const sensitive = new Set<string>()
      walk(root, (n) => {
        if (n.kind === 'TableNode') {
          const name = identifier((n.table as { identifier?: unknown } | undefined)?.identifier)
          for (const c of (name && byTable.get(name)) || []) sensitive.add(c)
        }
      })
      if (sensitive.size === 0) return args.node
      if (root.kind === 'InsertQueryNode') {
        for (const c of columnsIn(root.columns)) if (sensitive.has(c)) refuse('write', c)
      }
      if (root.kind === 'UpdateQueryNode') {
        for (const u of (root.updates as unknown[] | undefined) ?? []) {
          for (const c of columnsIn((u as { column?: unknown }).column)) if (sensitive.has(c)) refuse('write', c)
        }
      }
      for (const key of ['where', 'orderBy', 'groupBy', 'having', 'distinctOn', 'joins', 'onConflict'] as const) {
        for (const c of columnsIn(root[key])) if (sensitive.has(c)) refuse(key === 'orderBy' ? 'order by' : key === 'groupBy' ? 'group by' : 'filter or join on', c)
      }
      return args.node
    },
    async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
      return args.result
    },
  }
}
