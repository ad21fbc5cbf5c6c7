/**
 * The service's Prometheus metrics (prom-client), in a Registry of its own per service instance
 * (never prom-client's global one, so two services in a process do not share series).
 *
 * Recorded by the service per request: counts, errors by code, latency, by the tenant's home region.
 * Read at scrape time from the library (`collect()`), where the library exposes the figures:
 * data-key cache hits/misses/entries, key-provider unwrap calls/failures/latency, directory
 * staleness, tenants by key state. The library's counters are read structurally (see
 * `KeyStatsSource` below): a figure the library does not expose yet is left out, never invented.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { Domicile } from '../domicile.js'
import { internalsOf } from '../domicile-internals.js'

/** Seconds; from a sub-millisecond cache hit to a slow cross-region call. */
const REQUEST_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/** Label for requests that do not belong to one tenant (admin API, health, console). */
export const NO_REGION = 'none'

/**
 * What the key layer exposes for scraping (requested hooks in src/keys and src/control-plane;
 * each is optional, so the service works before and after they exist).
 */
interface ProviderCallStats {
  readonly calls: number
  readonly failures: number
  readonly secondsSum: number
  /** Upper bounds (seconds) and cumulative counts, as a Prometheus histogram. */
  readonly buckets: ReadonlyArray<readonly [le: number, count: number]>
}
interface KeyStatsSource {
  /** Keyring: the data-key cache's counters. */
  cacheStats?(): { readonly hits: number; readonly misses: number; readonly entries: number }
}
interface ProviderStatsSource {
  /** ProviderRegistry: the providers created so far (no provider is created for a scrape). */
  ready?(): ReadonlyArray<{ readonly runtime: { readonly name: string; readonly kind: string; callStats?(op: 'unwrap'): ProviderCallStats } }>
}
interface DirectoryStatsSource {
  /** TenantDirectory: ms since the change feed was last read successfully. */
  readonly syncAgeMs?: number
}

export interface ServiceMetricsOptions {
  /** Node process metrics (CPU, memory, event loop lag) in the same registry. Default true. */
  readonly defaultMetrics?: boolean
}

export class ServiceMetrics {
  readonly registry = new Registry()
  readonly requests: Counter<'region' | 'route' | 'method' | 'status'>
  readonly errors: Counter<'region' | 'route' | 'code'>
  readonly latency: Histogram<'region' | 'route' | 'method'>
  readonly revocations: Counter<'action'>
  readonly #d: Domicile

  constructor(d: Domicile, opts: ServiceMetricsOptions = {}) {
    this.#d = d
    const registers = [this.registry]
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'domicile_service_' })
    this.requests = new Counter({ name: 'domicile_http_requests_total', help: 'HTTP requests answered, by the tenant\'s home region (none for admin/health), route, method and status.', labelNames: ['region', 'route', 'method', 'status'], registers })
    this.errors = new Counter({ name: 'domicile_http_errors_total', help: 'HTTP requests answered with an error, by region, route and stable error code.', labelNames: ['region', 'route', 'code'], registers })
    this.latency = new Histogram({ name: 'domicile_http_request_duration_seconds', help: 'Time to answer an HTTP request, by region, route and method.', labelNames: ['region', 'route', 'method'], buckets: REQUEST_BUCKETS, registers })
    this.revocations = new Counter({ name: 'domicile_key_revocations_total', help: 'Kill-switch actions (revoke, restore) made through this service\'s admin API.', labelNames: ['action'], registers })
    this.#keyMetrics(registers)
  }

  #keyMetrics(registers: Registry[]): void {
    const parts = internalsOf(this.#d)
    const keyring = parts.keyring as KeyStatsSource | undefined
    const cache = () => keyring?.cacheStats?.()
    const counterFrom = (name: string, help: string, read: () => number | undefined) =>
      new Counter({
        name, help, registers,
        collect(this: Counter) {
          const v = read()
          this.reset()
          if (v !== undefined) this.inc(v)
        },
      })
    counterFrom('domicile_data_key_cache_hits_total', 'Data-key cache hits (a key used without a provider call).', () => cache()?.hits)
    counterFrom('domicile_data_key_cache_misses_total', 'Data-key cache misses (a key loaded through its provider).', () => cache()?.misses)
    new Gauge({
      name: 'domicile_data_key_cache_entries', help: 'Data keys held in the cache now.', registers,
      collect(this: Gauge) {
        const s = cache()
        this.reset()
        if (s) this.set(s.entries)
      },
    })

    const providers = parts.providers as ProviderStatsSource | undefined
    const ready = () => (providers?.ready?.() ?? []).flatMap((p) => {
      const s = p.runtime.callStats?.('unwrap')
      return s ? [{ provider: p.runtime.name, kind: p.runtime.kind, s }] : []
    })
    const providerCounter = (name: string, help: string, pick: (s: ProviderCallStats) => number) =>
      new Counter({
        name, help, labelNames: ['provider', 'kind'], registers,
        collect(this: Counter<'provider' | 'kind'>) {
          this.reset()
          for (const r of ready()) this.inc({ provider: r.provider, kind: r.kind }, pick(r.s))
        },
      })
    providerCounter('domicile_key_unwrap_calls_total', 'Data-key unwrap calls to a key provider.', (s) => s.calls)
    providerCounter('domicile_key_unwrap_failures_total', 'Data-key unwrap calls that failed (timeouts, outages, refusals).', (s) => s.failures)
    // A histogram whose buckets the key layer counts: registered as a custom metric object.
    const unwrapName = 'domicile_key_unwrap_duration_seconds'
    this.registry.registerMetric({
      name: unwrapName,
      help: 'Latency of data-key unwrap calls per key provider.',
      type: 'histogram',
      get: async () => ({
        name: unwrapName, help: 'Latency of data-key unwrap calls per key provider.', type: 'histogram', aggregator: 'sum',
        values: ready().flatMap(({ provider, kind, s }) => [
          ...s.buckets.map(([le, count]) => ({ metricName: `${unwrapName}_bucket`, labels: { provider, kind, le }, value: count })),
          { metricName: `${unwrapName}_bucket`, labels: { provider, kind, le: '+Inf' }, value: s.calls },
          { metricName: `${unwrapName}_sum`, labels: { provider, kind }, value: s.secondsSum },
          { metricName: `${unwrapName}_count`, labels: { provider, kind }, value: s.calls },
        ]),
      }),
    } as unknown as Parameters<Registry['registerMetric']>[0])

    const directory = parts.directory as DirectoryStatsSource
    new Gauge({
      name: 'domicile_directory_staleness_seconds', help: 'Seconds since the tenant directory\'s change feed (revocations included) was last read.', registers,
      collect(this: Gauge) {
        this.reset()
        const age = directory.syncAgeMs
        if (typeof age === 'number') this.set(age / 1000)
      },
    })
    const d = this.#d
    new Gauge({
      name: 'domicile_tenants', help: 'Tenants in the directory by key state (revoked = kill switch on).', labelNames: ['key_state'], registers,
      async collect(this: Gauge<'key_state'>) {
        this.reset()
        const list = await withDeadline(d.listTenants(), 1000).catch(() => undefined)
        if (!list) return
        const by = new Map<string, number>()
        for (const t of list) by.set(t.keyState, (by.get(t.keyState) ?? 0) + 1)
        for (const [state, n] of by) this.set({ key_state: state }, n)
      },
    })
  }

  /** Records one answered request. */
  observe(region: string, route: string, method: string, status: number, seconds: number, code: string | undefined): void {
    this.requests.inc({ region, route, method, status: String(status) })
    this.latency.observe({ region, route, method }, seconds)
    if (code !== undefined) this.errors.inc({ region, route, code })
  }

  text(): Promise<string> {
    return this.registry.metrics()
  }

  get contentType(): string {
    return this.registry.contentType
  }

  close(): void {
    this.registry.clear()
  }
}

function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([p, new Promise<T>((_r, reject) => { timer = setTimeout(() => reject(new Error('deadline')), ms) })])
    .finally(() => clearTimeout(timer))
}
