/**
 * The Ed25519 key that signs Domicile's evidence (shred certificates, residency reports).
 *
 * Kept as two files: the private key (PKCS#8 PEM, mode 0600) and its public key (SPKI PEM). A key
 * is generated only when neither file exists; a public key without its private key means the
 * private key was lost, and signing is refused rather than a new key made silently (documents
 * signed before would no longer verify against the published key).
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { DomicileError } from '../errors.js'

export interface SigningKey {
  readonly privateKey: KeyObject
  readonly publicKey: KeyObject
  /** First 16 bytes of SHA-256 over the SPKI DER, hex: names the key in signed documents. */
  readonly keyId: string
  /** The public key, SPKI PEM. */
  readonly publicKeyPem: string
}

export function keyIdOf(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 32)
}

/** The public half only (to verify), from `<file>.pub`. */
export function loadPublicKey(file: string): { publicKey: KeyObject; keyId: string; publicKeyPem: string } {
  const pubFile = `${file}.pub`
  if (!existsSync(pubFile)) throw new DomicileError('ERR_KEY_NOT_FOUND', `No evidence signing key yet (${pubFile}). It is created when the first document is signed.`)
  const publicKeyPem = readFileSync(pubFile, 'utf8')
  const publicKey = createPublicKey(publicKeyPem)
  if (publicKey.asymmetricKeyType !== 'ed25519') throw new DomicileError('ERR_KEY_INVALID', `${pubFile} is not an Ed25519 public key.`)
  return { publicKey, keyId: keyIdOf(publicKey), publicKeyPem }
}

/**
 * Loads the signing key, creating it when neither file exists.
 *
 * @example
 * const key = loadOrCreateSigningKey('.domicile/evidence-signing.key')
 */
export function loadOrCreateSigningKey(file: string): SigningKey {
  const pubFile = `${file}.pub`
  const hasPrivate = existsSync(file)
  const hasPublic = existsSync(pubFile)
  if (!hasPrivate && !hasPublic) {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519')
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 })
    writeFileSync(file, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' })
    writeFileSync(pubFile, publicKey.export({ type: 'spki', format: 'pem' }), { mode: 0o644, flag: 'wx' })
  } else if (!hasPrivate) {
    /* Precondition: a published signing key is never replaced silently. */
    throw new DomicileError('ERR_CONFIG_INVALID', `The evidence signing key ${file} is missing but its public key ${pubFile} exists. Restore the private key from backup; a new key would not verify documents signed before.`)
  }
  const privateKey = createPrivateKey(readFileSync(file, 'utf8'))
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new DomicileError('ERR_KEY_INVALID', `${file} is not an Ed25519 private key.`)
  const publicKey = createPublicKey(privateKey)
  // The public half is derivable: a lost .pub is written again from the private key.
  if (!existsSync(pubFile)) writeFileSync(pubFile, publicKey.export({ type: 'spki', format: 'pem' }), { mode: 0o644, flag: 'wx' })
  const { keyId, publicKeyPem } = loadPublicKey(file)
  /* Precondition: the private key and the published public key are one pair. */
  if (keyId !== keyIdOf(publicKey)) throw new DomicileError('ERR_CONFIG_INVALID', `${file} and ${pubFile} are not one key pair. Restore the matching files.`)
  return Object.freeze({ privateKey, publicKey, keyId, publicKeyPem })
}
