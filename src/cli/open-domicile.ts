/**
 * Opens a Domicile instance for one CLI command from --config (or $DOMICILE_CONFIG, or
 * ./domicile.config.json) and always closes it, so embedded stores flush before the process exits.
 */
import type { Domicile } from '../domicile.js'
import type { ParsedCommand } from './cli-args.js'
import { followsChangeFeed } from './one-shot-runtime.js'

/** Runs `fn` with a Domicile built from the command's config; closes it afterwards. */
export async function withDomicile<T>(p: Pick<ParsedCommand, 'configPath'>, fn: (d: Domicile) => Promise<T>): Promise<T> {
  const { createDomicile } = await import('../index.js')
  const domicile = await createDomicile({ changeFeed: followsChangeFeed(), ...(p.configPath === undefined ? {} : { configPath: p.configPath }) })
  try {
    return await fn(domicile)
  } finally {
    await domicile.close()
  }
}
