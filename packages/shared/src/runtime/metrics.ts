import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import { VERSION } from '../version.ts'

/** Seconds, for what takes milliseconds to a few seconds: a store commit, an answer over the bus. */
const FAST = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
/** Seconds, for what takes from a moment to hours: a node's run, a job. */
const SLOW = [0.01, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600]

/**
 * Every metric an apiary daemon exports, by key: each daemon picks the ones it measures
 * (`createMetrics`), so a name, its help and its labels are written once. Label values are
 * states, regions, kinds and outcomes, a few of each: never a job's or a node's id, which
 * would make a series per job and grow without bound.
 */
export const METRICS = {
  jobsFinished: { type: 'counter', name: 'apiary_jobs_finished_total', help: 'Jobs that ended, by their final state (queen: the leader that ended them).', labels: ['state'] },
  jobDuration: { type: 'histogram', name: 'apiary_job_duration_seconds', help: 'From submission to the end, of the jobs that ended, by final state.', labels: ['state'], buckets: SLOW },
  nodesFinished: {
    type: 'counter',
    name: 'apiary_nodes_finished_total',
    help: 'Nodes that reached a final state, by state: of every job (queen), of the shares this hive ran, of the tasks this worker ran.',
    labels: ['state'],
  },
  nodeDuration: { type: 'histogram', name: 'apiary_node_duration_seconds', help: 'How long a node’s task ran, as its worker measured, by final state.', labels: ['state'], buckets: SLOW },
  dispatchLatency: {
    type: 'histogram',
    name: 'apiary_dispatch_latency_seconds',
    help: 'From offering a region’s share to its hives until one answered, by outcome (accepted, refused, failed).',
    labels: ['outcome'],
    buckets: FAST,
  },
  deliveryLatency: {
    type: 'histogram',
    name: 'apiary_delivery_latency_seconds',
    help: 'From sending a task to a worker until it answered, by outcome (accepted, already, refused, timeout, no-responders, failed).',
    labels: ['outcome'],
    buckets: FAST,
  },
  eventsIngested: { type: 'counter', name: 'apiary_events_ingested_total', help: 'Events taken from the events stream by the leading queen.', labels: [] },
  storeCommit: { type: 'histogram', name: 'apiary_store_commit_seconds', help: 'One group commit of the job log into the queen’s index.', labels: [], buckets: FAST },
  sseClients: { type: 'gauge', name: 'apiary_sse_clients', help: 'Event streams (SSE) open on this queen.', labels: [] },
  busConnected: { type: 'gauge', name: 'apiary_bus_connected', help: '1 while the NATS connection is up.', labels: [] },
  busReconnects: { type: 'counter', name: 'apiary_bus_reconnects_total', help: 'Times the NATS connection came back after it was lost.', labels: [] },
  tasksInFlight: { type: 'gauge', name: 'apiary_tasks_in_flight', help: 'Tasks running now (worker), or dispatched and awaiting their result (hive).', labels: [] },
  sharesHeld: { type: 'gauge', name: 'apiary_shares_held', help: 'Job shares this hive rolls out now.', labels: [] },
  tasksRefused: {
    type: 'counter',
    name: 'apiary_tasks_refused_total',
    help: 'Tasks this worker refused, by reason (draining, capacity, unsigned, admission, unclaimed).',
    labels: ['reason'],
  },
  sshConnections: { type: 'gauge', name: 'apiary_ssh_pool_connections', help: 'SSH connections the pool holds open.', labels: [] },
  sshOpenBreakers: { type: 'gauge', name: 'apiary_ssh_open_breakers', help: 'Hosts whose circuit breaker is open or half-open.', labels: [] },
  draining: { type: 'gauge', name: 'apiary_draining', help: '1 once the daemon was told to stop (SIGTERM) and drains.', labels: [] },
} as const

export type MetricKey = keyof typeof METRICS
type Def<K extends MetricKey> = (typeof METRICS)[K]
type LabelOf<K extends MetricKey> = Def<K>['labels'][number]

/** The prom-client metric a key of `METRICS` makes. */
export type MetricOf<K extends MetricKey> = Def<K>['type'] extends 'counter'
  ? Counter<LabelOf<K>>
  : Def<K>['type'] extends 'gauge'
    ? Gauge<LabelOf<K>>
    : Histogram<LabelOf<K>>

/** A daemon's metrics: the registry it serves and the metrics it picked, and values read when scraped. */
export interface DaemonMetrics<K extends MetricKey> {
  readonly registry: Registry
  readonly m: { readonly [P in K]: MetricOf<P> }
  /** Runs `read` before every scrape: gauges of state held elsewhere (tasks running, pool size) are set from it. */
  onScrape(read: () => void): void
  /** The text exposition format, and its content type. */
  render(): Promise<{ body: string; contentType: string }>
}

/**
 * A daemon's registry with the metrics of `keys`, `apiary_build_info{role,version}`, and with
 * `process: true` the process's own (CPU, memory, event-loop delay, as `apiary_process_*`);
 * off in tests and the embedded cluster, where several daemons share one process.
 *
 * @example
 * const metrics = createMetrics('hive', ['nodesFinished', 'tasksInFlight'], { process: true })
 * metrics.m.nodesFinished.inc({ state: 'ok' })
 */
export function createMetrics<K extends MetricKey>(role: string, keys: readonly K[], opts: { process?: boolean } = {}): DaemonMetrics<K> {
  const registry = new Registry()
  const m = {} as Record<K, unknown>
  for (const k of keys) {
    const d: (typeof METRICS)[MetricKey] = METRICS[k]
    const base = { name: d.name, help: d.help, labelNames: [...d.labels] as string[], registers: [registry] }
    m[k] = d.type === 'counter' ? new Counter(base) : d.type === 'gauge' ? new Gauge(base) : new Histogram({ ...base, buckets: [...d.buckets] })
  }
  new Gauge({ name: 'apiary_build_info', help: 'Always 1: the daemon’s role and version.', labelNames: ['role', 'version'], registers: [registry] }).set({ role, version: VERSION }, 1)
  if (opts.process) collectDefaultMetrics({ register: registry, prefix: 'apiary_' })
  const readers: Array<() => void> = []
  return {
    registry,
    m: m as { [P in K]: MetricOf<P> },
    onScrape: (read) => void readers.push(read),
    async render() {
      for (const read of readers) read()
      return { body: await registry.metrics(), contentType: registry.contentType }
    },
  }
}

/** Seconds since `t0` (a `performance.now()`), for a histogram. */
export function secondsSince(t0: number): number {
  return (performance.now() - t0) / 1000
}

/**
 * Whether the NATS connection is up, and the metrics of it: give `onStatus` to `createNatsBus`.
 * @example const link = busLink(metrics); const bus = await createNatsBus({ ..., onStatus: link.onStatus })
 */
export function busLink(metrics?: DaemonMetrics<'busConnected' | 'busReconnects'>): { onStatus(status: 'disconnect' | 'reconnect'): void; connected(): boolean } {
  let up = true
  metrics?.m.busConnected.set(1)
  return {
    onStatus(status) {
      up = status === 'reconnect'
      metrics?.m.busConnected.set(up ? 1 : 0)
      if (status === 'reconnect') metrics?.m.busReconnects.inc()
    },
    connected: () => up,
  }
}
