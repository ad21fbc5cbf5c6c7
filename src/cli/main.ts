/**
 * The `domicile` command-line entry point: parses the command word and dispatches.
 * Wiring of defaults (config file, providers) happens here and in src/index.ts only.
 *
 * Errors: a DomicileError prints `domicile: CODE: message` on stderr (with --json also
 * `{"error":{"code","message"}}` on stdout) and exits with exitStatusFor(error) (src/cli/exit-codes.ts:
 * 2 for bad usage, config or input, 1 otherwise). No stack traces for DomicileErrors.
 */
import { readFileSync } from 'node:fs'
import { isDomicileError } from '../errors.js'
import { UsageError, runCommand, runGroup } from './cli-args.js'
import { EXIT_FAILURE, exitStatusFor } from './exit-codes.js'
import { tuneForOneShot } from './one-shot-runtime.js'
import { USAGE } from './usage.js'

/** The package version (package.json sits two levels up from src/cli/ and from dist/cli/). */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version
}

/** `domicile ... | head`: a reader that closed the pipe early ends the command quietly, not with an unhandled EPIPE. */
function quietOnClosedPipe(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0)
      throw e
    })
  }
}

export async function main(argv: string[]): Promise<number> {
  quietOnClosedPipe()
  const [cmd, ...rest] = argv
  const json = argv.includes('--json')
  tuneForOneShot(argv)
  try {
    switch (cmd) {
      case 'keyproxy': {
        const { runKeyproxyCommand } = await import('../keyproxy/keyproxy-cli.js')
        return await runKeyproxyCommand(rest)
      }
      case 'help':
      case '--help':
      case '-h':
        return await help(rest)
      case '--version':
      case 'version':
        process.stdout.write(json ? JSON.stringify({ version: packageVersion() }) + '\n' : `${packageVersion()}\n`)
        return 0
      case 'init':
        return await runCommand((await import('./commands/init.js')).initCommand, rest)
      case 'migrate': {
        // `migrate` alone applies the schema; `migrate encrypt|decrypt|verify TABLE.COLUMN` migrates a column online.
        if (rest[0] === 'encrypt' || rest[0] === 'decrypt' || rest[0] === 'verify') {
          const c = await import('./commands/migrate-column.js')
          return await runGroup('migrate', { encrypt: c.migrateEncryptCommand, decrypt: c.migrateDecryptCommand, verify: c.migrateVerifyCommand }, rest)
        }
        return await runCommand((await import('./commands/migrate.js')).migrateCommand, rest)
      }
      case 'shred':
        return await (await import('./commands/shred.js')).runShredCommand(rest)
      case 'demo':
        return await runCommand((await import('./commands/demo.js')).demoCommand, rest)
      case 'region':
        return await (await import('./commands/region.js')).runRegionCommand(rest)
      case 'tenant':
        return await (await import('./commands/tenant.js')).runTenantCommand(rest)
      case 'rows':
        return await (await import('./commands/rows.js')).runRowsCommand(rest)
      case 'key':
        return await (await import('./commands/key.js')).runKeyCommand(rest)
      case 'report':
        return await (await import('./commands/report.js')).runReportCommand(rest)
      case 'serve':
        return await runCommand((await import('./commands/serve.js')).serveCommand, rest)
      case 'global':
        return await (await import('./commands/global.js')).runGlobalCommand(rest)
      case 'replicate':
        return await (await import('./commands/global.js')).runReplicateCommand(rest)
      case 'analytics':
        return await runCommand((await import('./commands/analytics.js')).analyticsCommand, rest)
      case 'lint':
        return await runCommand((await import('./commands/lint.js')).lintCommand, rest)
      case 'audit':
        return await (await import('./commands/audit.js')).runAuditCommand(rest)
      case 'adopt':
        return await (await import('./commands/adopt.js')).runAdoptCommand(rest)
      case undefined:
        throw new UsageError('missing command', USAGE)
      default:
        throw new UsageError(`unknown command ${JSON.stringify(cmd)}`, USAGE)
    }
  } catch (e) {
    if (isDomicileError(e)) {
      process.stderr.write(`domicile: ${e.code}: ${e.message}\n`)
      if (e instanceof UsageError && e.usage !== undefined) process.stderr.write(`\n${e.usage}`)
      if (json) process.stdout.write(JSON.stringify({ error: { code: e.code, message: e.message } }) + '\n')
      return exitStatusFor(e)
    }
    process.stderr.write(`domicile: unexpected error: ${(e as Error)?.message ?? String(e)}\n`)
    if (process.env.DOMICILE_DEBUG && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`)
    if (json) process.stdout.write(JSON.stringify({ error: { code: 'ERR_UNEXPECTED', message: (e as Error)?.message ?? String(e) } }) + '\n')
    return EXIT_FAILURE
  }
}

/** `domicile help [COMMAND]`: the overview, or one command group's usage. */
async function help(rest: readonly string[]): Promise<number> {
  const topic = rest.find((a) => !a.startsWith('-'))
  if (topic !== undefined && topic !== 'help') return main([topic, '--help'])
  process.stdout.write(USAGE)
  return 0
}
