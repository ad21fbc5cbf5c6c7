/**
 * Argument parsing for the `domicile` command (node:util parseArgs, strict): one spec per command,
 * the options every command accepts (--config, --json, --help), and the usage error that makes the
 * CLI print the command's usage and exit 2.
 */
import { userInfo } from 'node:os'
import { parseArgs } from 'node:util'
import { DomicileError } from '../errors.js'
import { COMMON_OPTIONS_HELP } from './usage.js'

type OptionSpec = { readonly type: 'string' | 'boolean'; readonly short?: string; readonly multiple?: boolean }
export type OptionValues = Record<string, string | boolean | string[] | undefined>

/** A bad command line: printed with the command's usage; exit status 2 (ERR_INPUT_INVALID). */
export class UsageError extends DomicileError {
  readonly usage: string | undefined
  constructor(message: string, usage?: string) {
    super('ERR_INPUT_INVALID', message)
    this.name = 'UsageError'
    this.usage = usage
  }
}

export interface CommandSpec {
  /** The synopsis after "domicile ", e.g. `rows get TENANT TABLE ID`. */
  readonly synopsis: string
  /** One line saying what the command does. */
  readonly summary: string
  /** Names of the positional arguments, in order (all required). */
  readonly positionals?: readonly string[]
  readonly options?: Readonly<Record<string, OptionSpec>>
  /** String options that must be given. */
  readonly required?: readonly string[]
}

export interface ParsedCommand {
  readonly args: readonly string[]
  readonly values: OptionValues
  readonly json: boolean
  /** --config PATH, when given. */
  readonly configPath: string | undefined
}

export interface Command {
  readonly spec: CommandSpec
  run(p: ParsedCommand): Promise<number>
}

const COMMON: Readonly<Record<string, OptionSpec>> = {
  config: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
}

/** The usage text of one command. */
export function commandUsage(spec: CommandSpec): string {
  return `Usage: domicile ${spec.synopsis}\n  ${spec.summary}\n\n${COMMON_OPTIONS_HELP}`
}

/**
 * Parses `argv` against `spec`. Returns null after printing the usage when --help was given.
 * Unknown flags, missing or extra positionals and missing required options throw UsageError.
 */
export function parseCommand(argv: readonly string[], spec: CommandSpec): ParsedCommand | null {
  const usage = commandUsage(spec)
  let r: { values: Record<string, unknown>; positionals: string[] }
  try {
    r = parseArgs({ args: [...argv], options: { ...COMMON, ...spec.options }, allowPositionals: true, strict: true }) as typeof r
  } catch (e) {
    throw new UsageError(`${(e as Error).message.replace(/\. To specify a positional.*$/s, '.')}`, usage)
  }
  if (r.values.help === true) {
    process.stdout.write(usage)
    return null
  }
  const names = spec.positionals ?? []
  if (r.positionals.length < names.length) throw new UsageError(`missing ${names.slice(r.positionals.length).join(' ')}`, usage)
  if (r.positionals.length > names.length) throw new UsageError(`unexpected argument ${JSON.stringify(r.positionals[names.length])}`, usage)
  for (const name of spec.required ?? []) {
    const v = r.values[name]
    if (typeof v !== 'string' || v === '') throw new UsageError(`--${name} is required`, usage)
  }
  const configPath = r.values.config
  if (configPath === '') throw new UsageError('--config needs a file path', usage)
  return {
    args: r.positionals,
    values: r.values as OptionValues,
    json: r.values.json === true,
    configPath: typeof configPath === 'string' ? configPath : undefined,
  }
}

/** Runs a command: parse, then `run` (or print the usage for --help and return 0). */
export async function runCommand(cmd: Command, argv: readonly string[]): Promise<number> {
  const p = parseCommand(argv, cmd.spec)
  return p === null ? 0 : cmd.run(p)
}

/** Dispatches `domicile GROUP SUB ...` to one of `subs`. */
export async function runGroup(group: string, subs: Readonly<Record<string, Command>>, argv: readonly string[]): Promise<number> {
  const usage = groupUsage(group, subs)
  const [sub, ...rest] = argv
  if (sub === '--help' || sub === '-h' || sub === 'help') {
    process.stdout.write(usage)
    return 0
  }
  if (sub === undefined || sub.startsWith('-')) throw new UsageError(`"domicile ${group}" needs a subcommand`, usage)
  const cmd = Object.hasOwn(subs, sub) ? subs[sub] : undefined
  if (!cmd) throw new UsageError(`unknown subcommand "${group} ${sub}"`, usage)
  return runCommand(cmd, rest)
}

function groupUsage(group: string, subs: Readonly<Record<string, Command>>): string {
  const lines = Object.values(subs).map((c) => `  domicile ${c.spec.synopsis}\n      ${c.spec.summary}`)
  return `Usage: domicile ${group} <subcommand> ...\n\n${lines.join('\n')}\n\n${COMMON_OPTIONS_HELP}`
}

/** Parses an option holding a JSON object (--data, --where). */
export function jsonObjectOption(values: OptionValues, name: string): Record<string, unknown> {
  const text = values[name]
  let v: unknown
  try {
    v = JSON.parse(String(text))
  } catch {
    throw new DomicileError('ERR_INPUT_INVALID', `--${name}: not valid JSON. Pass one JSON object, e.g. --${name} '{"id":"c1"}'.`, { path: `--${name}` })
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new DomicileError('ERR_INPUT_INVALID', `--${name}: expected a JSON object of column -> value, e.g. --${name} '{"id":"c1"}'.`, { path: `--${name}` })
  }
  for (const [column, value] of Object.entries(v)) {
    /* Precondition: text values hold no NUL character (PostgreSQL text cannot store U+0000). */
    if (typeof value === 'string' && value.includes('\u0000')) {
      throw new DomicileError('ERR_INPUT_INVALID', `--${name}: the value of "${column}" contains a NUL character (\\u0000), which a text column cannot store. Remove it.`, { path: `--${name}.${column}` })
    }
  }
  return v as Record<string, unknown>
}

/** Parses an optional integer option within [min, max]. */
export function intOption(values: OptionValues, name: string, min: number, max: number): number | undefined {
  const text = values[name]
  if (text === undefined) return undefined
  if (typeof text !== 'string' || !/^-?\d+$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new DomicileError('ERR_INPUT_INVALID', `--${name}: expected an integer from ${min} to ${max}.`, { path: `--${name}` })
  }
  return Number(text)
}

/** An optional string option. */
export function stringOption(values: OptionValues, name: string): string | undefined {
  const v = values[name]
  return typeof v === 'string' ? v : undefined
}

/**
 * Who is acting, for audit records: --actor when given, else the operating-system user running the
 * command (os.userInfo().username; $USER / $LOGNAME, then "uid:N" when the account has no name).
 * Never empty.
 */
export function actorOption(values: OptionValues): string {
  const given = values.actor
  if (typeof given === 'string') {
    /* Precondition: an audited actor is never empty. */
    if (given.trim() === '') throw new DomicileError('ERR_INPUT_INVALID', '--actor: must not be empty; leave it out to record your OS user name.', { path: '--actor' })
    return given
  }
  return osUser()
}

/** The name of the operating-system user running this process (never empty). */
export function osUser(): string {
  try {
    const name = userInfo().username
    if (name) return name
  } catch {
    // No passwd entry for this uid (e.g. a container started with an arbitrary uid).
  }
  const fromEnv = process.env.USER || process.env.LOGNAME || process.env.USERNAME
  if (fromEnv) return fromEnv
  return `uid:${process.getuid?.() ?? 'unknown'}`
}
