/**
 * X.509 certificates for the key proxy's TLS, made with node:crypto: an ECDSA P-256 key pair from
 * `generateKeyPairSync` and a certificate (DER, RFC 5280) signed with `crypto.sign`. node:crypto
 * parses certificates (`X509Certificate`) but cannot issue them, and one small DER encoder here
 * avoids a dependency for `domicile keyproxy init`'s self-signed pair; tests also issue a CA and
 * client certificates with it for mutual TLS.
 *
 * What is encoded: version 3, a random positive 128-bit serial, ecdsa-with-SHA256, issuer/subject
 * as one CN, validity, the SubjectPublicKeyInfo exported by node:crypto, and the extensions
 * basicConstraints (critical), keyUsage (critical), extKeyUsage, subjectAltName (DNS names and IP
 * addresses) and subjectKeyIdentifier.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto'
import { isIP } from 'node:net'

// ---- DER ----

function der(tag: number, ...content: Uint8Array[]): Buffer {
  const body = Buffer.concat(content)
  const n = body.length
  let len: Buffer
  if (n < 0x80) len = Buffer.from([n])
  else if (n < 0x100) len = Buffer.from([0x81, n])
  else if (n < 0x10000) len = Buffer.from([0x82, n >> 8, n & 0xff])
  else len = Buffer.from([0x83, n >> 16, (n >> 8) & 0xff, n & 0xff])
  return Buffer.concat([Buffer.from([tag]), len, body])
}

const seq = (...c: Uint8Array[]): Buffer => der(0x30, ...c)
const set = (...c: Uint8Array[]): Buffer => der(0x31, ...c)
const octets = (b: Uint8Array): Buffer => der(0x04, b)
const bitString = (b: Uint8Array): Buffer => der(0x03, Buffer.from([0]), b)
const utf8 = (s: string): Buffer => der(0x0c, Buffer.from(s, 'utf8'))
const bool = (v: boolean): Buffer => der(0x01, Buffer.from([v ? 0xff : 0]))

function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number)
  const bytes = [40 * parts[0]! + parts[1]!]
  for (const p of parts.slice(2)) {
    const stack = [p & 0x7f]
    for (let v = p >>> 7; v > 0; v >>>= 7) stack.unshift((v & 0x7f) | 0x80)
    bytes.push(...stack)
  }
  return der(0x06, Buffer.from(bytes))
}

function positiveInteger(b: Buffer): Buffer {
  const v = Buffer.from(b)
  v[0] = (v[0]! & 0x7f) | 0x01 // positive, and no leading zero byte to strip
  return der(0x02, v)
}

function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z' // YYYYMMDDHHMMSSZ
  return d.getUTCFullYear() < 2050 ? der(0x17, Buffer.from(iso.slice(2), 'ascii')) : der(0x18, Buffer.from(iso, 'ascii'))
}

const name = (cn: string): Buffer => seq(set(seq(oid('2.5.4.3'), utf8(cn))))

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return seq(oid(id), ...(critical ? [bool(true)] : []), octets(value))
}

function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number))
  // IPv6: expand '::' and write 8 groups of 16 bits.
  const [head, tail] = ip.includes('::') ? ip.split('::') as [string, string] : [ip, undefined]
  const h = head === '' ? [] : head.split(':')
  const t = tail === undefined || tail === '' ? [] : tail.split(':')
  const groups = tail === undefined ? h : [...h, ...new Array(8 - h.length - t.length).fill('0'), ...t]
  const out = Buffer.alloc(16)
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2))
  return out
}

// ---- certificates ----

export interface CertificateRequest {
  /** Subject common name. */
  readonly commonName: string
  /** The subject's public key. */
  readonly publicKey: KeyObject
  /** Signer: the subject's own private key for a self-signed certificate, else the issuing CA's. */
  readonly signingKey: KeyObject
  /** Issuer common name; default: the subject's (self-signed). */
  readonly issuerCommonName?: string
  /** DNS names and IP addresses for subjectAltName. */
  readonly altNames?: readonly string[]
  /** A CA certificate (may sign others). */
  readonly isCa?: boolean
  /** Extended key usage: 'server' (TLS server), 'client' (TLS client). Default both for a self-signed pair. */
  readonly usage?: ReadonlyArray<'server' | 'client'>
  /** Days valid from now (an hour of clock skew allowed before). Default 825. */
  readonly days?: number
}

/**
 * Issues an X.509 v3 certificate (PEM) signed with ECDSA-SHA256.
 *
 * @example
 * const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
 * const pem = issueCertificate({ commonName: 'proxy', publicKey, signingKey: privateKey, altNames: ['localhost', '127.0.0.1'] })
 */
export function issueCertificate(r: CertificateRequest): string {
  const now = Date.now()
  const notBefore = new Date(now - 60 * 60 * 1000)
  const notAfter = new Date(now + (r.days ?? 825) * 24 * 60 * 60 * 1000)
  const spki = r.publicKey.export({ type: 'spki', format: 'der' })
  const ecdsaSha256 = seq(oid('1.2.840.10045.4.3.2'))
  const usage = r.usage ?? ['server', 'client']
  const keyUsageBits = r.isCa === true ? 0x86 : 0x80 // digitalSignature (+ keyCertSign, cRLSign for a CA)
  const extensions: Buffer[] = [
    extension('2.5.29.19', true, seq(...(r.isCa === true ? [bool(true)] : []))),
    extension('2.5.29.15', true, der(0x03, Buffer.from([r.isCa === true ? 1 : 7, keyUsageBits]))),
    extension('2.5.29.14', false, octets(createHash('sha1').update(spki).digest())),
  ]
  if (usage.length > 0) {
    extensions.push(extension('2.5.29.37', false, seq(...usage.map((u) => oid(u === 'server' ? '1.3.6.1.5.5.7.3.1' : '1.3.6.1.5.5.7.3.2')))))
  }
  const alt = r.altNames ?? []
  if (alt.length > 0) {
    extensions.push(extension('2.5.29.17', false, seq(...alt.map((a) => isIP(a) !== 0 ? der(0x87, ipBytes(a)) : der(0x82, Buffer.from(a, 'ascii'))))))
  }
  const tbs = seq(
    der(0xa0, der(0x02, Buffer.from([2]))), // [0] version v3
    positiveInteger(randomBytes(16)),
    ecdsaSha256,
    name(r.issuerCommonName ?? r.commonName),
    seq(time(notBefore), time(notAfter)),
    name(r.commonName),
    spki,
    der(0xa3, seq(...extensions)), // [3] extensions
  )
  const signature = sign('sha256', tbs, r.signingKey) // DER ECDSA-Sig-Value
  const cert = seq(tbs, ecdsaSha256, bitString(signature))
  const b64 = cert.toString('base64').replace(/.{1,64}/g, '$&\n')
  return `-----BEGIN CERTIFICATE-----\n${b64}-----END CERTIFICATE-----\n`
}

export interface TlsPair {
  /** PEM certificate. */
  readonly cert: string
  /** PEM PKCS#8 private key. */
  readonly key: string
}

/** Default names in the self-signed certificate: the loopback names a proxy is reached by on one host. */
export const DEFAULT_TLS_NAMES = ['localhost', '127.0.0.1', '::1'] as const

/**
 * A fresh ECDSA P-256 key pair and a self-signed certificate for `names` (DNS names or IPs),
 * checked with node's own X509Certificate parser before it is returned.
 */
export function createSelfSignedPair(names: readonly string[] = DEFAULT_TLS_NAMES, commonName = 'domicile-keyproxy'): TlsPair {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const cert = issueCertificate({ commonName, publicKey, signingKey: privateKey, altNames: names, isCa: true, usage: ['server'] })
  /* Precondition: the certificate parses and its signature verifies under its own key. */
  if (!new X509Certificate(cert).verify(publicKey)) throw new Error('self-signed certificate does not verify')
  return { cert, key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string }
}
