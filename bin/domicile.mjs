#!/usr/bin/env node
// The `domicile` command. Runs the TypeScript sources through tsx's loader so that
// `npm install` is the only setup step.
import { register } from 'tsx/esm/api'
register()
const { main } = await import('../src/cli/main.ts')
process.exitCode = await main(process.argv.slice(2))
