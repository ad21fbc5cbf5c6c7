/**
 * The code-block extractor of the docs test: fences, languages, and the docs-test markers (a block
 * is only ever left out by an explicit, named marker with a reason).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { extractBlocks, parseMarker } from '../../support/doc-blocks.js'

const DOC = [
  '# Title',
  '',
  '<!-- docs-test: skip: needs the reader\'s own servers -->',
  '```sh',
  'npm test',
  '```',
  '',
  'Text.',
  '',
  '```js',
  "import { createDomicile } from 'domicile'",
  '```',
  '',
  '<!-- docs-test: postgres db.eu.internal db.us.internal -->',
  '',
  '```sh',
  'psql postgres://u@db.eu.internal/x',
  '```',
  '',
  '<!-- docs-test: file conf/domicile.config.json -->',
  '```json',
  '{}',
  '```',
  '',
  '```',
  'a diagram',
  '```',
  '',
  '- list item:',
  '  ```ts',
  '  const x: number = 1',
  '  ```',
].join('\n')

test('extractBlocks returns every fenced block in order with its language, code, line and marker', () => {
  const blocks = extractBlocks('doc.md', DOC)
  assert.deepEqual(blocks.map((b) => [b.line, b.lang]), [[4, 'sh'], [10, 'js'], [16, 'sh'], [21, 'json'], [25, ''], [30, 'ts']])
  assert.deepEqual(blocks[0]!.marker, { kind: 'skip', reason: 'needs the reader\'s own servers' })
  assert.equal(blocks[1]!.marker, undefined, 'a block without a marker right before it runs')
  assert.equal(blocks[1]!.code, "import { createDomicile } from 'domicile'\n")
  assert.deepEqual(blocks[2]!.marker, { kind: 'postgres', hosts: ['db.eu.internal', 'db.us.internal'] })
  assert.deepEqual(blocks[3]!.marker, { kind: 'file', path: 'conf/domicile.config.json' })
  assert.equal(blocks[5]!.code, 'const x: number = 1\n', 'an indented fence loses its indent')
})

test('Precondition: a skip marker names its reason; unknown markers and escaping file paths are refused', () => {
  assert.throws(() => parseMarker('skip', 'doc.md:1'), /unknown docs-test marker/)
  assert.throws(() => parseMarker('ignore this', 'doc.md:1'), /unknown docs-test marker/)
  assert.throws(() => parseMarker('file ../outside.json', 'doc.md:1'), /inside the document's directory/)
  assert.throws(() => parseMarker('file /etc/passwd', 'doc.md:1'), /inside the document's directory/)
  assert.deepEqual(parseMarker('postgres', 'doc.md:1'), { kind: 'postgres', hosts: [] })
})

test('an unclosed fence is an error, not a silently dropped block', () => {
  assert.throws(() => extractBlocks('doc.md', '```sh\necho hi\n'), /doc\.md:1: code block is not closed/)
})
