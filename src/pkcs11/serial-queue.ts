/**
 * A promise-queue mutex: tasks run one at a time, in the order they were queued.
 *
 * A PKCS#11 session carries one active operation (C_EncryptInit ... C_Encrypt), so every use of a
 * session goes through one of these; async callers can then never interleave two operations.
 */

export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve()

  /**
   * Run `task` after every task queued before it has settled. A failing task does not block the
   * queue.
   *
   * @example
   * const q = new SerialQueue()
   * const [a, b] = await Promise.all([q.run(() => 1), q.run(async () => 2)])
   */
  run<T>(task: () => T | Promise<T>): Promise<T> {
    const result = this.#tail.then(task)
    this.#tail = result.then(noop, noop)
    return result
  }
}

function noop(): void {}
