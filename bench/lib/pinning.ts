/**
 * CPU pinning for client/server benchmarks on a small VM.
 *
 * On the 2-vCPU machine these benchmarks run on, a round trip over loopback takes one of two
 * times depending on where the scheduler puts the two processes: ~50 µs when the client and the
 * PostgreSQL backend hand over on the same CPU, ~120 µs when the wake-up crosses CPUs (an
 * interrupt to an idle vCPU). Which one happens changes with the client's CPU time between
 * statements, so an arm that does a little more work can land in the other mode and the ratio
 * jumps (we saw 0.7x and 1.25x for the same code). Pinning the client's main thread to one CPU and
 * the serving backends to the other makes every round trip cross CPUs, as between an application
 * server and its database.
 *
 * `BENCH_PIN=0` turns it off. It needs `taskset` (util-linux) and at least 2 CPUs; otherwise it
 * reports why it did nothing.
 */
import { spawnSync } from 'node:child_process'
import { availableParallelism } from 'node:os'

export interface Pinning {
  readonly applied: boolean
  readonly detail: string
}

function taskset(cpu: number, pid: number): boolean {
  return spawnSync('taskset', ['-p', '-c', String(cpu), String(pid)], { encoding: 'utf8' }).status === 0
}

/**
 * Pins this process's main thread to CPU 0 and the PostgreSQL backends serving the measured
 * connections to CPU 1. Everything else (Node's helper threads, other PostgreSQL processes) stays
 * free to run on either CPU, so the pinning adds no contention of its own.
 */
export function pinClientAndServers(backendPids: readonly number[]): Pinning {
  if (process.env.BENCH_PIN === '0') return { applied: false, detail: 'BENCH_PIN=0' }
  if (availableParallelism() < 2) return { applied: false, detail: 'fewer than 2 CPUs' }
  if (spawnSync('taskset', ['-V']).status !== 0) return { applied: false, detail: 'taskset not found' }
  let ok = taskset(0, process.pid)
  for (const pid of backendPids) ok = taskset(1, pid) && ok
  return ok
    ? { applied: true, detail: `Node main thread on CPU 0; the serving PostgreSQL backends (${backendPids.join(', ')}) on CPU 1; other threads and processes unpinned` }
    : { applied: false, detail: 'taskset failed for some process' }
}
