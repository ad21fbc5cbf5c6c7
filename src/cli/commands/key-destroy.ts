/**
 * `domicile key destroy TENANT` and `domicile key delete-material TENANT`: the irreversible side of
 * the kill switch. `destroy` asks for the tenant id on a terminal (`--yes` for scripts) and runs the
 * journaled destruction (src/ops/shred-destroy.ts); `delete-material` is the BYOK customer's deletion
 * of the key material they imported (the key stays, pending import of the same material).
 */
import { createInterface } from 'node:readline/promises'
import { DomicileError } from '../../errors.js'
import type { Progress } from '../../ops/progress.js'
import { destroyTenantKey } from '../../ops/shred-destroy.js'
import { actorOption, type Command, type ParsedCommand } from '../cli-args.js'
import { formatFields, formatTenant, printJson, println, tenantJson } from '../cli-output.js'
import { withDomicile } from '../open-domicile.js'
import { progressOutput } from '../progress-output.js'

/** Asks the operator to type the tenant id; refuses without a terminal unless --yes was given. */
export async function confirmOnTerminal(p: ParsedCommand, tenant: string, what: string): Promise<void> {
  if (p.values.yes === true) return
  /* Precondition: an irreversible command is confirmed on a terminal, or by --yes. */
  if (!process.stdin.isTTY || !process.stderr.isTTY) {
    throw new DomicileError('ERR_INPUT_INVALID', `${what} cannot be undone and needs confirmation: run it on a terminal, or pass --yes in scripts.`, { path: '--yes' })
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr })
  try {
    const answer = (await rl.question(`${what} cannot be undone. Type the tenant id (${tenant}) to go on: `)).trim()
    if (answer !== tenant) throw new DomicileError('ERR_INPUT_INVALID', 'Not confirmed: nothing was changed.', { path: '--yes' })
  } finally {
    rl.close()
  }
}

export const keyDestroyCommand: Command = {
  spec: {
    synopsis: 'key destroy TENANT [--yes] [--actor A]',
    summary: 'destroy the tenant\'s key material and every wrapped copy of its data keys: sealed fields are gone for good',
    positionals: ['TENANT'],
    options: { yes: { type: 'boolean' }, actor: { type: 'string' } },
  },
  async run(p) {
    const tenant = p.args[0]!
    const actor = actorOption(p.values)
    await confirmOnTerminal(p, tenant, `Destroying the key of tenant "${tenant}"`)
    const progress = await progressOutput({ json: p.json })
    const r = await withDomicile(p, (d) => destroyTenantKey(d, tenant, { actor, progress })).finally(() => progress.stop())
    const rows = r.deleted.reduce((n, d) => n + d.rows, 0)
    if (p.json) {
      printJson({ state: 'done', tenant, operation: r.operationId, resumed: r.resumed, destroyedAt: r.destroyedAt, keys: r.keks, rows, wrappedKeys: r.wrappedKeys.length, elapsedMs: r.elapsedMs })
      return 0
    }
    println(formatFields([
      ['tenant', tenant], ['operation', `#${r.operationId}${r.resumed ? ' (resumed)' : ''}`], ['destroyed at', r.destroyedAt],
      ...r.keks.map((k) => [`key ${k.provider}/${k.keyId}`, k.outcome + (k.deletionDate ? ` (deleted by the provider on ${k.deletionDate})` : '') + (k.sharedWith ? ` (bound to ${k.sharedWith} other tenant(s))` : '')] as const),
      ['wrapped keys deleted', rows], ['elapsed', `${r.elapsedMs} ms`],
    ]))
    println('')
    println(`Next: domicile shred verify ${tenant} --out ${tenant}.shred.json`)
    return 0
  },
}

export const keyDeleteMaterialCommand: Command = {
  spec: {
    synopsis: 'key delete-material TENANT [--yes] [--actor A]',
    summary: 'BYOK: delete the key material you imported; sealed fields stay unreadable unless you re-import the same material',
    positionals: ['TENANT'],
    options: { yes: { type: 'boolean' }, actor: { type: 'string' } },
  },
  async run(p) {
    const tenant = p.args[0]!
    const actor = actorOption(p.values)
    await confirmOnTerminal(p, tenant, `Deleting the imported key material of tenant "${tenant}"`)
    const t = await withDomicile(p, (d) => d.keys.deleteMaterial(tenant, actor))
    if (p.json) printJson(tenantJson(t))
    else {
      println(formatTenant(t))
      println('')
      println('The key material is deleted. Only a re-import of the SAME material ("domicile key import-job", "domicile key import") makes the data readable again.')
    }
    return 0
  },
}
