/**
 * The key proxy's SigV4 credentials file, `<dir>/credentials.json` (mode 0600):
 *
 *   { "version": 1, "credentials": [ { "accessKeyId", "secretAccessKey", "createdAt" } ] }
 *
 * Several entries may be active at once so credentials can be rotated without downtime (spec,
 * "SigV4 credentials rotation"): `addCredential`, then `retireCredential` of the old one. The
 * format is defined once in src/xks/xks-credentials.ts, so the `xks` provider's `credentialsFile`
 * accepts this file as it is. Generated values follow the spec's Appendix A: the access key id
 * is 26 characters of A-Z and 2-7 (random, says nothing about the secret), the secret is the Base64
 * of 32 random bytes.
 */
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { DomicileError } from '../errors.js'
import { parseCredentialsFile, type XksCredential } from '../xks/xks-credentials.js'
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

/** Reads `<dir>/credentials.json` (the format of src/xks/xks-credentials.ts). */
export async function readCredentialsFile(dir: string): Promise<KeyProxyCredential[]> {
  return (await readDocument(dir)).credentials.map((c) => ({ accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey }))
}

async function readDocument(dir: string): Promise<{ version: 1; credentials: XksCredential[] }> {
  let text: string
  try {
    text = await readFile(credentialsPath(dir), 'utf8')
  } catch (e) {
    if ((e as { code?: unknown })?.code === 'ENOENT') {
      throw new DomicileError('ERR_CONFIG_INVALID', 'No credentials.json in this key proxy directory. Run "domicile keyproxy init --dir DIR" first.')
    }
    throw e
  }
  const parsed = parseCredentialsFile(text)
  if (!parsed.ok) throw new DomicileError('ERR_CONFIG_INVALID', `credentials.json ${parsed.problem}. Fix or recreate it.`)
  return { version: 1, credentials: [...parsed.credentials] }
}

/**
 * Adds a fresh credential to `<dir>/credentials.json`, keeping the others: the first half of a
 * rotation. A serving proxy picks the change up without a restart; clients that read the file
 * sign with the newest credential. Returns the new access key id.
 */
export async function addCredential(dir: string): Promise<{ accessKeyId: string; credentialsFile: string; active: string[] }> {
  const doc = await readDocument(dir)
  const c = generateCredential()
  doc.credentials.push({ ...c, createdAt: new Date().toISOString() })
  await writeFileAtomic(credentialsPath(dir), JSON.stringify(doc, null, 2) + '\n')
  return { accessKeyId: c.accessKeyId, credentialsFile: credentialsPath(dir), active: doc.credentials.map((x) => x.accessKeyId) }
}

/** Removes one credential: the second half of a rotation. Refuses to remove the last one. */
export async function retireCredential(dir: string, accessKeyId: string): Promise<{ credentialsFile: string; active: string[] }> {
  const doc = await readDocument(dir)
  const rest = doc.credentials.filter((c) => c.accessKeyId !== accessKeyId)
  if (rest.length === doc.credentials.length) {
    throw new DomicileError('ERR_INPUT_INVALID', 'No credential with this access key id in credentials.json. Run "domicile keyproxy rotate-credentials --dir DIR --json" to list the active ids.')
  }
  /* Precondition: at least one credential stays active. */
  if (rest.length === 0) throw new DomicileError('ERR_INPUT_INVALID', 'This is the only credential: add a new one first ("domicile keyproxy rotate-credentials --dir DIR").')
  await writeFileAtomic(credentialsPath(dir), JSON.stringify({ ...doc, credentials: rest }, null, 2) + '\n')
  return { credentialsFile: credentialsPath(dir), active: rest.map((x) => x.accessKeyId) }
}
