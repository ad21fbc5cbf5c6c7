/**
 * The files of the BYOK import flow, for `key import-job`/`key import` and their rotation twins
 * `key rotate-import-job`/`key rotate-import`: the wrapping key and import token are written readable
 * by their owner only; the wrapped material and token are read from files, and the token's bytes are
 * zeroed once it is read (the caller zeroes the material after use).
 */
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { DomicileError } from '../errors.js'

/** Reads a file named on the command line; a missing or unreadable file is ERR_INPUT_INVALID naming the option. */
export async function readInput(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path)
  } catch {
    throw new DomicileError('ERR_INPUT_INVALID', `${what}: cannot read ${resolve(path)}.`, { path: what })
  }
}

/** Writes a secret-ish file readable by its owner only (also when it already existed). */
async function writePrivate(path: string, data: string): Promise<void> {
  await writeFile(path, data, { mode: 0o600 })
  await chmod(path, 0o600)
}

/** Writes DIR/wrapping-key.pem and DIR/import-token (mode 0600, DIR 0700); returns their paths. */
export async function writeImportJobFiles(dir: string, job: { wrappingPublicKeyPem: string; importToken: string }): Promise<{ wrappingKey: string; importToken: string }> {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const wrappingKey = join(dir, 'wrapping-key.pem')
  const importToken = join(dir, 'import-token')
  await writePrivate(wrappingKey, job.wrappingPublicKeyPem)
  await writePrivate(importToken, job.importToken + '\n')
  return { wrappingKey, importToken }
}

/** Reads the wrapped material and the import token (trimmed; its file bytes zeroed). Zero `material` after use. */
export async function readImportFiles(materialPath: string, tokenPath: string): Promise<{ material: Buffer; token: string }> {
  const material = await readInput(materialPath, '--material')
  const tokenBytes = await readInput(tokenPath, '--token')
  const token = tokenBytes.toString('utf8').trim()
  tokenBytes.fill(0)
  return { material, token }
}
