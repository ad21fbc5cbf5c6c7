/**
 * A small connection pool for the PostgreSQL driver. A checkout of an idle connection is
 * synchronous (no promise, no timer), which keeps the data layer's per-request overhead low;
 * creating a connection and waiting for one are bounded by the connect timeout. A connection that
 * reports an error, or that a session marks broken, is closed and never handed out again.
 */

/** The subset of a `pg.Client` the pool needs. */
export interface PooledClient {
  connect(): Promise<void>
  end(): Promise<void>
  on(event: 'error' | 'end', cb: (e?: Error) => void): void
  /** pg's connection and its socket, to let an idle connection not keep the process alive. */
  readonly connection?: { readonly stream?: { ref?(): unknown; unref?(): unknown } }
}

/**
 * An idle pooled connection does not keep the process alive (as pg-pool's allowExitOnIdle): an
 * application that forgets `close()` still exits when its work is done. In use, it does.
 */
export function holdProcess(c: PooledClient, hold: boolean): void {
  const stream = c.connection?.stream
  if (hold) stream?.ref?.()
  else stream?.unref?.()
}

interface Waiter<C> {
  resolve(c: C): void
  reject(e: Error): void
  timer: NodeJS.Timeout
}

export class ClientPool<C extends PooledClient> {
  readonly #make: () => C
  readonly #max: number
  readonly #timeoutMs: number
  readonly #waitMs: number
  readonly #idle: C[] = []
  readonly #dead = new WeakSet<C>()
  readonly #waiters: Array<Waiter<C>> = []
  #size = 0
  #ended = false

  /** `waitTimeoutMs`: how long acquire() waits for a busy pool's next free connection (default: the connect timeout). */
  constructor(make: () => C, opts: { max: number; connectTimeoutMs: number; waitTimeoutMs?: number }) {
    this.#make = make
    this.#max = opts.max
    this.#timeoutMs = opts.connectTimeoutMs
    this.#waitMs = opts.waitTimeoutMs ?? opts.connectTimeoutMs
  }

  /** An idle connection, or undefined (then call acquire()). */
  tryAcquire(): C | undefined {
    const c = this.#idle.pop()
    if (c) holdProcess(c, true)
    return c
  }

  /** A connection: idle, new (if under the limit), or the next one released within the timeout. */
  acquire(): Promise<C> {
    if (this.#ended) return Promise.reject(new Error('pool ended'))
    const idle = this.#idle.pop()
    if (idle) {
      holdProcess(idle, true)
      return Promise.resolve(idle)
    }
    if (this.#size < this.#max) return this.#open()
    return new Promise<C>((resolve, reject) => {
      const w: Waiter<C> = {
        resolve,
        reject,
        timer: setTimeout(() => {
          const i = this.#waiters.indexOf(w)
          if (i >= 0) this.#waiters.splice(i, 1)
          reject(new Error('timeout exceeded when trying to connect'))
        }, this.#waitMs),
      }
      this.#waiters.push(w)
    })
  }

  async #open(): Promise<C> {
    this.#size++
    const c = this.#make()
    const gone = () => this.#discard(c)
    c.on('error', gone)
    c.on('end', gone)
    let timer: NodeJS.Timeout | undefined
    try {
      await Promise.race([
        c.connect(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('connection timeout')), this.#timeoutMs)
        }),
      ])
      return c
    } catch (e) {
      this.#discard(c)
      throw e
    } finally {
      clearTimeout(timer)
    }
  }

  /** Returns a connection; `destroy` closes it instead (its connection is broken). */
  release(c: C, destroy = false): void {
    if (destroy || this.#ended || this.#dead.has(c)) {
      this.#discard(c)
      return
    }
    const w = this.#waiters.shift()
    if (w) {
      clearTimeout(w.timer)
      w.resolve(c)
      return
    }
    holdProcess(c, false)
    this.#idle.push(c)
  }

  #discard(c: C): void {
    if (this.#dead.has(c)) return
    this.#dead.add(c)
    this.#size--
    const i = this.#idle.indexOf(c)
    if (i >= 0) this.#idle.splice(i, 1)
    holdProcess(c, true) // closing is work in progress, even for an idle (unref'd) connection
    void c.end().catch(() => undefined)
    // A waiter can take the freed slot.
    const w = this.#waiters.shift()
    if (w) {
      clearTimeout(w.timer)
      this.#open().then(w.resolve, w.reject)
    }
  }

  async end(): Promise<void> {
    this.#ended = true
    for (const w of this.#waiters.splice(0)) {
      clearTimeout(w.timer)
      w.reject(new Error('pool ended'))
    }
    for (const c of this.#idle.splice(0)) this.#discard(c)
  }
}
