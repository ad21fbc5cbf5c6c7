/**
 * Leak capture for the fault-and-load suite (test/chaos/): records everything the process emits
 * while it is active, and everything a test hands it, then looks for known secrets in all of it.
 *
 * Captured while active (start() ... stop()):
 * - every write to process.stdout and process.stderr (console.* included, it writes there);
 * - console.* calls, formatted (in case a console is bound to another stream);
 * - process.emitWarning calls and 'warning' events (the library's only log channel: grep src for
 *   emitWarning; Domicile has no logger of its own);
 * Handed in by the test:
 * - `error(source, e)`: message, name, code, path, toJSON() and the whole cause chain of every error
 *   a scenario saw (DomicileError or not);
 * - `text(source, s)`: audit records read back from the stores, CLI output, HTTP bodies, files.
 *
 * Secrets: `plaintext(s)` for a value the test wrote into a sensitive field (found as itself, JSON-
 * escaped, and as the hex / base64 of its UTF-8 bytes), `keyBytes(label, b)` for key material the
 * test knows (a BYOK import, a local root key, an unwrapped data key, an XKS secret): found as hex
 * (either case), base64, base64url, and Node's Buffer JSON form. Every 12-byte window of a key is a
 * needle too, so a partial dump is found.
 *
 * @example
 * const leaks = startLeakCapture('leak-check')
 * leaks.plaintext('ada-7f3a@example.eu')
 * try { await d.withTenant(...) } catch (e) { leaks.error('insert', e) }
 * leaks.stop()
 * assert.deepEqual(leaks.findings(), [])
 */
import { format } from 'node:util'

export interface LeakFinding {
  /** Where it was found (stdout, stderr, console.log, warning, error:<source>, text:<source>). */
  readonly source: string
  /** Which secret: "plaintext #n" or the key's label (never the secret itself). */
  readonly secret: string
  /** The form found: raw, json, hex, base64, ... */
  readonly form: string
}

export interface LeakCapture {
  /** Registers a plaintext written to a sensitive field. Shorter than 8 characters: refused (false positives). */
  plaintext(value: string): void
  /** Registers key material the test knows. */
  keyBytes(label: string, bytes: Uint8Array | string): void
  /** Records an error and everything attached to it. */
  error(source: string, e: unknown): void
  /** Records text the process produced elsewhere (audit rows, CLI output, files). */
  text(source: string, s: string | Uint8Array): void
  /** Stops capturing process output (idempotent). Handing in errors and text still works. */
  stop(): void
  /** Every secret found, with where and in which form. */
  findings(): LeakFinding[]
  /** How much was captured, for the figures. */
  stats(): { readonly chunks: number; readonly bytes: number; readonly errors: number; readonly secrets: number }
}

interface Needle { readonly label: string; readonly form: string; readonly text: string }

export function startLeakCapture(name = 'chaos'): LeakCapture {
  const captured: Array<{ source: string; text: string }> = []
  const needles: Needle[] = []
  let plaintexts = 0
  let keys = 0
  let errors = 0
  let active = true
  const add = (source: string, s: string | Uint8Array): void => {
    captured.push({ source, text: typeof s === 'string' ? s : Buffer.from(s).toString('latin1') })
  }

  const origOut = process.stdout.write
  const origErr = process.stderr.write
  const wrap = (source: string, orig: typeof process.stdout.write): typeof process.stdout.write =>
    function (this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]) {
      if (active && (typeof chunk === 'string' || chunk instanceof Uint8Array)) add(source, chunk)
      return (orig as (...a: unknown[]) => boolean).call(this, chunk, ...rest)
    } as typeof process.stdout.write
  process.stdout.write = wrap('stdout', origOut)
  process.stderr.write = wrap('stderr', origErr)

  const methods = ['log', 'info', 'warn', 'error', 'debug', 'trace', 'dir'] as const
  const origConsole = new Map<string, (...a: unknown[]) => void>()
  for (const m of methods) {
    const orig = console[m] as (...a: unknown[]) => void
    origConsole.set(m, orig)
    console[m] = ((...args: unknown[]) => {
      if (active) add(`console.${m}`, format(...args))
      orig.apply(console, args)
    }) as never
  }
  const origEmitWarning = process.emitWarning
  process.emitWarning = function (this: unknown, warning: string | Error, ...rest: unknown[]) {
    if (active) add('emitWarning', `${typeof warning === 'string' ? warning : `${warning.name}: ${warning.message}`} ${format(...rest)}`)
    return (origEmitWarning as (...a: unknown[]) => void).call(process, warning, ...rest)
  } as typeof process.emitWarning
  const onWarning = (w: Error): void => {
    if (active) add('warning', `${w.name}: ${w.message}\n${w.stack ?? ''}`)
  }
  process.on('warning', onWarning)

  const capture: LeakCapture = {
    plaintext(value) {
      if (value.length < 8) throw new Error(`${name}: a plaintext needle must be at least 8 characters (false positives)`)
      const label = `plaintext #${++plaintexts}`
      const utf8 = Buffer.from(value, 'utf8')
      needles.push({ label, form: 'raw', text: value })
      needles.push({ label, form: 'json', text: JSON.stringify(value).slice(1, -1) })
      needles.push({ label, form: 'hex', text: utf8.toString('hex') })
      needles.push({ label, form: 'base64', text: utf8.toString('base64').replace(/=+$/, '') })
    },
    keyBytes(label, bytes) {
      const b = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : Buffer.from(bytes)
      if (b.length < 12) throw new Error(`${name}: key needles must be at least 12 bytes`)
      keys++
      const forms = (x: Buffer, suffix: string): void => {
        needles.push({ label, form: `hex${suffix}`, text: x.toString('hex') })
        needles.push({ label, form: `HEX${suffix}`, text: x.toString('hex').toUpperCase() })
        needles.push({ label, form: `base64${suffix}`, text: x.toString('base64').replace(/=+$/, '') })
        needles.push({ label, form: `base64url${suffix}`, text: x.toString('base64url') })
        needles.push({ label, form: `bytes-json${suffix}`, text: [...x].join(',') })
      }
      forms(b, '')
      if (typeof bytes === 'string') needles.push({ label, form: 'raw', text: bytes })
      // Windows: a partial dump (a truncated hex string, a slice) is still a leak. Base64 windows are
      // aligned to 3 bytes so their encoding is the same wherever the dump started.
      for (let i = 0; i + 12 <= b.length; i += 3) forms(b.subarray(i, i + 12), ` window@${i}`)
    },
    error(source, e) {
      errors++
      const parts: string[] = []
      const seen = new Set<unknown>()
      for (let cur: unknown = e, depth = 0; cur !== undefined && cur !== null && depth < 10 && !seen.has(cur); depth++) {
        seen.add(cur)
        if (cur instanceof Error) {
          const o = cur as Error & { code?: unknown; path?: unknown; detail?: unknown; toJSON?: () => unknown }
          parts.push(String(o.name), String(o.message), String(o.code ?? ''), String(o.path ?? ''), String(o.detail ?? ''), o.stack ?? '')
          for (const k of Object.keys(o)) {
            try { parts.push(`${k}=${format('%o', (o as unknown as Record<string, unknown>)[k])}`) } catch { /* unprintable */ }
          }
          if (typeof o.toJSON === 'function') parts.push(JSON.stringify(o.toJSON()))
          cur = o.cause
        } else {
          parts.push(format('%o', cur))
          break
        }
      }
      add(`error:${source}`, parts.join('\n'))
    },
    text(source, s) {
      add(`text:${source}`, s)
    },
    stop() {
      if (!active) return
      active = false
      process.stdout.write = origOut
      process.stderr.write = origErr
      for (const [m, f] of origConsole) (console as unknown as Record<string, unknown>)[m] = f
      process.emitWarning = origEmitWarning
      process.off('warning', onWarning)
    },
    findings() {
      const out: LeakFinding[] = []
      const seen = new Set<string>()
      for (const c of captured) {
        for (const n of needles) {
          if (n.text.length === 0 || !c.text.includes(n.text)) continue
          const k = `${c.source}|${n.label}|${n.form}`
          if (seen.has(k)) continue
          seen.add(k)
          out.push({ source: c.source, secret: n.label, form: n.form })
        }
      }
      return out
    },
    stats() {
      return { chunks: captured.length, bytes: captured.reduce((s, c) => s + c.text.length, 0), errors, secrets: plaintexts + keys }
    },
  }
  return capture
}
