/**
 * `domicile key import-job|import|revoke|restore|status`: the BYOK import flow and the kill switch,
 * through the key admin. The import token and the wrapping key are written to files (mode 0600),
 * never printed; key material is read from a file and zeroed after use.
 */
import { resolve } from 'node:path'
import { DomicileError } from '../../errors.js'
import type { TenantKeyStatus } from '../../keys/key-admin.js'
import { actorOption, runGroup, stringOption, type Command, type ParsedCommand } from '../cli-args.js'
import { formatFields, formatTenant, printJson, println, tenantJson } from '../cli-output.js'
import { withDomicile } from '../open-domicile.js'
import { readImportFiles, writeImportJobFiles } from '../byok-files.js'
import { keyDeleteMaterialCommand, keyDestroyCommand } from './key-destroy.js'
import { keyRotateCommands } from './key-rotate.js'
import type { TenantRecord } from '../../control-plane/tenant-directory.js'

function printTenant(p: ParsedCommand, t: TenantRecord): void {
  if (p.json) printJson(tenantJson(t))
  else println(formatTenant(t))
}

const importJob: Command = {
  spec: {
    synopsis: 'key import-job TENANT --out DIR',
    summary: 'BYOK: write DIR/wrapping-key.pem (RSA public key) and DIR/import-token for importing your key',
    positionals: ['TENANT'],
    options: { out: { type: 'string' } },
    required: ['out'],
  },
  async run(p) {
    const tenant = p.args[0]!
    const dir = resolve(stringOption(p.values, 'out')!)
    const job = await withDomicile(p, (d) => d.keys.createImportJob(tenant))
    const { wrappingKey, importToken } = await writeImportJobFiles(dir, job)
    const expiresAt = job.expiresAt.toISOString()
    if (p.json) {
      printJson({ tenant, wrappingKey, importToken, expiresAt })
      return 0
    }
    println(formatFields([['wrapping key', wrappingKey], ['import token', importToken], ['expires', expiresAt]]))
    println('')
    println('Wrap your 32-byte key with RSAES-OAEP-SHA-256 under the wrapping key, e.g.')
    println(`  openssl pkeyutl -encrypt -pubin -inkey ${wrappingKey} -pkeyopt rsa_padding_mode:oaep \\`)
    println('    -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256 -in key.bin -out key.wrapped')
    println(`then: domicile key import ${tenant} --material key.wrapped --token ${importToken}`)
    return 0
  },
}

const importKey: Command = {
  spec: {
    synopsis: 'key import TENANT --material FILE --token FILE',
    summary: 'BYOK: import your wrapped key (raw RSAES-OAEP-SHA-256 bytes) with the job\'s token',
    positionals: ['TENANT'],
    options: { material: { type: 'string' }, token: { type: 'string' } },
    required: ['material', 'token'],
  },
  async run(p) {
    const tenant = p.args[0]!
    const { material, token } = await readImportFiles(stringOption(p.values, 'material')!, stringOption(p.values, 'token')!)
    let t: TenantRecord
    try {
      if (material.length === 0) throw new DomicileError('ERR_KEY_IMPORT_INVALID', '--material: the file is empty; pass the wrapped key bytes.')
      if (token === '') throw new DomicileError('ERR_KEY_IMPORT_INVALID', '--token: the file is empty; pass the import-token file written by "domicile key import-job".')
      t = await withDomicile(p, (d) => d.keys.importKeyMaterial(tenant, new Uint8Array(material.buffer, material.byteOffset, material.byteLength), token))
    } finally {
      material.fill(0)
    }
    printTenant(p, t)
    return 0
  },
}

function killSwitch(word: 'revoke' | 'restore'): Command {
  return {
    spec: {
      synopsis: `key ${word} TENANT [--actor A]`,
      summary: word === 'revoke'
        ? 'kill switch: revoke the tenant\'s key; its sealed fields become unreadable everywhere'
        : 'restore a revoked key; sealed fields can be opened again',
      positionals: ['TENANT'],
      options: { actor: { type: 'string' } },
    },
    async run(p) {
      const actor = actorOption(p.values)
      printTenant(p, await withDomicile(p, (d) => d.keys[word](p.args[0]!, actor)))
      return 0
    },
  }
}

const status: Command = {
  spec: { synopsis: 'key status TENANT', summary: 'the tenant\'s key binding and its state (ours and the provider\'s)', positionals: ['TENANT'] },
  async run(p) {
    const s: TenantKeyStatus = await withDomicile(p, (d) => d.keys.status(p.args[0]!))
    if (p.json) {
      printJson(s)
      return 0
    }
    println(formatFields([
      ['tenant', s.tenant], ['custody', s.custody ?? 'none'], ['provider', s.provider ?? '-'], ['key id', s.keyId ?? '-'],
      ['state', s.state], ...(s.providerState !== undefined ? [['provider state', s.providerState] as const] : []),
    ]))
    return 0
  },
}

export function runKeyCommand(argv: readonly string[]): Promise<number> {
  return runGroup('key', {
    'import-job': importJob, import: importKey, revoke: killSwitch('revoke'), restore: killSwitch('restore'), status,
    ...keyRotateCommands, destroy: keyDestroyCommand, 'delete-material': keyDeleteMaterialCommand,
  }, argv)
}
