/**
 * The demos' narrator: numbered sections, lines, tables and checks printed as they happen, or
 * collected for a JSON summary (`--json`). A demo exits 0 only if every check passed.
 */
import { formatTable, println } from '../cli-output.js'

export interface Check {
  readonly name: string
  readonly ok: boolean
  readonly expected: string
  readonly got: string
}

/** Output that is either human (printed as it goes) or a JSON summary at the end. */
export class Narrator {
  readonly #json: boolean
  readonly checks: Check[] = []
  #section = 0

  constructor(json: boolean) {
    this.#json = json
  }

  heading(title: string): void {
    if (this.#json) return
    this.#section++
    println('')
    println(`${this.#section}. ${title}`)
  }

  line(text = ''): void {
    if (!this.#json) println(text === '' ? '' : `   ${text}`)
  }

  table(headers: readonly string[], rows: readonly (readonly string[])[]): void {
    if (!this.#json) println(formatTable(headers, rows, '   '))
  }

  check(name: string, expected: string, got: string, ok = expected === got): boolean {
    this.checks.push({ name, ok, expected, got })
    this.line(`${ok ? '[ok]  ' : '[FAIL]'} ${name}: ${ok ? got : `expected ${expected}, got ${got}`}`)
    return ok
  }
}

