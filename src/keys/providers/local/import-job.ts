/**
 * BYOK import jobs for the local provider, modelled on AWS KMS GetParametersForImport /
 * ImportKeyMaterial.
 *
 * A job is a fresh RSA-3072 key pair plus a random import token, valid 24 hours. The customer
 * encrypts their 32 bytes of key material with RSAES-OAEP-SHA-256 under the job's public key and
 * hands back the raw ciphertext with the token. We keep only the SHA-256 of the token and the
 * private key sealed under the root key; a new job replaces the old one, a successful import
 * consumes it.
 */

import { createHash, createPrivateKey, generateKeyPair, randomBytes, timingSafeEqual } from 'node:crypto'
import { promisify } from 'node:util'
import { rsaOaepSha256Decrypt } from '../../../crypto/rsa-oaep.js'
import { DomicileError } from '../../../errors.js'
import type { ImportJobRecord } from './keystore.js'
import type { RootKey } from './root-key.js'

export const IMPORT_JOB_TTL_MS = 24 * 60 * 60 * 1000
export const IMPORT_RSA_BITS = 3072
const MATERIAL_BYTES = 32

const generateRsa = promisify(generateKeyPair)

export interface IssuedImportJob {
  /** What goes into the key file. */
  readonly record: ImportJobRecord
  /** What the customer gets. */
  readonly wrappingPublicKeyPem: string
  readonly importToken: string
  readonly expiresAt: Date
}

/** Make a new import job for `keyId` at time `nowMs`. */
export async function issueImportJob(root: RootKey, keyId: string, nowMs: number): Promise<IssuedImportJob> {
  const { publicKey, privateKey } = await generateRsa('rsa', {
    modulusLength: IMPORT_RSA_BITS,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'der' },
  })
  try {
    const importToken = randomBytes(32).toString('base64url')
    const expiresAt = new Date(nowMs + IMPORT_JOB_TTL_MS)
    return {
      record: { privateKey: root.sealJobKey(keyId, privateKey), tokenHash: hashToken(importToken).toString('base64'), expiresAt: expiresAt.toISOString() },
      wrappingPublicKeyPem: publicKey,
      importToken,
      expiresAt,
    }
  } finally {
    privateKey.fill(0)
  }
}

/** Constant-time check of an import token against the job's stored hash. */
export function importTokenMatches(job: ImportJobRecord, token: unknown): boolean {
  if (typeof token !== 'string') return false
  const want = Buffer.from(job.tokenHash, 'base64')
  const got = hashToken(token)
  return want.length === got.length && timingSafeEqual(want, got)
}

/**
 * Decrypt the customer's RSAES-OAEP-SHA-256 ciphertext with the job's private key.
 * Returns exactly 32 bytes in a fresh buffer the caller must zero; else ERR_KEY_IMPORT_INVALID.
 */
export function decryptImportedMaterial(root: RootKey, keyId: string, job: ImportJobRecord, encryptedMaterial: Uint8Array): Buffer {
  const der = openJobKey(root, keyId, job)
  let material: Uint8Array
  try {
    const key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })
    material = rsaOaepSha256Decrypt(key, encryptedMaterial)
  } catch {
    throw new DomicileError('ERR_KEY_IMPORT_INVALID', 'the encrypted key material does not decrypt under this import job; encrypt it with RSAES_OAEP_SHA_256 under the job\'s wrapping public key')
  } finally {
    der.fill(0)
  }
  /* Precondition: imported key material is exactly 32 bytes. */
  if (material.length !== MATERIAL_BYTES) {
    const n = material.length
    material.fill(0)
    throw new DomicileError('ERR_KEY_IMPORT_INVALID', `imported key material must be exactly ${MATERIAL_BYTES} bytes (a 256-bit symmetric key); got ${n} bytes`)
  }
  const out = Buffer.alloc(MATERIAL_BYTES)
  out.set(material)
  material.fill(0)
  return out
}

function openJobKey(root: RootKey, keyId: string, job: ImportJobRecord): Buffer {
  try {
    return root.openJobKey(keyId, job.privateKey)
  } catch {
    throw new DomicileError('ERR_KEY_PROVIDER_UNAVAILABLE', `the import job of local key ${keyId} cannot be opened with this root key (from ${root.source}); check DOMICILE_ROOT_KEY or the root key file`)
  }
}

function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest()
}
