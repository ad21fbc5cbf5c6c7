/**
 * The shred certificate: what `domicile shred verify` found about one tenant's cryptographic erase,
 * as a signed evidence document (`domicile.shred-certificate/v1`, Ed25519 over canonical JSON,
 * src/evidence/). This module holds its shape, the erase methods and what each means for
 * reversibility, the NIST SP 800-88 Rev. 1 cryptographic-erase assessment, and the check of a
 * certificate file (`domicile shred check`), which fails on any edit.
 *
 * A certificate holds identifiers, counts and times only: never plaintext, key material, wrapped
 * keys, or the caller's known samples (not even their hashes: a hash of a short personal value is
 * reversible by guessing).
 */
import type { KeyObject } from 'node:crypto'
import { DomicileError } from '../errors.js'
import { parseDocument, signDocument, verifyDocument, type SignedDocument } from '../evidence/signed-document.js'
import type { SigningKey } from '../evidence/signing-key.js'
import type { KekDestruction } from '../keys/key-admin.js'

export const SHRED_CERTIFICATE_KIND = 'domicile.shred-certificate/v1'

/**
 * How the tenant's sealed data was made unreadable, strongest first:
 * - destroyed: `domicile key destroy` (KEK destroyed where we hold it, every wrapped copy deleted);
 * - material-deleted: the customer deleted imported BYOK material (`domicile key delete-material`);
 * - key-missing-at-provider: the provider no longer knows the key (deleted outside Domicile);
 * - holder-disabled: the key holder disabled the key (HSM attribute, customer's proxy, KMS), or scheduled its deletion;
 * - revoked: Domicile's own kill switch only (`domicile key revoke`).
 */
export type EraseMethod = 'destroyed' | 'material-deleted' | 'key-missing-at-provider' | 'holder-disabled' | 'revoked'

export type CheckStatus = 'pass' | 'fail' | 'info' | 'skipped'

export interface ShredCheck {
  readonly id: string
  readonly title: string
  readonly status: CheckStatus
  /** A failed blocking check makes the verdict 'failed'. */
  readonly blocking: boolean
  readonly counts: Readonly<Record<string, number>>
  readonly note: string
}

export interface NistCondition {
  readonly id: string
  readonly condition: string
  readonly evidence: string
}

export interface ShredCertificatePayload {
  readonly certificateId: string
  readonly issuedAt: string
  readonly tenant: { readonly id: string; readonly homeRegion: string; readonly status: string }
  readonly key: {
    readonly custody: string
    readonly provider: string
    readonly providerKind: string
    readonly keyId: string
    /** Domicile's key state in the directory. */
    readonly directoryState: string
    /** What the provider says now: enabled, disabled, deleted, pending-import, not-found, unavailable. */
    readonly providerState: string
  }
  readonly erase: {
    readonly method: EraseMethod
    /** When it happened, from the control-plane audit (null when the key holder did it outside Domicile). */
    readonly at: string | null
    readonly actor: string | null
    /** The id of that record in domicile_control_audit. */
    readonly auditRecordId: number | null
    readonly reversible: boolean
    /** Who could still bring the data back, in words; null when nobody can through our stores. */
    readonly restorableBy: string | null
    readonly statement: string
  }
  /** The `key destroy` operation, when the method is 'destroyed'. */
  readonly destruction: {
    readonly operationId: number
    readonly status: string
    readonly keys: readonly KekDestruction[]
    readonly wrappedKeysDestroyed: number
  } | null
  readonly checks: readonly ShredCheck[]
  readonly verdict: 'erased' | 'suspended' | 'failed'
  readonly plaintextSearch: { readonly mode: 'known-samples' | 'structural'; readonly samples: number; readonly meaning: string }
  readonly scope: { readonly covers: string; readonly doesNotCover: readonly string[] }
  readonly nist80088: {
    readonly technique: string
    readonly meets: readonly NistCondition[]
    readonly cannotVouchFor: readonly NistCondition[]
  }
}

export type ShredCertificate = SignedDocument<ShredCertificatePayload>

/** Whether an erase by `method` can be undone, and by whom. */
export function reversibilityOf(method: EraseMethod, providerKind: string): { reversible: boolean; restorableBy: string | null; statement: string } {
  switch (method) {
    case 'destroyed':
      return {
        reversible: false,
        restorableBy: null,
        statement: providerKind === 'xks'
          ? 'Irreversible in our stores: every wrapped copy of the data and index keys was deleted. The key-encryption key is the customer\'s (HYOK) and outside our control; without our wrapped copies it opens nothing we hold.'
          : 'Irreversible: the key-encryption key was destroyed where we hold it and every wrapped copy of the data and index keys was deleted.',
      }
    case 'material-deleted':
      return {
        reversible: false,
        restorableBy: 'only the customer, by re-importing the same key material from a copy they keep outside our control',
        statement: 'The imported key material was deleted; the key and the wrapped data keys remain. Nobody can open the data unless the customer re-imports the SAME material.',
      }
    case 'key-missing-at-provider':
      return {
        reversible: false,
        restorableBy: 'nobody through our stores, unless the key service restores the key from a backup of its own',
        statement: 'The key service no longer knows the key-encryption key; the wrapped data keys cannot be unwrapped.',
      }
    case 'holder-disabled':
      return {
        reversible: true,
        restorableBy: providerKind === 'aws-kms' ? 'the key holder, by enabling the key or cancelling its scheduled deletion in AWS KMS' : 'the key holder, by enabling the key again',
        statement: 'A suspension: the key holder disabled the key-encryption key; enabling it makes the data readable again.',
      }
    case 'revoked':
      return {
        reversible: true,
        restorableBy: 'the operator, with "domicile key restore"',
        statement: 'A suspension: Domicile\'s kill switch refuses the key; "domicile key restore" makes the data readable again.',
      }
  }
}

/** What a cryptographic erase of this tenant covers and what it does not. */
export const SHRED_SCOPE: ShredCertificatePayload['scope'] = Object.freeze({
  covers: 'The values of the tenant\'s sensitive columns (sealed with AES-256-GCM under the tenant\'s data keys) and its blind indexes (HMAC keys derived from its index key).',
  doesNotCover: Object.freeze([
    'non-sensitive columns of the tenant\'s rows, which are stored in plaintext by design, and primary keys (bound into every sealed value\'s AAD)',
    'how many rows the tenant has, the length of each sealed value (ciphertext length = plaintext length + 34 bytes), and row timestamps',
    'which rows shared a value in a searchable column (equal blind-index values stay equal; the key to compute them is gone)',
    'audit records, which carry identifiers (row keys, actors, purposes) but no values',
  ]),
})

export const PLAINTEXT_SEARCH_MEANING = {
  'known-samples': 'Each sample plaintext the caller supplied was searched for as a substring of the text form of every row of every global table (every region\'s replica and the control plane), of every audit record of the tenant (every region and the control plane), and of the tenant\'s rows in every tenant table. A hit fails the check. This finds exact copies of the samples only, not other encodings (hashes, base64, fragments) or values the caller did not supply.',
  structural: 'No sample plaintext was supplied, so no value was searched for. Checked instead: global tables cannot hold sensitive columns or a tenant_id (schema), and no audit record of the tenant carries a value-bearing field (value, plaintext, data, row, before, after, old, new, params). This shows Domicile wrote no values there; it cannot show that the application never wrote personal data into a global table or into an identifier (row key, actor, purpose).',
} as const

/** The NIST SP 800-88 Rev. 1 cryptographic-erase conditions this certificate can and cannot vouch for. */
export function nistAssessment(input: {
  method: EraseMethod
  providerKind: string
  custody: string
  allSealed: boolean
  sampleRefused: boolean
  unwrapRefused: boolean
  wrappedCopiesLeft: number
  destroyedAll: boolean
}): ShredCertificatePayload['nist80088'] {
  const meets: NistCondition[] = []
  const cannot: NistCondition[] = []
  meets.push({ id: 'approved-algorithm', condition: 'The target data was encrypted with an approved algorithm of adequate strength (SP 800-88 Rev. 1 §2.6).', evidence: 'Sensitive fields: AES-256-GCM (FIPS 197, SP 800-38D) under 256-bit data keys; data keys wrapped with AES-256-GCM' + (input.providerKind === 'xks' ? ' by the customer\'s key service (its algorithm is the customer\'s to attest).' : '.') })
  meets.push({ id: 'key-generation', condition: 'The data encryption keys were generated by an approved random bit generator.', evidence: 'Data and index keys: 32 bytes from node:crypto randomBytes (OpenSSL CTR-DRBG).' })
  ;(input.allSealed ? meets : cannot).push({ id: 'encrypted-at-rest', condition: 'All target data is stored encrypted (no plaintext copy of it in the store).', evidence: input.allSealed ? 'Every non-null value of every sensitive column of the tenant parses as a sealed value (check "sensitive-columns-sealed").' : 'Some sensitive values of the tenant are not sealed (check "sensitive-columns-sealed").' })
  ;(input.sampleRefused && input.unwrapRefused ? meets : cannot).push({ id: 'verification', condition: 'The erase is verified by attempting to recover a sample of the data (SP 800-88 Rev. 1 §4.7).', evidence: input.sampleRefused && input.unwrapRefused ? 'Every sampled sealed value was refused and every remaining wrapped key failed to unwrap at its provider.' : 'A sampled value opened or a wrapped key unwrapped (checks "sample-open", "unwrap-at-provider").' })
  const keysGone = input.method === 'destroyed' && input.wrappedCopiesLeft === 0
  ;(keysGone ? meets : cannot).push({ id: 'all-key-copies-sanitized', condition: 'Every copy of the keys that protect the data is sanitized (SP 800-88 Rev. 1 §2.6).', evidence: keysGone
    ? `In our live stores: no wrapped copy of the tenant's data or index keys is left in any region${input.destroyedAll ? ', and the key-encryption key material we held was destroyed' : input.providerKind === 'xks' ? '; the key-encryption key is the customer\'s' : '; a key-encryption key was kept or only scheduled for deletion (see "destruction")'}.`
    : `The wrapped data keys remain (${input.wrappedCopiesLeft}) and their key-encryption key exists; the erase rests on the key being ${input.method === 'material-deleted' ? 'without material' : 'refused'}.` })
  cannot.push({ id: 'backups-and-replicas', condition: 'Copies outside Domicile\'s live stores are sanitized.', evidence: 'Not vouched for: database backups, snapshots and point-in-time-recovery archives, WAL archives, physical or logical replicas, and dead row versions and free space not yet overwritten may still hold wrapped data keys and sealed values; keystore and HSM backups (with the root key) may still hold the key-encryption key. Their retention is the operator\'s.' })
  if (input.custody === 'byok' || input.custody === 'hyok') {
    cannot.push({ id: 'customer-key-copies', condition: 'The customer\'s own copies of the key are sanitized.', evidence: input.custody === 'hyok' ? 'Not vouched for: the key-encryption key lives at the customer\'s key service (HYOK), outside our control.' : 'Not vouched for: the customer may keep a copy of the key material they imported (BYOK).' })
  }
  if (input.providerKind === 'aws-kms') {
    cannot.push({ id: 'kms-waiting-period', condition: 'The key-encryption key is deleted at the provider.', evidence: 'AWS KMS deletes a key only after its waiting period (7 to 30 days); until then its holder can cancel the deletion.' })
  }
  cannot.push({ id: 'process-memory', condition: 'No process holds a plaintext data key.', evidence: 'Not vouched for beyond the design: processes drop cached data keys on the kill switch (within about 1 s) or at the cache TTL for customer-side revocations, and zero them; memory outside Domicile (swap, core dumps) is not covered.' })
  return { technique: 'Cryptographic Erase (NIST SP 800-88 Rev. 1, §2.6; verification §4.7)', meets, cannotVouchFor: cannot }
}

/**
 * Signs a certificate payload.
 * @example
 * const cert = signShredCertificate(loadOrCreateSigningKey(evidenceSigningKeyFile(config)), payload)
 */
export function signShredCertificate(key: SigningKey, payload: ShredCertificatePayload): ShredCertificate {
  return signDocument(key, SHRED_CERTIFICATE_KIND, payload)
}

/**
 * Checks a certificate (parsed JSON or its text) against the publisher's public key; returns it when
 * its signature holds, else throws ERR_SIGNATURE_INVALID saying why (edited, other key, other kind).
 * @example
 * const cert = checkShredCertificate(await readFile('acme.shred.json', 'utf8'), loadPublicKey(file).publicKey)
 */
export function checkShredCertificate(doc: unknown, publicKey: KeyObject): ShredCertificate {
  const parsed = typeof doc === 'string' ? parseDocument(doc) : doc
  const r = verifyDocument(parsed, publicKey, SHRED_CERTIFICATE_KIND)
  /* Precondition: a shred certificate verifies under the publisher's key. */
  if (!r.ok) throw new DomicileError('ERR_SIGNATURE_INVALID', `The shred certificate does not verify: ${r.reason}. Do not rely on it; ask the publisher for the original or run "domicile shred verify" again.`)
  return parsed as ShredCertificate
}
