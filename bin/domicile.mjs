#!/usr/bin/env node
// The `domicile` command. An installed package runs the compiled dist/ (npm pack builds it): the
// CLI bundle dist/cli-bundle/main.js (a few files instead of ~300 modules), else tsc's
// dist/cli/main.js. In a checkout (src/ next to bin/) it runs the TypeScript sources, compiled on
// demand into a cache under node_modules/.cache/domicile/ (scripts/compile-sources.mjs, esbuild: a
// devDependency), so `npm install` is the only setup step and a command pays for no TypeScript loader.
import { existsSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'

const root = new URL('../', import.meta.url)
let entry = new URL('dist/cli-bundle/main.js', root)
if (!existsSync(entry)) entry = new URL('dist/cli/main.js', root)
let main
if (existsSync(new URL('src/cli/main.ts', root))) {
  let compiledPackage
  try {
    ;({ compiledPackage } = await import(new URL('scripts/compile-sources.mjs', root).href))
  } catch (e) {
    if (e?.code !== 'ERR_MODULE_NOT_FOUND') throw e
  }
  try {
    if (compiledPackage === undefined) throw new Error('scripts/compile-sources.mjs is missing')
    entry = pathToFileURL(`${await compiledPackage(fileURLToPath(root))}/dist/cli-bundle/main.js`)
  } catch (e) {
    // esbuild missing, or a source file being edited does not compile: run the sources through
    // tsx's loader instead (slower; a file this command imports still has to compile).
    let register
    try {
      ;({ register } = await import('tsx/esm/api'))
    } catch {
      process.stderr.write('domicile: this checkout is missing its development dependencies; run "npm install" in it.\n')
      process.exit(1)
    }
    if (process.env.DOMICILE_DEBUG) process.stderr.write(`domicile: compiled cache unavailable (${String(e?.message ?? e).split('\n')[0]}); running the sources through tsx\n`)
    register()
    ;({ main } = await import(new URL('src/cli/main.ts', root).href))
  }
}
main ??= (await import(entry.href)).main
process.exitCode = await main(process.argv.slice(2))
