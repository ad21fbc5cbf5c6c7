/**
 * Process tuning for one-shot CLI commands, in one place.
 *
 * An embedded PGlite store is PostgreSQL compiled to WebAssembly, and V8 compiles that module twice:
 * a quick baseline (Liftoff) and then, on background threads, optimised code (TurboFan) for the hot
 * functions. A command that opens two stores and runs a handful of statements is over before the
 * optimised code pays back, while compiling it competes for the CPU with the command itself (measured
 * on the 2-core CI machine: `rows get` on PGlite 2.5 s → 1.4 s with baseline code only, see
 * BENCHMARKS.md "CLI latency"). So short commands run WebAssembly on baseline code only.
 *
 * The same commands skip the tenant directory's change feed (`followsChangeFeed`), and on Node 20 get
 * the global `navigator` of Node 21+ (`provideNavigator`).
 *
 * Long-running commands (the HTTP service, the demo, online operations that touch every row) keep
 * V8's default tiering: there the optimised code wins. The flag is process-wide and must be set
 * before the first WebAssembly module is compiled, so `main` calls this before dispatching.
 */
import { availableParallelism } from 'node:os'
import { setFlagsFromString } from 'node:v8'

/** Command words (and `group sub` pairs) that run long enough for optimised WebAssembly to pay off. */
const LONG_RUNNING: ReadonlySet<string> = new Set([
  'serve', 'demo', 'keyproxy serve',
  'migrate encrypt', 'migrate decrypt', 'migrate verify',
  'tenant move', 'key rotate-data', 'key rotate-index', 'shred verify', 'adopt tenants', 'adopt globals',
])

/** True when `argv` (without node and the script) names a short command. */
export function isOneShotCommand(argv: readonly string[]): boolean {
  const [cmd, sub] = argv
  if (cmd === undefined) return true
  return !LONG_RUNNING.has(cmd) && !(sub !== undefined && LONG_RUNNING.has(`${cmd} ${sub}`))
}

let oneShot = false

/**
 * Called by `main` before dispatching. For a short command: WebAssembly on baseline code only, and
 * (see `followsChangeFeed`) no tenant-directory change feed. No-op for long-running commands.
 */
export function tuneForOneShot(argv: readonly string[]): void {
  if (oneShot || !isOneShotCommand(argv)) return
  oneShot = true
  if (process.env.DOMICILE_WASM_TIER_UP !== '1') setFlagsFromString('--liftoff-only')
  provideNavigator()
}

/**
 * Node 21+ has a global `navigator`; Node 20 does not, and the `pg` driver then probes for a
 * Cloudflare Workers runtime by constructing a `Response`, which loads Node's whole fetch
 * implementation (undici): ~60 ms of a ~300 ms command. Give Node 20 the object Node 21+ has.
 */
function provideNavigator(): void {
  const g = globalThis as { navigator?: unknown }
  if (g.navigator !== undefined) return
  const major = process.versions.node.split('.')[0]
  Object.defineProperty(globalThis, 'navigator', {
    value: Object.freeze({ userAgent: `Node.js/${major}`, hardwareConcurrency: availableParallelism(), language: 'en-US', platform: process.platform }),
    configurable: true, writable: true, enumerable: false,
  })
}

/**
 * Whether the command's Domicile instance follows the control plane's change feed. A short command
 * reads the directory on demand instead (each entry trusted for at most 1 s, the revocation bound),
 * which saves a LISTEN connection and a change-log read per command.
 */
export function followsChangeFeed(): boolean {
  return !oneShot
}
