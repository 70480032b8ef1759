import {
  type Ack,
  BODY_LIMITS,
  type Bus,
  clip,
  Control,
  controlRefusal,
  decode,
  finishedLine,
  type Logger,
  MAX_CAUSE,
  type NodeRunResult,
  type Refusals,
  parseSubject,
  prefixLines,
  subjects,
  Task,
  taskRefusal,
  type Verifier,
  type WireEvent,
} from '@apiary/shared'
import { classifyRisk } from '@apiary/shared/risk'
import { rateLimitedWarning, warnRateLimited } from '@apiary/shared/runtime'
import { EXECUTION_DEADLINE, type ExecHooks, type ExecResult, type StopRequest } from './executors/executor.ts'

export interface TaskRunnerConfig {
  bus: Bus
  log: Logger
  /** Who answers the tasks (the node id, or the SSH worker's id). */
  id: string
  /** Where tasks come from; with `queue`, one member of the group takes each. */
  subject: string
  queue?: string
  /** The worker's region: a grant for another region is refused. */
  region: string
  /** The queen's pinned public key: only work it signed runs. */
  queenKey: Verifier
  /** Whether this runner takes agentless nodes' tasks (an SSH worker) or its own node's (an agent). */
  agentless: boolean
  /** Where a node's events of a job go (the agent's or the SSH workers' subject). */
  eventSubject(node: string, jobId: string): string
  /** The most tasks running at once; a task past it is refused, so a flood cannot fork without bound. */
  maxRunning: number
  /** Refuses a task (the reason) or takes it (null). */
  admit(task: Task): string | null
  /**
   * Runs one task. `signal` aborts with a `StopRequest`: the execution deadline, a cancel, or
   * the job's deadline. `hooks.onStart` emits `node.started`, `hooks.onOutput` the output.
   */
  execute(task: Task, signal: AbortSignal, hooks: ExecHooks): Promise<ExecResult>
}

export interface TaskRunner {
  /** Tasks running now. */
  running(): number
  /** Work refused since start because the queen's signature did not cover it (for the heartbeat). */
  refusals(): Refusals
  /** Stops taking tasks, stops running ones and waits for their final events. */
  close(): Promise<void>
}

const RECENT_TASKS = 16_384

/**
 * What every worker does with tasks, whatever runs them: acknowledges each task, runs it once
 * (a task delivered twice is not run twice), narrates it on the job's events subject
 * (`node.started`, `node.output`, exactly one `node.finished`), enforces its execution
 * deadline, and stops it on a cancel.
 */
export function startTaskRunner(cfg: TaskRunnerConfig): TaskRunner {
  const { bus, log, id } = cfg
  const running = new Map<string, { abort: AbortController; done: Promise<void> }>()
  const byJob = new Map<string, Set<string>>()
  const recent = new Set<string>()
  // Cancels of recent jobs: a task of a cancelled job that arrives after the cancel (the
  // hive refilled its window as the cancel was on its way) is stopped before it starts.
  const cancelled = new Map<string, StopRequest>()
  // Grants checked already, by the digest of all they say: one verification per share, not per task.
  const verified = new Set<string>()
  const refusedTasks = rateLimitedWarning(log, 'refused a task the queen did not sign for this node')
  const ignoredControls = rateLimitedWarning(log, 'ignored a control message')
  const refusals: Refusals = { count: 0, last: null }
  const refused = (subject: string, reason: string) => {
    refusals.count++
    refusals.last = { reason: clip(reason, 1000), subject: clip(subject, 1000), at: Date.now() }
  }
  let closing = false

  const emit = (ev: WireEvent & { node: string }) => {
    try {
      bus.publish(cfg.eventSubject(ev.node, ev.jobId), ev)
    } catch (err) {
      log.error({ err, jobId: ev.jobId, kind: ev.kind }, 'event not published')
    }
  }

  const taskSub = bus.subscribe(
    cfg.subject,
    (msg) => {
      const task = decode(Task, msg, log)
      const refuse = (reason: string) => msg.respond({ accepted: false, by: id, reason } satisfies Ack)
      if (!task) return refuse('malformed task')
      if (closing) return refuse('worker is shutting down')
      const forged = taskRefusal(task, { verifier: cfg.queenKey, region: cfg.region, agentless: cfg.agentless, now: Date.now(), verified, classify: classifyRisk })
      if (forged !== null) {
        refused(msg.subject, forged)
        refusedTasks.note({ jobId: task.jobId, node: task.node, subject: msg.subject, reason: forged })
        return refuse(`refused: ${forged}`)
      }
      const why = cfg.admit(task)
      if (why !== null) return refuse(why)
      const key = `${task.jobId}/${task.node}`
      // A task delivered again (a re-offer) is acknowledged and not run twice.
      if (recent.has(key)) return msg.respond({ accepted: true, by: id } satisfies Ack)
      if (running.size >= cfg.maxRunning) {
        warnRateLimited(log, 'refused a task: at capacity', { jobId: task.jobId, node: task.node, running: running.size })
        return refuse(`at capacity: ${running.size} tasks running (the most is ${cfg.maxRunning})`)
      }
      msg.respond({ accepted: true, by: id } satisfies Ack)
      recent.add(key)
      if (recent.size > RECENT_TASKS) recent.delete(recent.values().next().value!)
      const abort = new AbortController()
      const stop = cancelled.get(task.jobId)
      if (stop) abort.abort(stop)
      const done = run(task, abort.signal).finally(() => {
        running.delete(key)
        const set = byJob.get(task.jobId)
        set?.delete(key)
        if (set?.size === 0) byJob.delete(task.jobId)
      })
      running.set(key, { abort, done })
      let set = byJob.get(task.jobId)
      if (!set) byJob.set(task.jobId, (set = new Set()))
      set.add(key)
    },
    cfg.queue ? { queue: cfg.queue } : undefined,
  )

  const controlSub = bus.subscribe(subjects.controlAll, (msg) => {
    const control = decode(Control, msg, log)
    if (!control) return
    const forged = controlRefusal(control, cfg.queenKey, parseSubject(msg.subject)?.[1] ?? '', Date.now())
    if (forged !== null) {
      refused(msg.subject, forged)
      ignoredControls.note({ jobId: control.jobId, subject: msg.subject, reason: forged })
      return
    }
    // A halt only stops dispatching; what already runs here finishes.
    if (control.action !== 'cancel') return
    cancelled.set(control.jobId, { state: control.outcome, cause: control.reason })
    if (cancelled.size > RECENT_TASKS) cancelled.delete(cancelled.keys().next().value!)
    const keys = byJob.get(control.jobId)
    if (!keys) return
    log.info({ jobId: control.jobId, outcome: control.outcome, tasks: keys.size }, 'stopping tasks')
    for (const key of keys) running.get(key)?.abort.abort({ state: control.outcome, cause: control.reason } satisfies StopRequest)
  }, { maxBytes: BODY_LIMITS.control })

  async function run(task: Task, cancel: AbortSignal): Promise<void> {
    const t0 = performance.now()
    const base = { jobId: task.jobId, node: task.node }
    const stop = new AbortController()
    const onCancel = () => stop.abort(cancel.reason)
    const deadline = setTimeout(() => stop.abort(EXECUTION_DEADLINE), task.timeoutMs)
    cancel.addEventListener('abort', onCancel, { once: true })
    let r: ExecResult
    try {
      // A task of a job cancelled before it came runs nothing: it ends as the cancel says.
      if (cancel.aborted) {
        const why = cancel.reason as StopRequest
        r = { state: why.state, exitCode: null, signal: null, cause: why.cause, bytes: 0, truncated: false, digest: null }
      } else r = await cfg.execute(task, stop.signal, {
        onStart: () => emit({ ...base, ts: Date.now(), kind: 'node.started', human: `${task.node}: started` }),
        onOutput: (c) => emit({ ...base, ts: Date.now(), kind: 'node.output', stream: c.stream, data: c.data, human: prefixLines(task.node, c.data) }),
      })
    } catch (err) {
      log.error({ err, jobId: task.jobId, node: task.node }, 'task failed inside the worker')
      r = { state: 'error', exitCode: null, signal: null, cause: `worker error: ${(err as Error).message}`, bytes: 0, truncated: false, digest: null }
    } finally {
      clearTimeout(deadline)
      cancel.removeEventListener('abort', onCancel)
    }
    const durationMs = Math.round((performance.now() - t0) * 10) / 10
    emit({
      ...base,
      ts: Date.now(),
      kind: 'node.finished',
      state: r.state,
      exitCode: r.exitCode,
      signal: r.signal,
      cause: r.cause === null ? null : clip(r.cause, MAX_CAUSE),
      durationMs,
      bytes: r.bytes,
      truncated: r.truncated,
      digest: r.digest,
      ...(r.result === undefined ? {} : { result: r.result }),
      human: finishedLine(task.node, r, durationMs, task.outputCapBytes),
    })
  }

  return {
    running: () => running.size,
    refusals: () => ({ ...refusals }),
    async close() {
      closing = true
      taskSub.unsubscribe()
      for (const { abort } of running.values()) abort.abort({ state: 'cancelled', cause: 'worker shutting down' } satisfies StopRequest)
      await Promise.all([...running.values()].map((r) => r.done))
      controlSub.unsubscribe()
      await bus.flush()
    },
  }
}

/** The result of an operation that ran nothing and succeeded (ping, facts). */
export function okResult(result: NodeRunResult): ExecResult {
  return { state: 'ok', exitCode: null, signal: null, cause: null, bytes: 0, truncated: false, digest: null, result }
}
