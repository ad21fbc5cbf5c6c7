/**
 * RSAES-OAEP with SHA-256 and MGF1-SHA-256, for the BYOK import flow: the customer wraps their key
 * material under our RSA-3072 import public key; we unwrap it with the private key.
 *
 * Every decryption failure is the one opaque `DecryptionFailedError` (a distinguishable padding
 * error would be a Manger-style oracle).
 */

import { constants, KeyObject, privateDecrypt, publicEncrypt } from 'node:crypto'
import { DecryptionFailedError, DomicileError } from '../errors.js'

/** Smallest RSA modulus we accept for key import. */
const RSA_OAEP_MIN_MODULUS_BITS = 3072

function assertRsaKey(key: KeyObject, type: 'public' | 'private'): void {
  /* Precondition: an RSA KeyObject of at least 3072 bits, of the expected type. */
  const ok = key instanceof KeyObject &&
    (type === 'private' ? key.type === 'private' : key.type === 'public' || key.type === 'private') &&
    key.asymmetricKeyType === 'rsa' &&
    (key.asymmetricKeyDetails?.modulusLength ?? 0) >= RSA_OAEP_MIN_MODULUS_BITS
  if (!ok) {
    throw new DomicileError('ERR_KEY_INVALID', `RSA-OAEP needs an RSA ${type} KeyObject with a modulus of at least 3072 bits.`)
  }
}

function asBytes(v: unknown, what: string): Uint8Array {
  if (!(v instanceof Uint8Array)) throw new DomicileError('ERR_INPUT_INVALID', `The RSA-OAEP ${what} must be a Uint8Array.`)
  return v
}

/**
 * Encrypts `plaintext` to `publicKey` with RSAES-OAEP (SHA-256, MGF1-SHA-256). A private key is
 * accepted too (its public half is used). `label` is the optional OAEP label (default empty).
 *
 * @example
 * const ct = rsaOaepSha256Encrypt(importPublicKey, keyMaterial)
 */
export function rsaOaepSha256Encrypt(publicKey: KeyObject, plaintext: Uint8Array, label?: Uint8Array): Buffer {
  assertRsaKey(publicKey, 'public')
  asBytes(plaintext, 'plaintext')
  const modulusBytes = Math.ceil((publicKey.asymmetricKeyDetails?.modulusLength ?? 0) / 8)
  /* Precondition: the message fits: at most k - 2*hLen - 2 bytes. */
  if (plaintext.byteLength > modulusBytes - 2 * 32 - 2) {
    throw new DomicileError('ERR_INPUT_INVALID', 'The message is too long for RSA-OAEP with this key. Wrap a key of at most 318 bytes (RSA-3072).')
  }
  return publicEncrypt({
    key: publicKey,
    padding: constants.RSA_PKCS1_OAEP_PADDING,
    oaepHash: 'sha256',
    ...(label === undefined ? {} : { oaepLabel: asBytes(label, 'label') }),
  }, plaintext)
}

/**
 * Decrypts an RSAES-OAEP (SHA-256, MGF1-SHA-256) ciphertext with `privateKey`. Any failure
 * (wrong key, bad padding, wrong label, wrong length) throws `DecryptionFailedError`.
 * The result is usually key material: the caller zeroes it (`fill(0)`) once it is wrapped.
 *
 * @example
 * const keyMaterial = rsaOaepSha256Decrypt(importPrivateKey, wrappedFromCustomer)
 */
export function rsaOaepSha256Decrypt(privateKey: KeyObject, ciphertext: Uint8Array, label?: Uint8Array): Uint8Array {
  assertRsaKey(privateKey, 'private')
  asBytes(ciphertext, 'ciphertext')
  const lbl = label === undefined ? undefined : asBytes(label, 'label')
  const modulusBytes = Math.ceil((privateKey.asymmetricKeyDetails?.modulusLength ?? 0) / 8)
  /* Precondition: the ciphertext is exactly one modulus long. */
  if (ciphertext.byteLength !== modulusBytes) throw new DecryptionFailedError()
  try {
    return privateDecrypt({
      key: privateKey,
      padding: constants.RSA_PKCS1_OAEP_PADDING,
      oaepHash: 'sha256',
      ...(lbl === undefined ? {} : { oaepLabel: lbl }),
    }, ciphertext)
  } catch {
    throw new DecryptionFailedError()
  }
}
