/**
 * `domicile analytics --table T --group-by C --measure count [--measure sum:COL ...] [--where COL=VALUE ...]`:
 * region-local analytics (src/analytics/). Each region aggregates its own tenants' rows and
 * suppresses small groups before anything leaves it; the merged figures are printed as a table, or
 * with --json as `{ groups, contributed, unavailable, suppressedGroups }`. A partial result (a
 * region unavailable) is printed and named on stderr; when no region answered the exit status is 1.
 */
import { runAnalytics, type AnalyticsQuery, type FilterRange } from '../../analytics/run-analytics.js'
import { DomicileError } from '../../errors.js'
import { actorOption, intOption, stringOption, type Command, type CommandSpec, type OptionValues } from '../cli-args.js'
import { formatTable, plain, printJson, println } from '../cli-output.js'
import { EXIT_FAILURE, EXIT_OK } from '../exit-codes.js'
import { withDomicile } from '../open-domicile.js'

/** Options given more than once (node:util parseArgs `multiple`). */
const OPTIONS: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {
  table: { type: 'string' },
  'group-by': { type: 'string', multiple: true },
  measure: { type: 'string', multiple: true },
  where: { type: 'string', multiple: true },
  'min-group-size': { type: 'string' },
  'timeout-ms': { type: 'string' },
  actor: { type: 'string' },
}

const spec: CommandSpec = {
  synopsis: 'analytics --table T [--group-by C ...] --measure count|sum:COL|avg:COL|min:COL|max:COL [--measure ...] [--where COL=VALUE ...] [--min-group-size N] [--timeout-ms N] [--actor A]',
  summary: 'aggregate a tenant table in every region (only aggregates leave a region; groups smaller than --min-group-size, default 5, are suppressed there)',
  options: OPTIONS,
  required: ['table'],
}

/** A repeatable option's values (each may also be a comma-separated list). */
function listOption(values: OptionValues, name: string, split: boolean): string[] {
  const v: unknown = values[name]
  const given = Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : typeof v === 'string' ? [v] : []
  return split ? given.flatMap((x) => x.split(',')).map((x) => x.trim()).filter((x) => x !== '') : given
}

const WHERE = /^([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|!=|=|>|<)(.*)$/s
const OPS: Readonly<Record<string, keyof FilterRange>> = { '=': 'eq', '!=': 'ne', '<': 'lt', '<=': 'lte', '>': 'gt', '>=': 'gte' }

/** `--where plan=pro --where amount>=10` → { plan: { eq: 'pro' }, amount: { gte: '10' } } (typed by the column later). */
function whereOption(items: readonly string[]): Record<string, FilterRange> {
  const where: Record<string, Record<string, string>> = {}
  for (const item of items) {
    const m = WHERE.exec(item)
    if (!m) throw new DomicileError('ERR_INPUT_INVALID', '--where: expected COL=VALUE (or COL!=, <, <=, >, >= VALUE), e.g. --where plan=pro --where amount>=10.', { path: '--where' })
    const [, col, op, value] = m as unknown as [string, string, string, string]
    const range = (where[col] ??= {})
    const key = OPS[op]!
    if (key in range) throw new DomicileError('ERR_INPUT_INVALID', `--where: "${col}${op}" is given twice.`, { path: '--where' })
    range[key] = value
  }
  return where
}

export const analyticsCommand: Command = {
  spec,
  async run(p) {
    const minGroupSize = intOption(p.values, 'min-group-size', 2, 1_000_000)
    const timeoutMs = intOption(p.values, 'timeout-ms', 100, 3_600_000)
    const query: AnalyticsQuery = {
      table: stringOption(p.values, 'table') ?? '',
      groupBy: listOption(p.values, 'group-by', true),
      measures: listOption(p.values, 'measure', true),
      where: whereOption(listOption(p.values, 'where', false)),
      ...(minGroupSize === undefined ? {} : { minGroupSize }),
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
      actor: actorOption(p.values),
    }
    const r = await withDomicile(p, (d) => runAnalytics(d, query))
    if (r.unavailable.length > 0) {
      process.stderr.write(`warning: partial result: region(s) ${r.unavailable.join(', ')} did not answer; their rows are not in the figures.\n`)
    }
    if (p.json) {
      printJson(r)
    } else {
      const keys = r.groups.length > 0 ? Object.keys(r.groups[0]!) : [...(query.groupBy ?? []), 'count']
      println(formatTable(keys.map((k) => k.toUpperCase()), r.groups.map((g) => keys.map((k) => (g[k] === null ? '-' : plain(g[k]))))))
      println()
      println(`contributed: ${r.contributed.join(', ') || '(none)'}`)
      println(`unavailable: ${r.unavailable.join(', ') || '(none)'}`)
      println(`suppressed groups (fewer than ${minGroupSize ?? 5} rows in a region): ${r.suppressedGroups}`)
    }
    return r.contributed.length === 0 ? EXIT_FAILURE : EXIT_OK
  },
}
