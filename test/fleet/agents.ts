/**
 * The agent fleet simulator: thousands of cheap simulated agent nodes on a few NATS
 * connections, speaking the real wire contract (the `Bus` of @apiary/shared, zod-validated
 * tasks, the real Ack, Heartbeat and WireEvent shapes) so the queen and the hives cannot tell
 * them from real agent workers — except that nothing is ever executed.
 *
 * Per node: a subscription to `apiary.node.<id>.tasks`. Per connection: one control
 * subscription (cancel) and one heartbeat timer that spreads its nodes' heartbeats over the
 * interval. Which nodes fail is a pure function of the node's index and the fail rate
 * (`failsAt`), so tests and benchmarks know the failing set in advance.
 *
 * @example
 * const fleet = await startAgentFleet({ natsUrl, count: 500, region: 'sim', prefix: 'sim', failRate: 0.1, heartbeatMs: 1000 })
 * // … run jobs against targets 'sim-*' …
 * await fleet.close()
 */
import { createHash } from 'node:crypto'
import {
  type Ack,
  type Bus,
  type BusMessage,
  type BusSubscription,
  Control,
  decode,
  type Facts,
  type FinalState,
  finishedLine,
  type Heartbeat,
  type Logger,
  outputDigest,
  prefixLines,
  subjects,
  Task,
  VERSION,
  type WireEvent,
} from '@apiary/shared'
import { silentLogger } from '@apiary/shared/runtime'
import { createNatsBus } from '@apiary/shared/nats'
import type { ExecResult } from '@apiary/worker'

export interface AgentFleetOptions {
  natsUrl: string
  /** Simulated nodes in this fleet (this process's share when `first` is set). */
  count: number
  region: string
  /** Node ids are `<prefix>-00001`, `<prefix>-00002`, … (see `fleetNodeId`). */
  prefix: string
  /** Share of nodes whose exec tasks fail with exit 1, 0..1; which ones: `failsAt`. */
  failRate: number
  /** NATS connections the nodes share; default ceil(count / 1000). */
  connections?: number
  heartbeatMs: number
  labels?: Record<string, string>
  /** How long each exec or facts task "runs" before it finishes; default 0. */
  durationMs?: number
  /** Lines each exec task prints (one node.output chunk, the same on every node); default 1. */
  outputLines?: number
  /** Global index of this fleet's first node, when one fleet is split over processes; default 0. */
  first?: number
  log?: Logger
}

export interface FleetStats {
  /** Tasks accepted (duplicates excluded). */
  tasks: number
  /** Tasks refused (malformed, wrong node, shutting down). */
  refused: number
  /** Events published. */
  events: number
  heartbeats: number
  /** Tasks running now. */
  running: number
}

export interface AgentFleet {
  /** The node ids, in index order. */
  nodes: string[]
  /** The ids of the nodes whose exec tasks fail at the current fail rate. */
  failing(): string[]
  /** Changes the fail rate for tasks taken from now on. */
  setFailRate(rate: number): void
  /** Changes how many lines each exec task prints, for tasks taken from now on. */
  setOutputLines(lines: number): void
  stats(): FleetStats
  /** Stops taking tasks and heartbeating; running tasks end `cancelled`; connections drain. */
  close(): Promise<void>
}

/** The id of the node with global index `index` (0-based): `<prefix>-00001` for index 0. */
export function fleetNodeId(prefix: string, index: number): string {
  return `${prefix}-${String(index + 1).padStart(5, '0')}`
}

/**
 * Whether the node with global index `index` fails at `rate`: evenly spread, exactly
 * floor(n × rate) of the first n nodes (for rate 1/k: every k-th node, index k-1, 2k-1, …).
 */
export function failsAt(index: number, rate: number): boolean {
  if (rate <= 0) return false
  if (rate >= 1) return true
  // The epsilon keeps 0.57 × 100 = 56.99999999999999 from moving a failure one node on.
  const eps = 1e-9
  return Math.floor((index + 1) * rate + eps) > Math.floor(index * rate + eps)
}

/** How often a connection's heartbeat timer fires, at most; its nodes' beats are spread over the ticks. */
const HEARTBEAT_TICK_MS = 100
/** Jobs whose delivered tasks are remembered per connection, so a re-sent task does not run twice. */
const RECENT_JOBS = 64

const OK_LINE = 'simulated agent: done'
const FAIL_LINE = 'simulated agent: failing as told (exit 1)'

/** What an exec task prints: `lines` lines, on stdout when it succeeds, on stderr when it fails. */
function outputOf(fail: boolean, lines: number): { stdout: string; stderr: string } {
  const line = fail ? FAIL_LINE : OK_LINE
  const text = lines <= 0 ? '' : lines === 1 ? `${line}\n` : Array.from({ length: lines }, (_, k) => `${line} (line ${k + 1} of ${lines})\n`).join('')
  return fail ? { stdout: '', stderr: text } : { stdout: text, stderr: '' }
}

interface Running {
  task: Task
  t0: number
  timer: NodeJS.Timeout
}

interface Connection {
  bus: Bus
  /** Local indexes of the nodes on this connection. */
  members: number[]
  subs: BusSubscription[]
  /** jobId → local node index → what runs. */
  running: Map<string, Map<number, Running>>
  /** jobId → local node indexes that took a task of that job. */
  taken: Map<string, Set<number>>
  beat: { stop(): void }
}

/**
 * Starts `count` simulated agent nodes on `connections` NATS connections and resolves once
 * every task subscription is at the server and every node has sent its first heartbeat.
 */
export async function startAgentFleet(opts: AgentFleetOptions): Promise<AgentFleet> {
  if (!Number.isInteger(opts.count) || opts.count < 1) throw new Error(`count: ${opts.count} must be a whole number of at least 1`)
  checkRate(opts.failRate)
  const log = opts.log ?? silentLogger()
  const first = opts.first ?? 0
  const durationMs = opts.durationMs ?? 0
  const labels = opts.labels ?? {}
  const nConn = Math.min(opts.count, Math.max(1, opts.connections ?? Math.ceil(opts.count / 1000)))
  const ids = Array.from({ length: opts.count }, (_, i) => fleetNodeId(opts.prefix, first + i))
  const runningPerNode = new Uint16Array(opts.count)
  let failRate = opts.failRate
  let outputLines = checkLines(opts.outputLines ?? 1)
  let closing = false
  const stats = { tasks: 0, refused: 0, events: 0, heartbeats: 0 }

  const opened = await Promise.allSettled(
    Array.from({ length: nConn }, (_, c) => createNatsBus({ url: opts.natsUrl, name: `apiary-agent-fleet:${opts.prefix}:${first}:${c}`, log, insecure: true })),
  )
  const failed = opened.find((r) => r.status === 'rejected')
  if (failed) {
    // Close what did connect: one unreachable connection must not leak the others.
    await Promise.all(opened.map((r) => (r.status === 'fulfilled' ? r.value.close() : undefined)))
    throw failed.reason
  }
  const buses = opened.map((r) => (r as PromiseFulfilledResult<Bus>).value)

  const conns: Connection[] = buses.map((bus) => ({ bus, members: [], subs: [], running: new Map(), taken: new Map(), beat: { stop() {} } }))
  // Round-robin: tasks are dispatched in id order, so neighbours land on different connections.
  for (let i = 0; i < opts.count; i++) conns[i % nConn]!.members.push(i)

  const heartbeat = (i: number): Heartbeat => ({
    id: ids[i]!,
    role: 'worker',
    region: opts.region,
    labels,
    executor: 'local',
    status: 'healthy',
    running: runningPerNode[i]!,
    version: VERSION,
    intervalMs: opts.heartbeatMs,
    ts: Date.now(),
  })
  const hbSubjects = ids.map((id) => subjects.heartbeat('worker', opts.region, id))

  function publish(conn: Connection, ev: WireEvent & { node: string }): void {
    try {
      conn.bus.publish(subjects.nodeEvents(opts.region, ev.node, ev.jobId), ev)
      stats.events++
    } catch (err) {
      log.error({ err, jobId: ev.jobId, kind: ev.kind }, 'event not published')
    }
  }

  function beat(conn: Connection, i: number): void {
    try {
      conn.bus.publish(hbSubjects[i]!, heartbeat(i))
      stats.heartbeats++
    } catch (err) {
      log.warn({ err, node: ids[i] }, 'heartbeat not sent')
    }
  }

  function onTask(conn: Connection, i: number, msg: BusMessage): void {
    const id = ids[i]!
    const refuse = (reason: string) => {
      stats.refused++
      msg.respond({ accepted: false, by: id, reason } satisfies Ack)
    }
    const task = decode(Task, msg, log)
    if (!task) return refuse('malformed task')
    if (task.node !== id) return refuse(`task is for node ${task.node}`)
    if (closing) return refuse('worker is shutting down')
    msg.respond({ accepted: true, by: id } satisfies Ack)
    let taken = conn.taken.get(task.jobId)
    if (!taken) {
      conn.taken.set(task.jobId, (taken = new Set()))
      if (conn.taken.size > RECENT_JOBS) conn.taken.delete(conn.taken.keys().next().value!)
    }
    // A task delivered twice (a retried request) must not run twice.
    if (taken.has(i)) return
    taken.add(i)
    stats.tasks++
    run(conn, i, task)
  }

  function run(conn: Connection, i: number, task: Task): void {
    const id = ids[i]!
    const base = { jobId: task.jobId, node: id }
    const t0 = performance.now()
    if (task.operation.type === 'ping') {
      // As the real worker: a ping has no start and no output.
      setImmediate(() =>
        finish(conn, i, task, t0, { state: 'ok', exitCode: null, signal: null, cause: null, bytes: 0, truncated: false, digest: null, result: { pong: true } }),
      )
      return
    }
    publish(conn, { ...base, ts: Date.now(), kind: 'node.started', human: task.operation.type === 'facts' ? `${id}: collecting facts` : `${id}: started` })
    const fail = task.operation.type === 'exec' && failsAt(first + i, failRate)
    const lines = outputLines
    const deadlineFirst = durationMs >= task.timeoutMs
    const delay = deadlineFirst ? task.timeoutMs : durationMs
    const timer = setTimeout(() => {
      if (!untrack(conn, i, task.jobId)) return
      if (deadlineFirst) {
        finish(conn, i, task, t0, stoppedOutcome('timeout', 'execution deadline passed'))
        return
      }
      if (task.operation.type === 'facts') {
        finish(conn, i, task, t0, { state: 'ok', exitCode: null, signal: null, cause: null, bytes: 0, truncated: false, digest: null, result: simulatedFacts(id) })
        return
      }
      const kept = keptOutput(fail, lines, task.outputCapBytes)
      for (const stream of ['stdout', 'stderr'] as const) {
        if (kept[stream] === '') continue
        publish(conn, { ...base, ts: Date.now(), kind: 'node.output', stream, data: kept[stream], human: prefixLines(id, kept[stream]) })
      }
      finish(conn, i, task, t0, {
        state: fail ? 'failed' : 'ok',
        exitCode: fail ? 1 : 0,
        signal: null,
        cause: null,
        bytes: kept.bytes,
        truncated: kept.truncated,
        digest: kept.digest,
      })
    }, delay)
    let jobRuns = conn.running.get(task.jobId)
    if (!jobRuns) conn.running.set(task.jobId, (jobRuns = new Map()))
    jobRuns.set(i, { task, t0, timer })
    runningPerNode[i]!++
  }

  /** Forgets a running task; false if it was not running (already stopped). */
  function untrack(conn: Connection, i: number, jobId: string): boolean {
    const jobRuns = conn.running.get(jobId)
    const r = jobRuns?.get(i)
    if (!jobRuns || !r) return false
    clearTimeout(r.timer)
    jobRuns.delete(i)
    if (jobRuns.size === 0) conn.running.delete(jobId)
    runningPerNode[i]!--
    return true
  }

  function finish(conn: Connection, i: number, task: Task, t0: number, r: Outcome): void {
    const id = ids[i]!
    const durationMs = Math.round((performance.now() - t0) * 10) / 10
    publish(conn, {
      jobId: task.jobId,
      node: id,
      ts: Date.now(),
      kind: 'node.finished',
      ...r,
      durationMs,
      human: finishedLine(id, r, durationMs, task.outputCapBytes),
    })
  }

  /** Ends what runs of `jobId` (or of every job) on this connection as `state`. */
  function stopRunning(conn: Connection, jobId: string | undefined, state: 'cancelled' | 'timeout', cause: string): void {
    const jobs = jobId === undefined ? [...conn.running.keys()] : [jobId]
    for (const j of jobs) {
      const jobRuns = conn.running.get(j)
      if (!jobRuns) continue
      for (const [i, r] of [...jobRuns]) {
        if (!untrack(conn, i, j)) continue
        finish(conn, i, r.task, r.t0, stoppedOutcome(state, cause))
      }
    }
  }

  for (const conn of conns) {
    for (const i of conn.members) conn.subs.push(conn.bus.subscribe(subjects.task(opts.region, ids[i]!), (msg) => onTask(conn, i, msg)))
    conn.subs.push(
      conn.bus.subscribe(subjects.controlAll, (msg) => {
        const control = decode(Control, msg, log)
        // A halt only stops dispatching; what already runs finishes.
        if (control?.action !== 'cancel') return
        stopRunning(conn, control.jobId, control.outcome, control.reason)
      }),
    )
  }
  // Subscriptions must be at the server before anyone learns the nodes exist.
  await Promise.all(conns.map((c) => c.bus.flush()))
  for (const conn of conns) conn.beat = startBeats(conn, opts.heartbeatMs, (i) => beat(conn, i))
  await Promise.all(conns.map((c) => c.bus.flush()))

  let closed: Promise<void> | undefined
  return {
    nodes: ids,
    failing: () => ids.filter((_, i) => failsAt(first + i, failRate)),
    setFailRate(rate) {
      checkRate(rate)
      failRate = rate
    },
    setOutputLines(lines) {
      outputLines = checkLines(lines)
    },
    stats: () => ({ ...stats, running: runningPerNode.reduce((s, n) => s + n, 0) }),
    close() {
      closed ??= (async () => {
        closing = true
        for (const conn of conns) {
          conn.beat.stop()
          for (const s of conn.subs) s.unsubscribe()
          stopRunning(conn, undefined, 'cancelled', 'worker shutting down')
        }
        // close() drains: what was published reaches the server first.
        await Promise.all(conns.map((c) => c.bus.close()))
      })()
      return closed
    },
  }
}

function checkLines(lines: number): number {
  if (!Number.isInteger(lines) || lines < 0 || lines > 10_000) throw new Error(`outputLines: ${lines} must be a whole number from 0 to 10000`)
  return lines
}

function checkRate(rate: number): void {
  if (!(rate >= 0 && rate <= 1)) throw new Error(`failRate: ${rate} must be from 0 to 1`)
}

/**
 * One chained timer per connection: every member beats once at start, then once per interval,
 * spread evenly over it (a slice of the members per tick), never two ticks in flight.
 */
function startBeats(conn: Connection, intervalMs: number, beat: (i: number) => void): { stop(): void } {
  const n = conn.members.length
  const ticks = Math.max(1, Math.min(n, Math.floor(intervalMs / HEARTBEAT_TICK_MS)))
  const t0 = performance.now()
  let tick = 0
  let timer: NodeJS.Timeout | undefined
  let stopped = false
  for (const i of conn.members) beat(i)
  const next = () => {
    if (stopped) return
    tick++
    // Planned from the start time, so a slow tick does not push every later one back.
    timer = setTimeout(fire, Math.max(0, t0 + (tick * intervalMs) / ticks - performance.now()))
    timer.unref()
  }
  const fire = () => {
    const slice = (tick - 1) % ticks
    const from = Math.floor((slice * n) / ticks)
    const to = Math.floor(((slice + 1) * n) / ticks)
    for (let k = from; k < to; k++) beat(conn.members[k]!)
    next()
  }
  next()
  return {
    stop() {
      stopped = true
      clearTimeout(timer)
    },
  }
}

/** What the real worker reports when a task is over. */
type Outcome = ExecResult

function stoppedOutcome(state: 'cancelled' | 'timeout', cause: string): Outcome {
  // As the local executor: the process group got SIGTERM; nothing was printed before it.
  return { state, exitCode: null, signal: 'SIGTERM', cause, bytes: 0, truncated: false, digest: digestOf('', '') }
}

const keptCache = new Map<string, { stdout: string; stderr: string; bytes: number; truncated: boolean; digest: string }>()

/** The output under the per-node byte cap (stdout first), with the worker's digest of what was kept. */
function keptOutput(fail: boolean, lines: number, capBytes: number) {
  const key = `${fail}/${lines}/${capBytes}`
  let kept = keptCache.get(key)
  if (!kept) {
    const out = outputOf(fail, lines)
    const so = Buffer.from(out.stdout)
    const se = Buffer.from(out.stderr)
    const soKept = so.subarray(0, capBytes)
    const seKept = se.subarray(0, Math.max(0, capBytes - soKept.length))
    const stdout = soKept.toString()
    const stderr = seKept.toString()
    kept = { stdout, stderr, bytes: so.length + se.length, truncated: soKept.length + seKept.length < so.length + se.length, digest: digestOf(stdout, stderr) }
    keptCache.set(key, kept)
  }
  return kept
}

/** The worker's output digest, from the kept text of each stream. */
function digestOf(stdout: string, stderr: string): string {
  return outputDigest(createHash('sha256').update(stdout).digest(), createHash('sha256').update(stderr).digest())
}

function simulatedFacts(id: string): Facts {
  return {
    hostname: id,
    os: 'Simulated Linux',
    platform: 'linux',
    kernel: '6.1.0-sim',
    arch: 'x64',
    cpus: { count: 4, model: 'simulated cpu' },
    memory: { totalBytes: 8 * 1024 ** 3, availableBytes: 4 * 1024 ** 3 },
    uptimeSeconds: 86_400,
    loadAverage: [0.1, 0.1, 0.1],
  }
}


