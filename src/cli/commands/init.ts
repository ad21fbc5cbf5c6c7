/**
 * `domicile init [--dir DIR] [--force]`: writes an example config (two embedded regions, a
 * control plane, local keys) and an example schema. Never overwrites without --force.
 */
import { existsSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { dirname, join, relative, resolve } from 'node:path'
import { DomicileError } from '../../errors.js'
import { UsageError, commandUsage, stringOption, type Command } from '../cli-args.js'
import { printJson, println } from '../cli-output.js'
import { EXAMPLE_SCHEMA, exampleConfig } from '../templates.js'

export const CONFIG_FILE = 'domicile.config.json'
export const SCHEMA_FILE = 'domicile.schema.mjs'

export interface InitResult {
  readonly config: string
  readonly schema: string
}

/**
 * Writes the example config and schema into `dir`. Throws ERR_INPUT_INVALID if either exists and
 * `force` is not set; nothing is written then.
 */
export async function writeExampleFiles(dir: string, opts: { force?: boolean; configFile?: string } = {}): Promise<InitResult> {
  const config = resolve(dir, opts.configFile ?? CONFIG_FILE)
  const schema = join(dirname(config), SCHEMA_FILE)
  /* Precondition: init never overwrites a file unless asked to. */
  if (opts.force !== true) {
    for (const f of [config, schema]) {
      if (existsSync(f)) throw new DomicileError('ERR_INPUT_INVALID', `${f} already exists. Pass --force to overwrite it, or --dir to write somewhere else.`, { path: f })
    }
  }
  await mkdir(dirname(config), { recursive: true })
  await writeFile(config, JSON.stringify(exampleConfig(), null, 2) + '\n')
  await writeFile(schema, EXAMPLE_SCHEMA)
  return { config, schema }
}

export const initCommand: Command = {
  spec: {
    synopsis: 'init [--dir DIR] [--force]',
    summary: 'write DIR/domicile.config.json and DIR/domicile.schema.mjs (default DIR: the current directory)',
    options: { dir: { type: 'string' }, force: { type: 'boolean' } },
  },
  async run(p) {
    const dir = stringOption(p.values, 'dir')
    if (dir !== undefined && p.configPath !== undefined) throw new UsageError('pass either --dir or --config, not both', commandUsage(this.spec))
    const r = p.configPath !== undefined
      ? await writeExampleFiles(dirname(resolve(p.configPath)), { force: p.values.force === true, configFile: resolve(p.configPath) })
      : await writeExampleFiles(dir ?? '.', { force: p.values.force === true })
    const rel = relative(process.cwd(), dirname(r.config)) || '.'
    const isDefaultName = r.config.endsWith(`/${CONFIG_FILE}`) || r.config.endsWith(`\\${CONFIG_FILE}`)
    const next = rel === '.' && isDefaultName ? 'domicile migrate' : `domicile migrate --config ${relative(process.cwd(), r.config)}`
    if (p.json) {
      printJson({ config: r.config, schema: r.schema, next })
      return 0
    }
    println(`wrote ${r.config}`)
    println(`wrote ${r.schema}`)
    println('')
    println(`Next: ${next}`)
    println('  (creates the stores under .domicile/ next to the config; then "domicile tenant add acme --region eu-west-1")')
    return 0
  },
}
