/**
 * The classification of every table and column the residency linter prints: where the table lives
 * (`tenant`: the tenant's home region only; `global`: copied to every region), how each column is
 * protected (`searchable`: sealed with a blind index; `sensitive`: sealed; `plain`), whether its
 * name looks personal, and the reason of its `residency: { notPersonal }` waiver.
 */
import type { ColumnType, Schema } from '../schema/define-schema.js'
import { personalNameCategory, type PersonalNameCategory } from './personal-names.js'

export interface ColumnClassification {
  readonly name: string
  readonly type: ColumnType
  readonly protection: 'searchable' | 'sensitive' | 'plain'
  /** The personal category the name looks like, or null. */
  readonly looksPersonal: PersonalNameCategory | null
  /** The waiver's reason, or null. */
  readonly waiver: string | null
}

export interface TableClassification {
  readonly name: string
  readonly scope: 'tenant' | 'global'
  readonly columns: readonly ColumnClassification[]
}

export function classifySchema(schema: Schema): TableClassification[] {
  return [...schema.tables.values()].map((t) => ({
    name: t.name,
    scope: t.scope,
    columns: [...t.columns.values()].map((c) => ({
      name: c.name,
      type: c.type,
      protection: c.sensitive ? (c.sensitive.searchable ? 'searchable' : 'sensitive') : 'plain',
      looksPersonal: personalNameCategory(c.name) ?? null,
      waiver: c.notPersonal ?? null,
    })),
  }))
}
