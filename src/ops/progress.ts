/**
 * Progress of a long operation, reported by the library and rendered by the caller: the CLI draws a
 * bar with rate and ETA on a terminal and plain lines otherwise (src/cli/progress-output.ts), a
 * service may export it as metrics, tests may ignore it.
 */

export interface ProgressEvent {
  /** The operation's state machine position, e.g. 'copy', 'catch-up', 'encrypt'. */
  readonly state: string
  /** Units done so far in this state (rows, keys, tenants). */
  readonly done: number
  /** Units expected in this state, when known. */
  readonly total?: number
  /** What a unit is: 'rows', 'keys', 'tenants'. */
  readonly unit: string
}

export interface Progress {
  /** Called as the operation advances; must not throw and should be cheap. */
  update(event: ProgressEvent): void
  /** A note worth a line of its own (a state change, a measured write freeze). */
  note(message: string): void
}

export const silentProgress: Progress = Object.freeze({ update() {}, note() {} })
