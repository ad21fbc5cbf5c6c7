/**
 * `domicile migrate`: applies internal tables, the schema and row-level security to the control
 * plane and every region. Idempotent. Exit 1 if any store failed (the others are still migrated).
 */
import type { Command } from '../cli-args.js'
import { formatTable, printJson, println } from '../cli-output.js'
import { withDomicile } from '../open-domicile.js'

export const migrateCommand: Command = {
  spec: {
    synopsis: 'migrate',
    summary: 'create or upgrade tables, row-level security and region stamps in every store (idempotent)',
  },
  async run(p) {
    const results = await withDomicile(p, (d) => d.migrate())
    const failed = results.filter((r) => !r.ok)
    if (p.json) {
      printJson(results)
    } else {
      println(formatTable(['STORE', 'RESULT', 'STATEMENTS', 'ERROR'],
        results.map((r) => [r.store, r.ok ? 'ok' : 'FAILED', String(r.statements), r.ok ? '' : `${r.code ?? ''} ${r.message ?? ''}`.trim()])))
      const pending = results.flatMap((r) => (r.pending ?? []).map((x) => ({ store: r.store, ...x })))
      if (pending.length > 0) {
        println('\nPending encryption: these sensitive columns still hold plaintext (read as sealed values meanwhile; new writes are sealed).')
        println(formatTable(['STORE', 'COLUMN', 'RUN'], pending.map((x) => [x.store, `${x.table}.${x.column}`, x.command])))
      }
      if (failed.length > 0) println(`\n${failed.length} store(s) failed; fix them and run "domicile migrate" again (it is idempotent).`)
    }
    return failed.length > 0 ? 1 : 0
  },
}
