/**
 * Clean-up of everything a benchmark run starts (clusters, proxies, tokens, temp dirs), in reverse
 * order, also on errors and Ctrl-C.
 */
const cleanups: Array<() => Promise<unknown> | unknown> = []

/** Registers a clean-up step; steps run last-in, first-out. */
export function onCleanup(step: () => Promise<unknown> | unknown): void {
  cleanups.push(step)
}

export async function cleanupAll(): Promise<void> {
  while (cleanups.length > 0) {
    const c = cleanups.pop()!
    try {
      await c()
    } catch (e) {
      console.error(`cleanup failed: ${(e as Error).message}`)
    }
  }
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    void cleanupAll().finally(() => process.exit(130))
  })
}
