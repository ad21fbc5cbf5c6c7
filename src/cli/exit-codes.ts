/**
 * The exit status of the `domicile` command, decided in one place from the error code:
 * 0 ok; 2 bad usage, configuration or input (the command will not succeed until it is changed);
 * 1 any other failure (unknown tenant or row, region down, key revoked, ...: the state of the
 * system, not the command line). Errors that are not DomicileErrors are 1.
 */
import { isDomicileError, type DomicileErrorCode } from '../errors.js'

/** Codes that mean "the command line, the config or the input is wrong": exit 2. */
export const INPUT_ERROR_CODES: ReadonlySet<DomicileErrorCode> = new Set<DomicileErrorCode>([
  'ERR_INPUT_INVALID',
  'ERR_CONFIG_INVALID',
  'ERR_SCHEMA_INVALID',
  'ERR_TENANT_INVALID',
  'ERR_TABLE_UNKNOWN',
  'ERR_COLUMN_UNKNOWN',
  'ERR_QUERY_UNSUPPORTED',
  'ERR_REGION_UNKNOWN',
  'ERR_CELL_UNKNOWN',
  'ERR_KEY_IMPORT_INVALID',
  'ERR_KEY_PROVIDER_UNKNOWN',
])

export const EXIT_OK = 0
export const EXIT_FAILURE = 1
export const EXIT_INPUT = 2

/** The exit status for an error thrown by a command. */
export function exitStatusFor(e: unknown): number {
  return isDomicileError(e) && INPUT_ERROR_CODES.has(e.code) ? EXIT_INPUT : EXIT_FAILURE
}

/** The paragraph of `domicile help` that documents the exit status. */
export const EXIT_STATUS_HELP = `Exit status:
  0  ok
  1  the command was valid but failed: unknown tenant or row, tenant suspended, region unreachable,
     key revoked or its provider unavailable, ...
  2  bad usage, configuration or input: unknown command or option, invalid JSON or value, unknown
     region, table or column, invalid key material or import token (${[...INPUT_ERROR_CODES].join(', ')})
`
