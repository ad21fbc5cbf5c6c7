/**
 * `domicile key rotate|rotate-data|rotate-index|retire-data|rotate-import-job|rotate-import`: the
 * three key rotations (src/ops/rotate-kek.ts, rotate-data-key.ts, rotate-index-key.ts), retiring an
 * old data key, and the BYOK side of a KEK rotation. Rerunning a rotation resumes it; --abort
 * abandons it (safe at every step). Progress goes to stderr; --json prints one result
 * `{ "state", "rows", "elapsedMs", ... }` on stdout.
 */
import { resolve } from 'node:path'
import { DomicileError } from '../../errors.js'
import { abortDataKeyRotation, retireDataKey, rotateDataKey } from '../../ops/rotate-data-key.js'
import { abortIndexKeyRotation, rotateIndexKey } from '../../ops/rotate-index-key.js'
import { abortKekRotation, importRotationMaterial, rotateKek, rotationImportJob } from '../../ops/rotate-kek.js'
import { actorOption, intOption, stringOption, type Command, type ParsedCommand } from '../cli-args.js'
import { formatFields, printJson, println } from '../cli-output.js'
import { withDomicile } from '../open-domicile.js'
import { readImportFiles, writeImportJobFiles } from '../byok-files.js'
import { progressOutput } from '../progress-output.js'

type Fields = ReadonlyArray<readonly [string, unknown]>

function print(p: ParsedCommand, json: Record<string, unknown>, fields: Fields): number {
  if (p.json) printJson(json)
  else println(formatFields(fields))
  return 0
}

async function aborted(p: ParsedCommand, what: string, fn: () => Promise<{ operation: number }>): Promise<number> {
  const r = await fn()
  return print(p, { state: 'aborted', operation: r.operation, rows: 0, elapsedMs: 0 }, [['operation', `#${r.operation}`], ['state', `aborted (${what})`]])
}

const COMMON = { actor: { type: 'string' }, 'batch-size': { type: 'string' }, abort: { type: 'boolean' } } as const

const rotate: Command = {
  spec: {
    synopsis: 'key rotate TENANT [--key-id K] [--batch-size N] [--actor A] [--abort]',
    summary: 'rotate the tenant\'s key-encryption key: rewrap its data and index keys (no row is read); hyok: --key-id of the new key on your proxy; byok: then import new material',
    positionals: ['TENANT'],
    options: { ...COMMON, 'key-id': { type: 'string' } },
  },
  async run(p) {
    const tenant = p.args[0]!
    const actor = actorOption(p.values)
    if (p.values.abort === true) return aborted(p, 'key rotation', () => withDomicile(p, (d) => abortKekRotation(d, tenant, actor)))
    const keyId = stringOption(p.values, 'key-id')
    const batchSize = intOption(p.values, 'batch-size', 1, 10_000)
    const progress = await progressOutput({ json: p.json })
    const r = await withDomicile(p, (d) => rotateKek(d, tenant, { progress, actor, ...(keyId !== undefined ? { keyId } : {}), ...(batchSize ? { batchSize } : {}) })).finally(() => progress.stop())
    const json = { ...r, rows: 0 }
    if (r.state === 'await-import' && !p.json) {
      print(p, json, [['tenant', r.tenant], ['operation', `#${r.operation}`], ['state', r.state], ['new key id', r.to.keyId]])
      println('')
      println(`Import the new key material, then run "domicile key rotate ${tenant}" again:`)
      println(`  domicile key rotate-import-job ${tenant} --out DIR`)
      println(`  domicile key rotate-import ${tenant} --material key.wrapped --token DIR/import-token`)
      return 0
    }
    return print(p, json, [
      ['tenant', r.tenant], ['region', r.region], ['operation', `#${r.operation}${r.resumed ? ' (resumed)' : ''}`], ['state', r.state],
      ['from', `${r.from.provider}:${r.from.keyId}`], ['to', `${r.to.provider}:${r.to.keyId}`], ['keys rewrapped', r.keys], ['rows read', 0],
      ['elapsed', `${(r.elapsedMs / 1000).toFixed(1)} s`],
    ])
  },
}

const rotateData: Command = {
  spec: {
    synopsis: 'key rotate-data TENANT [--max-rows-per-second N] [--batch-size N] [--actor A] [--abort]',
    summary: 'rotate the tenant\'s data key: new writes use a new key at once; stored values are re-encrypted in the background (rerun to resume)',
    positionals: ['TENANT'],
    options: { ...COMMON, 'max-rows-per-second': { type: 'string' } },
  },
  async run(p) {
    const tenant = p.args[0]!
    const actor = actorOption(p.values)
    if (p.values.abort === true) return aborted(p, 'data-key rotation', () => withDomicile(p, (d) => abortDataKeyRotation(d, tenant, actor)))
    const batchSize = intOption(p.values, 'batch-size', 1, 10_000)
    const maxRowsPerSecond = intOption(p.values, 'max-rows-per-second', 1, 10_000_000)
    const progress = await progressOutput({ json: p.json })
    const r = await withDomicile(p, (d) => rotateDataKey(d, tenant, { progress, actor, ...(batchSize ? { batchSize } : {}), ...(maxRowsPerSecond ? { maxRowsPerSecond } : {}) }))
      .finally(() => progress.stop())
    return print(p, { ...r }, [
      ['tenant', r.tenant], ['region', r.region], ['operation', `#${r.operation}${r.resumed ? ' (resumed)' : ''}`], ['state', r.state],
      ['data key', `#${r.newKeyNumber}`], ['rows', r.rows], ['values re-encrypted', r.values], ['left to concurrent updates', r.skipped], ['passes', r.passes],
      ['elapsed', `${(r.elapsedMs / 1000).toFixed(1)} s`], ['rate', `${r.valuesPerSecond} values/s`],
    ])
  },
}

const retireData: Command = {
  spec: {
    synopsis: 'key retire-data TENANT --key-number N [--actor A]',
    summary: 'delete an old data key\'s wrapped copy; refused while any stored value still uses it (checked against the data)',
    positionals: ['TENANT'],
    options: { 'key-number': { type: 'string' }, actor: { type: 'string' } },
    required: ['key-number'],
  },
  async run(p) {
    const keyNumber = intOption(p.values, 'key-number', 1, 0x7fff_ffff)!
    const r = await withDomicile(p, (d) => retireDataKey(d, p.args[0]!, keyNumber, { actor: actorOption(p.values) }))
    return print(p, { state: 'retired', ...r, rows: r.valuesChecked, elapsedMs: 0 }, [['tenant', r.tenant], ['data key', `#${r.keyNumber} retired`], ['values checked', r.valuesChecked]])
  },
}

const rotateIndex: Command = {
  spec: {
    synopsis: 'key rotate-index TENANT [--max-rows-per-second N] [--batch-size N] [--actor A] [--abort]',
    summary: 'rotate the tenant\'s blind-index key: searches cover both keys while every index is rebuilt, then the old key is retired (rerun to resume)',
    positionals: ['TENANT'],
    options: { ...COMMON, 'max-rows-per-second': { type: 'string' } },
  },
  async run(p) {
    const tenant = p.args[0]!
    const actor = actorOption(p.values)
    if (p.values.abort === true) return aborted(p, 'index-key rotation', () => withDomicile(p, (d) => abortIndexKeyRotation(d, tenant, actor)))
    const batchSize = intOption(p.values, 'batch-size', 1, 10_000)
    const maxRowsPerSecond = intOption(p.values, 'max-rows-per-second', 1, 10_000_000)
    const progress = await progressOutput({ json: p.json })
    const r = await withDomicile(p, (d) => rotateIndexKey(d, tenant, { progress, actor, ...(batchSize ? { batchSize } : {}), ...(maxRowsPerSecond ? { maxRowsPerSecond } : {}) }))
      .finally(() => progress.stop())
    return print(p, { ...r, rows: r.indexes }, [
      ['tenant', r.tenant], ['region', r.region], ['operation', `#${r.operation}${r.resumed ? ' (resumed)' : ''}`], ['state', r.state],
      ['index key', `#${r.newKeyNumber}`], ['retired', r.retiredKeyNumbers.map((n) => `#${n}`).join(', ') || '-'], ['indexes rewritten', r.indexes],
      ['passes', r.passes], ['elapsed', `${(r.elapsedMs / 1000).toFixed(1)} s`],
    ])
  },
}

const rotateImportJob: Command = {
  spec: {
    synopsis: 'key rotate-import-job TENANT --out DIR',
    summary: 'BYOK rotation: write DIR/wrapping-key.pem and DIR/import-token for the new key a rotation awaits',
    positionals: ['TENANT'],
    options: { out: { type: 'string' } },
    required: ['out'],
  },
  async run(p) {
    const tenant = p.args[0]!
    const dir = resolve(stringOption(p.values, 'out')!)
    const job = await withDomicile(p, (d) => rotationImportJob(d, tenant))
    const { wrappingKey, importToken } = await writeImportJobFiles(dir, job)
    return print(p, { tenant, keyId: job.keyId, wrappingKey, importToken, expiresAt: job.expiresAt.toISOString() },
      [['new key id', job.keyId], ['wrapping key', wrappingKey], ['import token', importToken], ['expires', job.expiresAt.toISOString()]])
  },
}

const rotateImport: Command = {
  spec: {
    synopsis: 'key rotate-import TENANT --material FILE --token FILE',
    summary: 'BYOK rotation: import your new wrapped key (RSAES-OAEP-SHA-256) into the key the rotation awaits; then rerun "key rotate"',
    positionals: ['TENANT'],
    options: { material: { type: 'string' }, token: { type: 'string' } },
    required: ['material', 'token'],
  },
  async run(p) {
    const tenant = p.args[0]!
    const { material, token } = await readImportFiles(stringOption(p.values, 'material')!, stringOption(p.values, 'token')!)
    try {
      if (material.length === 0 || token === '') throw new DomicileError('ERR_KEY_IMPORT_INVALID', '--material and --token: pass the wrapped key bytes and the import-token file of "key rotate-import-job".')
      const r = await withDomicile(p, (d) => importRotationMaterial(d, tenant, new Uint8Array(material.buffer, material.byteOffset, material.byteLength), token))
      return print(p, { tenant, keyId: r.keyId, state: 'imported' }, [['new key id', r.keyId], ['state', `imported: run "domicile key rotate ${tenant}" to finish`]])
    } finally {
      material.fill(0)
    }
  },
}

/** The commands, by sub-command name of `domicile key`. */
export const keyRotateCommands: Readonly<Record<string, Command>> = Object.freeze({
  rotate, 'rotate-data': rotateData, 'rotate-index': rotateIndex, 'retire-data': retireData, 'rotate-import-job': rotateImportJob, 'rotate-import': rotateImport,
})
