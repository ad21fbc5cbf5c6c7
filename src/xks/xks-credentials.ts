/**
 * The SigV4 credentials file of an XKS proxy, one format read by both ends so that the file
 * `domicile keyproxy init` writes is accepted as-is by the `xks` provider's `credentialsFile`:
 *
 *   keyproxy format:  { "version": 1, "credentials": [ { "accessKeyId", "secretAccessKey", "createdAt"? }, ... ] }
 *   single pair:      { "accessKeyId", "secretAccessKey" }
 *
 * The proxy accepts every listed credential (several at once, so credentials rotate without
 * downtime); a client signs with the newest one (latest `createdAt`, else the last listed).
 * Errors say what is wrong with the file, never a value from it.
 */

export interface XksCredential {
  readonly accessKeyId: string
  readonly secretAccessKey: string
  /** ISO time the credential was made, when the file says. */
  readonly createdAt?: string
}

export type CredentialsParse =
  | { readonly ok: true; readonly credentials: readonly XksCredential[] }
  | { readonly ok: false; readonly problem: string }

const EXPECTED = 'must hold {"credentials":[{"accessKeyId","secretAccessKey"}]} (as written by "domicile keyproxy init") or {"accessKeyId","secretAccessKey"}'

function credential(v: unknown): XksCredential | undefined {
  if (typeof v !== 'object' || v === null) return undefined
  const c = v as Record<string, unknown>
  if (typeof c['accessKeyId'] !== 'string' || c['accessKeyId'] === '' || typeof c['secretAccessKey'] !== 'string' || c['secretAccessKey'] === '') return undefined
  return {
    accessKeyId: c['accessKeyId'],
    secretAccessKey: c['secretAccessKey'],
    ...(typeof c['createdAt'] === 'string' ? { createdAt: c['createdAt'] } : {}),
  }
}

/** Parses the text of a credentials file in either format. */
export function parseCredentialsFile(text: string): CredentialsParse {
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch {
    return { ok: false, problem: `is not valid JSON; it ${EXPECTED}` }
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return { ok: false, problem: EXPECTED }
  const list = (doc as Record<string, unknown>)['credentials']
  if (list === undefined) {
    const single = credential(doc)
    return single === undefined ? { ok: false, problem: EXPECTED } : { ok: true, credentials: [single] }
  }
  if (!Array.isArray(list) || list.length === 0) return { ok: false, problem: EXPECTED }
  const out: XksCredential[] = []
  for (const entry of list) {
    const c = credential(entry)
    if (c === undefined) return { ok: false, problem: EXPECTED }
    out.push(c)
  }
  return { ok: true, credentials: out }
}

/** The credential a client signs with: the newest by `createdAt`, ties and undated ones by position (last wins). */
export function newestCredential(list: readonly XksCredential[]): XksCredential {
  let best = list[list.length - 1]!
  let bestTime = Date.parse(best.createdAt ?? '')
  for (let i = list.length - 2; i >= 0; i--) {
    const t = Date.parse(list[i]!.createdAt ?? '')
    if (!Number.isNaN(t) && (Number.isNaN(bestTime) || t > bestTime)) {
      best = list[i]!
      bestTime = t
    }
  }
  return best
}
