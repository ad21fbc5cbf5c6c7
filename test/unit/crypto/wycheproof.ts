/**
 * Loads the Wycheproof test vectors kept in the repository (test/vectors/wycheproof/, see ORIGIN.md
 * there). Each file is checked against its pinned SHA-256, so a truncated or edited copy fails
 * instead of silently running fewer cases. A missing file is an error, never a skip.
 */

import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The in-repository copy; nothing outside the repository is read. */
export const VECTORS_DIR = fileURLToPath(new URL('../../vectors/wycheproof/', import.meta.url))

/** SHA-256 of each file as copied from C2SP/wycheproof testvectors_v1 (commit dac1dd4). */
const PINNED: Readonly<Record<string, string>> = {
  'aes_gcm_test.json': '985e5ecc172e181eaf49e89508b9470dcf478002eb7e8559c707eb42dc97dfe7',
  'hkdf_sha256_test.json': 'bb2b462a38b251cb52a2aede706d6d4b62b26864f4e80c95497507ddb07c5f1e',
  'hmac_sha256_test.json': '2d201cfa61d1bf95e6f5d07d96634b4a348b31e8eaa277ad7c8d09677b7a743f',
  'rsa_oaep_3072_sha256_mgf1sha256_test.json': 'c8122302f522bfd539650c71c4aa966bd1f89acb50c6f4c190030fdb9b2684a4',
}

export interface WycheproofFile<G> {
  readonly algorithm: string
  readonly numberOfTests: number
  readonly testGroups: readonly G[]
}

export function loadWycheproof<G>(name: string): WycheproofFile<G> {
  const file = join(VECTORS_DIR, name)
  if (!existsSync(file)) throw new Error(`Wycheproof vector file ${name} is missing from test/vectors/wycheproof/.`)
  const bytes = readFileSync(file)
  const want = PINNED[name]
  if (want === undefined) throw new Error(`Wycheproof vector file ${name} has no pinned hash in test/unit/crypto/wycheproof.ts.`)
  const got = createHash('sha256').update(bytes).digest('hex')
  if (got !== want) throw new Error(`Wycheproof vector file ${name} differs from the pinned copy (sha256 ${got}); see test/vectors/wycheproof/ORIGIN.md.`)
  return JSON.parse(bytes.toString('utf8')) as WycheproofFile<G>
}

export const hex = (s: string): Buffer => Buffer.from(s, 'hex')
