import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isOneShotCommand } from '../../../src/cli/one-shot-runtime.js'

test('short commands run WebAssembly on baseline code; the service, the demo and row-wide operations keep tiering', () => {
  for (const argv of [['rows', 'get', 'acme', 'customers', 'c1'], ['tenant', 'list'], ['key', 'revoke', 'acme'], ['migrate'], ['report', 'acme'], []]) {
    assert.equal(isOneShotCommand(argv), true, argv.join(' '))
  }
  for (const argv of [['serve'], ['demo'], ['keyproxy', 'serve'], ['migrate', 'encrypt', 'customers.email'], ['tenant', 'move', 'acme', '--to', 'eu'], ['key', 'rotate-data', 'acme']]) {
    assert.equal(isOneShotCommand(argv), false, argv.join(' '))
  }
})
