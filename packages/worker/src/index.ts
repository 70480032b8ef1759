import {
  type Ack,
  type Bus,
  Control,
  decode,
  Heartbeater,
  type Logger,
  subjects,
  Task,
  VERSION,
  type WireEvent,
} from '@apiary/shared'
import { collectFacts } from './executors/facts.ts'
import { EXECUTION_DEADLINE, type ExecResult, type StopRequest } from './executors/executor.ts'
import { runLocal } from './executors/local.ts'


export interface WorkerConfig {
  bus: Bus
  log: Logger
  nodeId: string
  region: string
  labels: Record<string, string>
  heartbeatMs: number
  /** SIGTERM → SIGKILL grace for a stopped process group. */
  killGraceMs?: number
}

export interface Worker {
  nodeId: string
  /** Tasks running now. */
  running(): number
  /** Stops taking tasks, cancels running ones and waits for their final events. */
  close(): Promise<void>
}

const RECENT_TASKS = 4096

/**
 * An agent worker: takes the tasks of one node, runs them with the local executor and
 * narrates what happens on the job's events subject. Heartbeats straight to the queen.
 *
 * @example const w = startWorker({ bus, log, nodeId: 'web-1', region: 'eu', labels: { role: 'web' }, heartbeatMs: 5000 })
 */
export function startWorker(cfg: WorkerConfig): Worker {
  const { bus, nodeId } = cfg
  const log = cfg.log.child({ node: nodeId })
  const running = new Map<string, { abort: AbortController; done: Promise<void> }>()
  // A task delivered twice (a retried request) must not run twice.
  const recent = new Set<string>()
  let closing = false

  const heart = new Heartbeater(bus, log, () => ({
    id: nodeId,
    role: 'worker',
    region: cfg.region,
    labels: cfg.labels,
    executor: 'local',
    status: 'healthy',
    running: running.size,
    version: VERSION,
    intervalMs: cfg.heartbeatMs,
    ts: Date.now(),
  })).start()

  const emit = (ev: WireEvent) => {
    try {
      bus.publish(subjects.events(ev.jobId), ev)
    } catch (err) {
      log.error({ err, jobId: ev.jobId, kind: ev.kind }, 'event not published')
    }
  }

  const taskSub = bus.subscribe(subjects.nodeTasks(nodeId), (msg) => {
    const task = decode(Task, msg, log)
    if (!task) {
      msg.respond({ accepted: false, by: nodeId, reason: 'malformed task' } satisfies Ack)
      return
    }
    if (task.node !== nodeId) {
      msg.respond({ accepted: false, by: nodeId, reason: `task is for node ${task.node}` } satisfies Ack)
      return
    }
    if (closing) {
      msg.respond({ accepted: false, by: nodeId, reason: 'worker is shutting down' } satisfies Ack)
      return
    }
    msg.respond({ accepted: true, by: nodeId } satisfies Ack)
    if (recent.has(task.jobId)) return
    recent.add(task.jobId)
    if (recent.size > RECENT_TASKS) recent.delete(recent.values().next().value!)
    const abort = new AbortController()
    const done = run(task, abort.signal).finally(() => {
      running.delete(task.jobId)
    })
    running.set(task.jobId, { abort, done })
  })

  const controlSub = bus.subscribe(subjects.controlAll, (msg) => {
    const control = decode(Control, msg, log)
    // A halt only stops dispatching; what already runs here finishes.
    if (control?.action !== 'cancel') return
    const entry = running.get(control.jobId)
    if (!entry) return
    log.info({ jobId: control.jobId, outcome: control.outcome }, 'stopping task')
    entry.abort.abort({ state: control.outcome, cause: control.reason } satisfies StopRequest)
  })

  async function run(task: Task, cancel: AbortSignal): Promise<void> {
    const t0 = performance.now()
    const base = { jobId: task.jobId, node: nodeId }
    let r: ExecResult
    try {
      switch (task.operation.type) {
        case 'ping':
          r = { state: 'ok', exitCode: null, signal: null, cause: null, bytes: 0, truncated: false, digest: null, result: { pong: true } }
          break
        case 'facts': {
          emit({ ...base, ts: Date.now(), kind: 'node.started', human: `${nodeId}: collecting facts` })
          r = { state: 'ok', exitCode: null, signal: null, cause: null, bytes: 0, truncated: false, digest: null, result: await collectFacts() }
          break
        }
        case 'exec': {
          const deadline = AbortSignal.timeout(task.timeoutMs)
          const signal = new AbortController()
          const onCancel = () => signal.abort(cancel.reason)
          const onDeadline = () => signal.abort(EXECUTION_DEADLINE)
          cancel.addEventListener('abort', onCancel, { once: true })
          deadline.addEventListener('abort', onDeadline, { once: true })
          try {
            r = await runLocal(
              {
                op: task.operation,
                capBytes: task.outputCapBytes,
                signal: signal.signal,
                killGraceMs: cfg.killGraceMs ?? 2000,
                baseEnv: { APIARY_JOB_ID: task.jobId, APIARY_NODE_ID: nodeId },
              },
              {
                onStart: () => emit({ ...base, ts: Date.now(), kind: 'node.started', human: `${nodeId}: started` }),
                onOutput: (c) =>
                  emit({ ...base, ts: Date.now(), kind: 'node.output', stream: c.stream, data: c.data, human: prefixLines(nodeId, c.data) }),
              },
            )
          } finally {
            cancel.removeEventListener('abort', onCancel)
            deadline.removeEventListener('abort', onDeadline)
          }
          break
        }
      }
    } catch (err) {
      log.error({ err, jobId: task.jobId }, 'task failed inside the worker')
      r = { state: 'error', exitCode: null, signal: null, cause: `worker error: ${(err as Error).message}`, bytes: 0, truncated: false, digest: null }
    }
    const durationMs = Math.round((performance.now() - t0) * 10) / 10
    emit({
      ...base,
      ts: Date.now(),
      kind: 'node.finished',
      state: r.state,
      exitCode: r.exitCode,
      signal: r.signal,
      cause: r.cause,
      durationMs,
      bytes: r.bytes,
      truncated: r.truncated,
      digest: r.digest,
      ...(r.result === undefined ? {} : { result: r.result }),
      human: finishedLine(nodeId, r, durationMs, task.outputCapBytes),
    })
  }

  return {
    nodeId,
    running: () => running.size,
    async close() {
      closing = true
      taskSub.unsubscribe()
      heart.stop()
      for (const { abort } of running.values()) abort.abort({ state: 'cancelled', cause: 'worker shutting down' } satisfies StopRequest)
      await Promise.all([...running.values()].map((r) => r.done))
      controlSub.unsubscribe()
      await bus.flush()
    },
  }
}

function prefixLines(node: string, data: string): string {
  const body = data.endsWith('\n') ? data.slice(0, -1) : data
  return body
    .split('\n')
    .map((l) => `${node} | ${l}`)
    .join('\n')
}

function finishedLine(node: string, r: ExecResult, ms: number, cap: number): string {
  const parts: string[] = []
  if (r.exitCode !== null) parts.push(`exit ${r.exitCode}`)
  if (r.signal) parts.push(r.signal)
  parts.push(ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`)
  if (r.truncated) parts.push(`output cut at ${cap} of ${r.bytes} bytes`)
  const cause = r.cause && r.state !== 'ok' ? `: ${r.cause}` : ''
  return `${node}: ${r.state}${cause} (${parts.join(', ')})`
}

export { OutputCap } from './output-cap.ts'
export { runLocal } from './executors/local.ts'
export { collectFacts } from './executors/facts.ts'
export { createSshPool, type HostKeyPolicy, type HostStatus, type PoolStats, poolKey, type SshLease, type SshPool, type SshPoolOptions, type SshTarget } from './executors/ssh/pool.ts'
export { runSsh, type SshExecOptions } from './executors/ssh/ssh.ts'
export type { BreakerState } from './executors/ssh/breaker.ts'
export type { ExecHooks, ExecResult } from './executors/executor.ts'
