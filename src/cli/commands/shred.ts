/**
 * `domicile shred verify|public-key|check`: the shred certificate. `verify` checks a revoked or
 * destroyed tenant and writes a signed certificate; `public-key` prints the key that signs
 * certificates (to publish it); `check` verifies a certificate file and fails on any edit.
 */
import { readFile, writeFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { createPublicKey } from 'node:crypto'
import { loadConfig } from '../../config/load-config.js'
import { DomicileError } from '../../errors.js'
import { keyIdOf, loadOrCreateSigningKey, loadPublicKey } from '../../evidence/signing-key.js'
import { checkShredCertificate } from '../../ops/shred-certificate.js'
import { evidenceSigningKeyFile } from '../../ops/shred-evidence-key.js'
import { issueShredCertificate } from '../../ops/shred-verify.js'
import { actorOption, intOption, runGroup, stringOption, type Command } from '../cli-args.js'
import { formatFields, formatTable, printJson, println } from '../cli-output.js'
import { withDomicile } from '../open-domicile.js'
import { progressOutput } from '../progress-output.js'

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8')
  } catch {
    throw new DomicileError('ERR_INPUT_INVALID', `${what}: cannot read ${resolve(path)}.`, { path: what })
  }
}

export const shredVerifyCommand: Command = {
  spec: {
    synopsis: 'shred verify TENANT --out FILE [--sample N] [--known-plaintext FILE] [--actor A]',
    summary: 'after a revoke or destroy: check nothing of the tenant opens, write a signed shred certificate',
    positionals: ['TENANT'],
    options: { out: { type: 'string' }, sample: { type: 'string' }, 'known-plaintext': { type: 'string' }, actor: { type: 'string' } },
    required: ['out'],
  },
  async run(p) {
    const started = performance.now()
    const tenant = p.args[0]!
    const out = resolve(stringOption(p.values, 'out')!)
    const sampleSize = intOption(p.values, 'sample', 1, 1000)
    const knownFile = stringOption(p.values, 'known-plaintext')
    // One sample per line; kept in memory only (the certificate holds their count).
    const knownPlaintexts = knownFile === undefined ? [] : (await readText(knownFile, '--known-plaintext')).split(/\r?\n/).filter((l) => l !== '')
    const actor = actorOption(p.values)
    const progress = await progressOutput({ json: p.json })
    const cert = await withDomicile(p, (d) => issueShredCertificate(d, tenant, {
      actor, knownPlaintexts, progress, ...(sampleSize === undefined ? {} : { sampleSize }),
    })).finally(() => progress.stop())
    await writeFile(out, `${JSON.stringify(cert, null, 2)}\n`, { mode: 0o644 })
    const c = cert.payload
    const rows = c.checks.find((k) => k.id === 'sensitive-columns-sealed')?.counts.rows ?? 0
    if (p.json) {
      printJson({ state: c.verdict, tenant, out, certificateId: c.certificateId, verdict: c.verdict, method: c.erase.method, reversible: c.erase.reversible,
        rows, elapsedMs: Math.round(performance.now() - started), checks: c.checks.map((k) => ({ id: k.id, status: k.status })) })
    } else {
      println(formatFields([
        ['tenant', tenant], ['verdict', c.verdict], ['erase', c.erase.method], ['reversible', c.erase.reversible ? `yes: ${c.erase.restorableBy}` : c.erase.restorableBy ? `no (${c.erase.restorableBy})` : 'no'],
        ['at', c.erase.at ?? 'unknown (done by the key holder)'], ['certificate', out], ['signed by', cert.signature.keyId],
      ]))
      println('')
      println(formatTable(['check', 'status', 'note'], c.checks.map((k) => [k.id, k.status, k.note])))
    }
    /* Precondition: a failed verification exits non-zero (the certificate says which check failed). */
    return c.verdict === 'failed' ? 1 : 0
  },
}

export const shredPublicKeyCommand: Command = {
  spec: {
    synopsis: 'shred public-key',
    summary: 'print the Ed25519 public key that signs shred certificates (PEM; --json adds its key id)',
  },
  async run(p) {
    const file = evidenceSigningKeyFile(loadConfig(p.configPath))
    const key = loadOrCreateSigningKey(file)
    if (p.json) printJson({ alg: 'Ed25519', keyId: key.keyId, publicKeyPem: key.publicKeyPem })
    else process.stdout.write(key.publicKeyPem)
    return 0
  },
}

export const shredCheckCommand: Command = {
  spec: {
    synopsis: 'shred check FILE [--public-key PEM]',
    summary: 'verify a shred certificate\'s signature (with this deployment\'s key, or a published PEM); fails on any edit',
    positionals: ['FILE'],
    options: { 'public-key': { type: 'string' } },
  },
  async run(p) {
    const text = await readText(p.args[0]!, 'FILE')
    const pemFile = stringOption(p.values, 'public-key')
    let publicKey
    if (pemFile !== undefined) {
      try {
        publicKey = createPublicKey(await readText(pemFile, '--public-key'))
      } catch (e) {
        if (e instanceof DomicileError) throw e
        throw new DomicileError('ERR_INPUT_INVALID', '--public-key: not a PEM public key. Pass the output of "domicile shred public-key".', { path: '--public-key' })
      }
      if (publicKey.asymmetricKeyType !== 'ed25519') throw new DomicileError('ERR_INPUT_INVALID', '--public-key: not an Ed25519 public key.', { path: '--public-key' })
    } else {
      publicKey = loadPublicKey(evidenceSigningKeyFile(loadConfig(p.configPath))).publicKey
    }
    const cert = checkShredCertificate(text, publicKey)
    const c = cert.payload
    if (p.json) printJson({ valid: true, keyId: keyIdOf(publicKey), certificateId: c.certificateId, tenant: c.tenant.id, verdict: c.verdict, method: c.erase.method, reversible: c.erase.reversible, issuedAt: c.issuedAt })
    else println(formatFields([['valid', 'yes'], ['signed by', keyIdOf(publicKey)], ['certificate', c.certificateId], ['tenant', c.tenant.id], ['verdict', c.verdict], ['erase', c.erase.method], ['reversible', c.erase.reversible ? 'yes' : 'no'], ['issued', c.issuedAt]]))
    return 0
  },
}

export function runShredCommand(argv: readonly string[]): Promise<number> {
  return runGroup('shred', { verify: shredVerifyCommand, 'public-key': shredPublicKeyCommand, check: shredCheckCommand }, argv)
}
