/**
 * Test support: the fenced code blocks of a Markdown document, with the `docs-test` marker (an HTML
 * comment on the last non-blank line before the fence) that says how the docs test treats a block.
 *
 * Markers (the only ways for a block to be treated other than by its language):
 *   <!-- docs-test: skip: REASON -->          not run; the reason is required and reported
 *   <!-- docs-test: file PATH -->             written to PATH in the document's directory, not run
 *   <!-- docs-test: postgres [HOST ...] -->   run against the test's PostgreSQL cluster: each HOST
 *                                              in the block becomes 127.0.0.1:PORT; an sql block runs
 *                                              through psql as the cluster's superuser
 *
 * @example
 * const blocks = extractBlocks('README.md', readFileSync('README.md', 'utf8'))
 * blocks.filter((b) => b.lang === 'sh')
 */

export type DocMarker =
  | { readonly kind: 'skip'; readonly reason: string }
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'postgres'; readonly hosts: readonly string[] }

export interface DocBlock {
  readonly doc: string
  /** 1-based line of the opening fence. */
  readonly line: number
  /** The info string's first word, lower-cased ('' for an untagged block). */
  readonly lang: string
  readonly code: string
  readonly marker: DocMarker | undefined
}

const MARKER = /^<!--\s*docs-test:\s*(.*?)\s*-->$/

/** Parses a marker's text (after "docs-test:"); throws with the document line on a malformed one. */
export function parseMarker(text: string, where: string): DocMarker {
  const skip = /^skip\s*[:—-]\s*(\S.*)$/.exec(text)
  if (skip) return { kind: 'skip', reason: skip[1]! }
  const file = /^file\s+(\S+)$/.exec(text)
  if (file) {
    if (file[1]!.startsWith('/') || file[1]!.split('/').includes('..')) throw new Error(`${where}: docs-test file PATH must stay inside the document's directory`)
    return { kind: 'file', path: file[1]! }
  }
  const pg = /^postgres((?:\s+\S+)*)$/.exec(text)
  if (pg) return { kind: 'postgres', hosts: pg[1]!.trim() === '' ? [] : pg[1]!.trim().split(/\s+/) }
  throw new Error(`${where}: unknown docs-test marker "${text}" (expected "skip: REASON", "file PATH" or "postgres HOST ...")`)
}

/** The fenced code blocks of a Markdown document, in order, with their markers. */
export function extractBlocks(doc: string, markdown: string): DocBlock[] {
  const lines = markdown.split('\n')
  const out: DocBlock[] = []
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([^\s`]*)/.exec(lines[i]!)
    if (!open) continue
    const [, indent, fence, info] = open as unknown as [string, string, string, string]
    let end = i + 1
    while (end < lines.length && !(lines[end]!.trimStart().startsWith(fence) && lines[end]!.trim().replace(/[`~]/g, '') === '')) end++
    if (end >= lines.length) throw new Error(`${doc}:${i + 1}: code block is not closed`)
    const code = lines.slice(i + 1, end).map((l) => (l.startsWith(indent) ? l.slice(indent.length) : l)).join('\n') + '\n'
    let prev = i - 1
    while (prev >= 0 && lines[prev]!.trim() === '') prev--
    const m = prev >= 0 ? MARKER.exec(lines[prev]!.trim()) : null
    out.push({ doc, line: i + 1, lang: info.toLowerCase(), code, marker: m ? parseMarker(m[1]!, `${doc}:${prev + 1}`) : undefined })
    i = end
  }
  return out
}

/** Languages run as shell scripts, JavaScript modules, TypeScript modules; parsed; prose. */
export const SHELL_LANGS: ReadonlySet<string> = new Set(['sh', 'bash', 'shell', 'console'])
export const JS_LANGS: ReadonlySet<string> = new Set(['js', 'javascript', 'mjs'])
export const TS_LANGS: ReadonlySet<string> = new Set(['ts', 'typescript', 'mts'])
/** Untagged and text blocks are diagrams, layouts and output: not code, never run. */
export const PROSE_LANGS: ReadonlySet<string> = new Set(['', 'text', 'txt', 'plain'])
