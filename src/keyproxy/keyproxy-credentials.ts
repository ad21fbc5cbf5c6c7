/**
 * The key proxy's SigV4 credentials file, `<dir>/credentials.json` (mode 0600):
 *
 *   { "version": 1, "credentials": [ { "accessKeyId", "secretAccessKey", "createdAt" } ] }
 *
 * Several entries may be active at once so credentials can be rotated without downtime (spec,
 * "SigV4 credentials rotation"). Generated values follow the spec's Appendix A: the access key id
 * is 26 characters of A-Z and 2-7 (random, says nothing about the secret), the secret is the Base64
 * of 32 random bytes.
 */
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { DomicileError } from '../errors.js'
import { writeFileAtomic } from './file-keystore.js'
import type { KeyProxyCredential } from './keyproxy-server.js'

export const CREDENTIALS_FILE = 'credentials.json'

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'

/** A fresh access key id (26 chars, A-Z 2-7) and secret (Base64 of 32 random bytes). */
export function generateCredential(): KeyProxyCredential {
  const idBytes = randomBytes(26)
  let accessKeyId = ''
  for (const b of idBytes) accessKeyId += BASE32[b & 31]
  const secret = randomBytes(32)
  const secretAccessKey = secret.toString('base64')
  secret.fill(0)
  return { accessKeyId, secretAccessKey }
}

export function credentialsPath(dir: string): string {
  return join(dir, CREDENTIALS_FILE)
}

/** Writes a new credentials file with one credential; refuses to overwrite an existing one. */
export async function createCredentialsFile(dir: string): Promise<{ accessKeyId: string; credentialsFile: string }> {
  const c = generateCredential()
  const file = credentialsPath(dir)
  const doc = { version: 1, credentials: [{ ...c, createdAt: new Date().toISOString() }] }
  try {
    await readFile(file)
    throw new DomicileError('ERR_CONFIG_INVALID', 'This key proxy directory already has credentials; use another --dir.')
  } catch (e) {
    if ((e as { code?: unknown })?.code !== 'ENOENT') throw e
  }
  await writeFileAtomic(file, JSON.stringify(doc, null, 2) + '\n')
  return { accessKeyId: c.accessKeyId, credentialsFile: file }
}

/** Reads `<dir>/credentials.json`. */
export async function readCredentialsFile(dir: string): Promise<KeyProxyCredential[]> {
  let text: string
  try {
    text = await readFile(credentialsPath(dir), 'utf8')
  } catch (e) {
    if ((e as { code?: unknown })?.code === 'ENOENT') {
      throw new DomicileError('ERR_CONFIG_INVALID', 'No credentials.json in this key proxy directory. Run "domicile keyproxy init --dir DIR" first.')
    }
    throw e
  }
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch {
    throw new DomicileError('ERR_CONFIG_INVALID', 'credentials.json is not valid JSON. Fix or recreate it.')
  }
  const list = (doc as { credentials?: unknown })?.credentials
  if (!Array.isArray(list) || list.length === 0 || list.some((c) =>
    typeof c?.accessKeyId !== 'string' || c.accessKeyId === '' || typeof c?.secretAccessKey !== 'string' || c.secretAccessKey === '')) {
    throw new DomicileError('ERR_CONFIG_INVALID', 'credentials.json must hold { "credentials": [ { "accessKeyId", "secretAccessKey" } ] }.')
  }
  return list.map((c: KeyProxyCredential) => ({ accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey }))
}
