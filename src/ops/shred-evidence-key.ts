/**
 * Where Domicile's evidence signing key (Ed25519; shred certificates, residency reports) lives for
 * a configuration: `<keystore dir>.evidence-signing.key` (and its public half `….pub`), beside the
 * local keystore directory as the root key is, never inside it. One function, so every kind of
 * evidence is signed by the same published key.
 */
import { resolve } from 'node:path'
import type { DomicileConfig } from '../config/config-types.js'

/** Suffix of the evidence signing key file, a sibling of the keystore directory. */
export const EVIDENCE_SIGNING_KEY_SUFFIX = '.evidence-signing.key'

/** The keystore directory the configuration uses: the `local` provider's, else `.domicile/keys`. */
export function keystoreDir(config: Pick<DomicileConfig, 'baseDir' | 'keys'>): string {
  const local = config.keys.providers.local
  return local?.kind === 'local' && local.dir ? resolve(local.dir) : resolve(config.baseDir, '.domicile/keys')
}

/**
 * The evidence signing key file for a configuration.
 *
 * @example
 * const key = loadOrCreateSigningKey(evidenceSigningKeyFile(config)) // e.g. /srv/app/.domicile/keys.evidence-signing.key
 */
export function evidenceSigningKeyFile(config: Pick<DomicileConfig, 'baseDir' | 'keys'>): string {
  return `${keystoreDir(config)}${EVIDENCE_SIGNING_KEY_SUFFIX}`
}
