/**
 * Test support: a throw-away SoftHSM2 token per test file, and the availability gate.
 *
 * SoftHSM reads SOFTHSM2_CONF when the library is initialised, so `createSoftHsmToken` points
 * that variable at a fresh config whose token directory lives in a temp dir. Each node:test file
 * runs in its own process, so one token per file does not collide with another file's.
 *
 * Gate: `softHsmSkip()` returns false when SoftHSM2 + pkcs11js are usable, a reason string
 * (for node:test's `skip`) when not, and THROWS when not and CI=true, so CI never silently skips.
 */

import { execFile, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

/** SoftHSM2's PKCS#11 module as installed by Debian/Ubuntu (override with SOFTHSM2_LIB). */
export const SOFTHSM_LIBRARY = process.env.SOFTHSM2_LIB ?? '/usr/lib/softhsm/libsofthsm2.so'

export interface SoftHsmToken {
  readonly confPath: string
  readonly dir: string
  readonly library: string
  readonly label: string
  readonly pin: string
  /** Remove the token directory and restore SOFTHSM2_CONF. Close every session on it first. */
  cleanup(): Promise<void>
}

export type SoftHsmAvailability = { readonly ok: true } | { readonly ok: false; readonly reason: string }

/** Whether SoftHSM2 (library + softhsm2-util) and the pkcs11js addon are usable here. */
export function softHsmAvailable(): SoftHsmAvailability {
  if (!existsSync(SOFTHSM_LIBRARY)) return { ok: false, reason: `SoftHSM2 library not found at ${SOFTHSM_LIBRARY} (apt-get install softhsm2, or set SOFTHSM2_LIB)` }
  const util = spawnSync('softhsm2-util', ['--version'], { encoding: 'utf8' })
  if (util.error !== undefined || util.status !== 0) return { ok: false, reason: 'softhsm2-util is not on PATH (apt-get install softhsm2)' }
  try {
    createRequire(import.meta.url)('pkcs11js')
  } catch {
    return { ok: false, reason: 'the pkcs11js native addon is not installed or not built (npm install pkcs11js)' }
  }
  return { ok: true }
}

/**
 * For node:test's `skip` option: false when SoftHSM is available, else the reason. Throws when
 * SoftHSM is unavailable and CI=true.
 *
 * @example
 * describe('pkcs11 provider', { skip: softHsmSkip() }, () => { ... })
 */
export function softHsmSkip(): string | false {
  const a = softHsmAvailable()
  if (a.ok) return false
  if (process.env.CI === 'true') throw new Error(`SoftHSM2 is required in CI: ${a.reason}`)
  return `SoftHSM2 unavailable: ${a.reason}`
}

/** Create a fresh SoftHSM2 token in a temp dir and point SOFTHSM2_CONF at it. */
export async function createSoftHsmToken(opts: { label: string; pin: string; soPin: string }): Promise<SoftHsmToken> {
  const dir = await mkdtemp(join(tmpdir(), 'domicile-softhsm-'))
  const tokens = join(dir, 'tokens')
  await mkdir(tokens)
  const confPath = join(dir, 'softhsm2.conf')
  await writeFile(confPath, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\n`)
  const previous = process.env.SOFTHSM2_CONF
  process.env.SOFTHSM2_CONF = confPath
  try {
    await promisify(execFile)('softhsm2-util',
      ['--init-token', '--free', '--label', opts.label, '--pin', opts.pin, '--so-pin', opts.soPin],
      { env: { ...process.env, SOFTHSM2_CONF: confPath }, timeout: 20_000 })
  } catch (e) {
    restore(previous)
    await rm(dir, { recursive: true, force: true })
    // execFile's error message repeats the command line, pins included: keep only the tool's output.
    const stderr = (e as { stderr?: unknown }).stderr
    throw new Error(`softhsm2-util --init-token failed: ${typeof stderr === 'string' ? stderr.trim() : 'no output'}`)
  }
  return {
    confPath, dir, library: SOFTHSM_LIBRARY, label: opts.label, pin: opts.pin,
    async cleanup() {
      if (process.env.SOFTHSM2_CONF === confPath) restore(previous)
      await rm(dir, { recursive: true, force: true })
    },
  }
}

function restore(previous: string | undefined): void {
  if (previous === undefined) delete process.env.SOFTHSM2_CONF
  else process.env.SOFTHSM2_CONF = previous
}
