/**
 * The SCRAM-SHA-256 verifier PostgreSQL stores for a password (RFC 5802 / RFC 7677, the format of
 * `pg_authid.rolpassword`), so `migrate` can create the data plane's login role without sending
 * the password itself in SQL text (which server logs may record).
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto'

export const SCRAM_ITERATIONS = 4096

/**
 * @example
 * scramSha256Verifier('s3cret') // 'SCRAM-SHA-256$4096:<salt>$<StoredKey>:<ServerKey>'
 */
export function scramSha256Verifier(password: string, salt: Uint8Array = randomBytes(16), iterations = SCRAM_ITERATIONS): string {
  // PostgreSQL applies SASLprep and falls back to the raw bytes when it fails; NFKC covers ASCII and common input.
  const salted = pbkdf2Sync(Buffer.from(password.normalize('NFKC'), 'utf8'), salt, iterations, 32, 'sha256')
  const clientKey = createHmac('sha256', salted).update('Client Key').digest()
  const storedKey = createHash('sha256').update(clientKey).digest()
  const serverKey = createHmac('sha256', salted).update('Server Key').digest()
  salted.fill(0)
  clientKey.fill(0)
  return `SCRAM-SHA-256$${iterations}:${Buffer.from(salt).toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`
}
