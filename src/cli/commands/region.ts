/**
 * `domicile region list`: each configured region store (one line per cell of a region with several,
 * named `region/cell`), its driver, jurisdiction and whether it answers with the right stamp.
 */
import { runGroup, type Command } from '../cli-args.js'
import { formatTable, printJson, println } from '../cli-output.js'
import { withDomicile } from '../open-domicile.js'

const list: Command = {
  spec: { synopsis: 'region list', summary: 'list configured regions (each cell of a region with several as region/cell): name, driver, jurisdiction, reachable' },
  async run(p) {
    const regions = await withDomicile(p, (d) => d.listRegions())
    if (p.json) {
      printJson(regions)
      return 0
    }
    println(formatTable(['REGION', 'DRIVER', 'JURISDICTION', 'REACHABLE'],
      regions.map((r) => [r.name, r.driver, r.jurisdiction ?? '-', r.reachable ? 'yes' : `no (${r.code ?? 'error'})`])))
    return 0
  },
}

export function runRegionCommand(argv: readonly string[]): Promise<number> {
  return runGroup('region', { list }, argv)
}
