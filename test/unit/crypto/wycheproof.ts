/**
 * Loads Wycheproof test vectors from the shared vectors directory that sits beside the repository
 * (<clone>/../shared/vectors/wycheproof). A missing directory or file is an error, never a skip:
 * the vector tests must fail when they cannot run.
 */

import { existsSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

function vectorsDir(): string {
  const candidates = [
    fileURLToPath(new URL('../../../../shared/vectors/wycheproof/', import.meta.url)),
    resolve(process.cwd(), '../shared/vectors/wycheproof'),
  ]
  for (const dir of candidates) if (existsSync(dir)) return dir
  throw new Error(`Wycheproof vectors not found; looked in: ${candidates.join(', ')}. Check out shared/ beside the repository.`)
}

export interface WycheproofFile<G> {
  readonly algorithm: string
  readonly numberOfTests: number
  readonly testGroups: readonly G[]
}

export function loadWycheproof<G>(name: string): WycheproofFile<G> {
  const file = resolve(vectorsDir(), name)
  if (!existsSync(file)) throw new Error(`Wycheproof vector file ${name} is missing from the shared vectors directory.`)
  return JSON.parse(readFileSync(file, 'utf8')) as WycheproofFile<G>
}

export const hex = (s: string): Buffer => Buffer.from(s, 'hex')
