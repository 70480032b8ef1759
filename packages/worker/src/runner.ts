import { createHmac } from 'node:crypto'
import {
  type Ack,
  BODY_LIMITS,
  type Bus,
  type BusMessage,
  type BusSubscription,
  clip,
  Control,
  controlRefusal,
  decode,
  errorMessage,
  finishedLine,
  type Logger,
  MAX_CAUSE,
  type NodeRunResult,
  notRunEvent,
  type Refusals,
  parseSubject,
  prefixLines,
  startedEvent,
  subjects,
  Task,
  taskRefusal,
  type Verifier,
  type WireEvent,
  type WireEventOf,
} from '@apiary/shared'
import { classifyRisk } from '@apiary/shared/risk'
import { type DaemonMetrics, rateLimitedWarning, warnRateLimited } from '@apiary/shared/runtime'
import { EXECUTION_DEADLINE, type ExecHooks, type ExecResult, type StopRequest } from './executors/executor.ts'
import type { ClaimEnd, TaskClaims } from './claims.ts'
import type { FinalEvent, Journal, JournalEntry } from './journal.ts'

export interface TaskRunnerConfig {
  bus: Bus
  log: Logger
  /** Who answers the tasks (the node id, or the SSH worker's id). */
  id: string
  /**
   * Where tasks come from; with `queue`, one member of the group takes each, and a runner that
   * drains leaves the group at once, so that NATS hands new tasks to the other members instead
   * of this one refusing them.
   */
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
  /**
   * What this worker took and how each task ended: a (job, node) runs at most once, across
   * re-offers and restarts. The runner closes it.
   */
  journal: Journal
  /**
   * Claims shared with the other members of the queue group (a region's SSH workers): a task is
   * claimed after the journal says this runner never took it, and before it is acknowledged;
   * one that another member claimed is answered with what its claim says and never run here,
   * and one that cannot be claimed (the bucket unreachable) is refused.
   */
  claims?: TaskClaims
  /** The most tasks running at once; a task past it is refused, so a flood cannot fork without bound. */
  maxRunning: number
  /** Refuses a task (the reason) or takes it (null). */
  admit(task: Task): string | null
  /**
   * Runs one task. `signal` aborts with a `StopRequest`: the execution deadline, a cancel, or
   * the job's deadline. `hooks.onStart` emits `node.started`, `hooks.onOutput` the output.
   */
  execute(task: Task, signal: AbortSignal, hooks: ExecHooks): Promise<ExecResult>
  /** Where the tasks it ran, and those it refused, are counted. */
  metrics?: DaemonMetrics<RunnerMetricKey>
  /** How long a task's start is held for its end to carry it (default `START_HOLD_MS`). */
  startHoldMs?: number
}

/** The metrics a task runner keeps (`createMetrics`); the worker adds its own. */
export const RUNNER_METRICS = ['nodesFinished', 'nodeDuration', 'tasksRefused'] as const
export type RunnerMetricKey = (typeof RUNNER_METRICS)[number]

export interface TaskRunner {
  /** Tasks running now. */
  running(): number
  /** Work refused since start because the queen's signature did not cover it (for the heartbeat). */
  refusals(): Refusals
  /**
   * Stops taking tasks, stops running ones, waits for their final events to be recorded and,
   * for a short while (`PUBLISH_DRAIN_MS`), stored; then closes the journal.
   */
  close(): Promise<void>
  /**
   * Stops as a SIGTERM asks: refuses new tasks (their cause says the worker is draining) while
   * it still answers for those it took, lets the running ones finish for up to `graceMs`,
   * stops those still running then (they end `cancelled`, saying the grace passed), and closes.
   * A runner of a queue group instead leaves the group at once: new tasks go to the other
   * members, and it hears no more offers, not even of the tasks it runs (their events, its
   * journal and cancels go on).
   */
  drain(graceMs: number): Promise<void>
  /** Whether it was told to drain (or close): it takes no new task. */
  draining(): boolean
}

const RECENT_CANCELS = 16_384
/** How long a closing worker waits for its events to be stored: past it, the journal still has each final state. */
export const PUBLISH_DRAIN_MS = 5_000
/** The cause of a task its worker took and then died running (the task is never run again). */
export const LOST_ON_RESTART = 'the worker restarted while the task ran'
/** The least time a task's events are retried for: its deadline, and a minute for the bus. */
const PUBLISH_SLACK_MS = 60_000
/**
 * The longest a task's claim may take: the hive waits `deliveryTimeoutMs` for the answer (and
 * the journal's fsync comes after the claim), so at most half of that.
 */
const CLAIM_WAIT_MS = 2000

/** Until when a task's events are retried: its grant's life, and at least its deadline and a minute from now. */
function eventDeadline(task: Task, now: number): number {
  return Math.max(task.grant.expiresAt, now + task.timeoutMs + PUBLISH_SLACK_MS)
}

/**
 * What every worker does with tasks, whatever runs them: acknowledges each task and runs it at
 * most once (the journal says what it took before: a re-offer is answered with `Ack.already`
 * and a finished task's final event is published again), narrates it on the job's events
 * subject (`node.started`, `node.output`, exactly one `node.finished`, stored durably and in
 * order), enforces its execution deadline, and stops it on a cancel.
 *
 * A task is recorded in the journal (fsynced) after it passed its grant checks and admission
 * and before it is acknowledged; one the journal says was taken before a restart and never
 * ended is not run again: it ends `lost`.
 */
/** A task's deadline timer this late means the worker was frozen: it waits this long more for an exit already due. */
const LATE_DEADLINE_MS = 250

/**
 * How long a task's `node.started` waits to be sent: a task that ends meanwhile sends its start
 * inside its `node.finished` (`startedAt`), one stored event instead of two; output sends it at
 * once. Short enough that nobody watching notices.
 */
export const START_HOLD_MS = 50

/** A task's events stored at once, at most: past it, the next waits for one of them. */
export const EVENTS_IN_FLIGHT = 8

export function startTaskRunner(cfg: TaskRunnerConfig): TaskRunner {
  const { bus, log, id, journal } = cfg
  const startHoldMs = cfg.startHoldMs ?? START_HOLD_MS
  const running = new Map<string, { abort: AbortController; done: Promise<void> }>()
  const byJob = new Map<string, Set<string>>()
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
  let draining = false
  const counted = cfg.metrics?.m
  const refusedFor = (reason: 'draining' | 'capacity' | 'unsigned' | 'admission' | 'unclaimed') => counted?.tasksRefused.inc({ reason })
  const unclaimed = rateLimitedWarning(log, 'refused a task: its claim could not be made (nothing runs unclaimed)')

  // Events on their way to the stream; a close waits for them a little.
  const publishing = new Set<Promise<void>>()
  const stopPublishing = new AbortController()
  const notStored = rateLimitedWarning(log, 'an event was not stored before its deadline (the journal keeps the final state for a re-offer)')
  const track = (p: Promise<void>) => {
    publishing.add(p)
    void p.finally(() => publishing.delete(p))
  }
  const store = async (subject: string, ev: WireEvent, dedupe: string, deadline: number) => {
    try {
      await bus.durable.publish(subject, ev, { id: dedupe, deadline, signal: stopPublishing.signal })
    } catch (err) {
      notStored.note({ jobId: ev.jobId, kind: ev.kind, id: dedupe, problem: errorMessage(err) })
    }
  }
  /**
   * One task's events, numbered (`step`: the queen applies them in that order whatever order
   * the stream stores them in) and stored with their dedupe ids:
   * `<job>/<node>/<tag>/<kind>`, the tag keyed by this worker's secret so no other node can
   * forge an id that would have one of these dropped as a duplicate. A final event comes
   * numbered (`step()`, before the journal records it), or from the journal as first sent.
   */
  const eventsOf = (jobId: string, node: string, deadline: number) => {
    const subject = cfg.eventSubject(node, jobId)
    const tag = createHmac('sha256', journal.secret).update(`${jobId}/${node}`).digest('base64url').slice(0, 22)
    // A task's start and output go out without waiting for each other's acknowledgement (at
    // most EVENTS_IN_FLIGHT at once; the queen orders them by step); its final event goes once
    // every earlier one is stored or given up, so it is stored last unless a retry reorders.
    let tail = Promise.resolve()
    const inFlight = new Set<Promise<void>>()
    let steps = 0
    let chunks = 0
    // A start not sent yet: a task that ends within START_HOLD_MS sends it inside its end.
    let heldStart: { ev: WireEventOf<'node.started'>; timer: NodeJS.Timeout } | undefined
    const sendStart = () => {
      if (!heldStart) return
      clearTimeout(heldStart.timer)
      const ev = heldStart.ev
      heldStart = undefined
      send(ev, 'started', false)
    }
    const send = (ev: WireEvent, kind: string, final: boolean) => {
      const next = tail.then(async () => {
        if (final) await Promise.all(inFlight)
        else while (inFlight.size >= EVENTS_IN_FLIGHT) await Promise.race(inFlight)
        const stored = store(subject, ev, `${jobId}/${node}/${tag}/${kind}`, deadline)
        inFlight.add(stored)
        void stored.finally(() => inFlight.delete(stored))
        track(stored)
        if (final) await stored
      })
      tail = next
      track(next)
    }
    return {
      started: (ev: WireEventOf<'node.started'>) => {
        heldStart = { ev: { ...ev, step: ++steps }, timer: setTimeout(sendStart, startHoldMs) }
        heldStart.timer.unref()
      },
      output: (ev: WireEventOf<'node.output'>) => {
        sendStart()
        send({ ...ev, step: ++steps }, `output/${++chunks}`, false)
      },
      /** The step of the task's final event: one past the last sent. */
      step: () => ++steps,
      /**
       * The task's end as it is recorded and sent: with its start inside (`startedAt`) when that
       * is still held and comes just before it, so the two are one stored event.
       */
      ending: (ev: FinalEvent): FinalEvent => {
        const start = heldStart
        if (start && ev.step !== undefined && ev.step === start.ev.step! + 1) {
          clearTimeout(start.timer)
          heldStart = undefined
          return { ...ev, startedAt: start.ev.ts }
        }
        sendStart()
        return ev
      },
      finished: (ev: FinalEvent) => send(ev, 'finished', true),
    }
  }
  type Events = ReturnType<typeof eventsOf>
  /** Records a claimed task's end in its claim (at `revision`, or if this worker still holds it). */
  const settleClaim = (jobId: string, node: string, end: ClaimEnd, deadline: number, revision: number | undefined) => {
    if (cfg.claims) track(cfg.claims.settle(jobId, node, end, { ...(revision === undefined ? {} : { revision }), deadline, signal: stopPublishing.signal }))
  }
  /** Records how a task ended, then publishes it: the journal never says less than the stream (nor does its claim). */
  const finish = async (entry: JournalEntry, end: FinalEvent, events: Events, claim: { deadline: number; revision: number | undefined }) => {
    const ev = events.ending(end)
    try {
      await journal.finish(entry, ev)
    } catch (err) {
      log.error({ err, jobId: entry.jobId, node: entry.node }, 'the end of a task was not recorded in the journal')
    }
    counted?.nodesFinished.inc({ state: ev.state })
    events.finished(ev)
    settleClaim(entry.jobId, entry.node, ev, claim.deadline, claim.revision)
  }
  /**
   * Ends a task taken before a restart that never ended: it is not run again. Its final event
   * has no step (how many the dead process sent is unknown): the queen applies it at once, and
   * drops whatever of the earlier ones comes after it, of a run whose outcome is unknown anyway.
   */
  const endLost = (entry: JournalEntry, deadline: number, claimRevision?: number): FinalEvent => {
    const ev = notRunEvent(entry.jobId, entry.node, 'lost', LOST_ON_RESTART)
    track(finish(entry, ev, eventsOf(entry.jobId, entry.node, deadline), { deadline, revision: claimRevision }))
    return ev
  }
  /**
   * Claims a task among the queue group's members: the revision this runner holds it at, or the
   * answer when it may not run it here (another holds it, or the claim could not be made).
   */
  const claim = async (claims: TaskClaims, task: Task): Promise<{ revision: number } | { answer: Ack }> => {
    const wait = Math.max(100, Math.min(CLAIM_WAIT_MS, task.grant.deliveryTimeoutMs / 2))
    let c
    try {
      c = await claims.take(task.jobId, task.node, AbortSignal.timeout(wait))
    } catch (err) {
      refusedFor('unclaimed')
      unclaimed.note({ jobId: task.jobId, node: task.node, problem: errorMessage(err) })
      const reason = `cannot claim the task, so it cannot tell whether another worker of its region took it, and runs nothing: ${clip(errorMessage(err), 300)}`
      return { answer: { accepted: false, by: id, reason } }
    }
    if (c.kind === 'taken') return { revision: c.revision }
    const deadline = eventDeadline(task, Date.now())
    // Claimed by this worker before a restart, and its journal does not say so (forgotten, or
    // lost with its state directory): it may have run, so it is never run again.
    if (c.by === id && c.state === 'running') {
      const { entry, written } = journal.take(task.jobId, task.node, task.grant.expiresAt)
      track(written.catch(() => undefined))
      return { answer: { accepted: true, by: id, already: endLost(entry, deadline, c.revision).state } }
    }
    // Another worker took it: what its claim says, and the end it published, once more.
    if (c.final) eventsOf(task.jobId, task.node, deadline).finished(c.final)
    return { answer: { accepted: true, by: id, already: c.state } }
  }
  const respond = (msg: BusMessage, ack: Ack) => {
    try {
      msg.respond(ack)
    } catch (err) {
      log.warn({ err, accepted: ack.accepted }, 'a task was not answered')
    }
  }

  // What died with the previous run ends now, before any re-offer asks.
  const died = journal.unfinished().filter((e) => e.final === null)
  if (died.length > 0) log.warn({ tasks: died.length }, 'tasks taken before the restart never ended: they end lost and are not run again')
  for (const e of died) endLost(e, Math.max(e.expiresAt, Date.now() + PUBLISH_SLACK_MS))

  let taskSub: BusSubscription | undefined = bus.subscribe(
    cfg.subject,
    (msg) => {
      const task = decode(Task, msg, log)
      const refuse = (reason: string) => msg.respond({ accepted: false, by: id, reason } satisfies Ack)
      if (!task) return refuse('malformed task')
      if (closing) return refuse('worker is shutting down')
      const forged = taskRefusal(task, { verifier: cfg.queenKey, region: cfg.region, agentless: cfg.agentless, now: Date.now(), verified, classify: classifyRisk })
      if (forged !== null) {
        refused(msg.subject, forged)
        refusedFor('unsigned')
        refusedTasks.note({ jobId: task.jobId, node: task.node, subject: msg.subject, reason: forged })
        return refuse(`refused: ${forged}`)
      }
      const why = cfg.admit(task)
      if (why !== null) {
        refusedFor('admission')
        return refuse(why)
      }
      const key = `${task.jobId}/${task.node}`
      // A task taken before (a re-offer, a redelivery, a restart since) is answered, never run again.
      // One running here is so even if the journal's bound forgot it.
      if (running.has(key)) return respond(msg, { accepted: true, by: id, already: 'running' })
      const seen = journal.get(task.jobId, task.node)
      if (seen) {
        const deadline = eventDeadline(task, Date.now())
        let final = seen.final
        if (final === null) final = endLost(seen, deadline)
        else eventsOf(task.jobId, task.node, deadline).finished(final)
        return respond(msg, { accepted: true, by: id, already: final.state })
      }
      // Only new work is refused: a task it took is still answered for, as above.
      if (draining) {
        refusedFor('draining')
        return refuse(`worker ${id} is draining (it was told to stop): it takes no new task`)
      }
      if (running.size >= cfg.maxRunning) {
        refusedFor('capacity')
        warnRateLimited(log, 'refused a task: at capacity', { jobId: task.jobId, node: task.node, running: running.size })
        return refuse(`at capacity: ${running.size} tasks running (the most is ${cfg.maxRunning})`)
      }
      const abort = new AbortController()
      const stop = cancelled.get(task.jobId)
      if (stop) abort.abort(stop)
      // Held in `running` from here: a second delivery while it is claimed is answered `running`.
      const done = (async () => {
        const claimed = cfg.claims ? await claim(cfg.claims, task) : undefined
        if (claimed && 'answer' in claimed) return respond(msg, claimed.answer)
        const { entry, written } = journal.take(task.jobId, task.node, task.grant.expiresAt)
        // On disk before the answer: a worker that dies now still knows, once restarted, that it took it.
        try {
          await written
        } catch (err) {
          journal.forget(entry)
          log.error({ err, jobId: task.jobId, node: task.node }, 'refused a task: the journal could not record it')
          // It ran nothing: its claim says so (the hive ends it error, as refused).
          if (claimed) settleClaim(task.jobId, task.node, { state: 'error' }, eventDeadline(task, Date.now()), claimed.revision)
          return respond(msg, { accepted: false, by: id, reason: `the worker's journal could not record the task: ${clip(errorMessage(err), 200)}` })
        }
        respond(msg, { accepted: true, by: id })
        await run(task, entry, abort.signal, claimed?.revision)
      })().finally(() => {
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
    if (cancelled.size > RECENT_CANCELS) cancelled.delete(cancelled.keys().next().value!)
    const keys = byJob.get(control.jobId)
    if (!keys) return
    log.info({ jobId: control.jobId, outcome: control.outcome, tasks: keys.size }, 'stopping tasks')
    for (const key of keys) running.get(key)?.abort.abort({ state: control.outcome, cause: control.reason } satisfies StopRequest)
  }, { maxBytes: BODY_LIMITS.control })

  async function run(task: Task, entry: JournalEntry, cancel: AbortSignal, claimRevision: number | undefined): Promise<void> {
    const t0 = performance.now()
    const base = { jobId: task.jobId, node: task.node }
    const deadlineAt = eventDeadline(task, Date.now())
    const events = eventsOf(task.jobId, task.node, deadlineAt)
    const stop = new AbortController()
    const onCancel = () => stop.abort(cancel.reason)
    // A deadline that fires late (this process was frozen: SIGSTOP, a VM pause) first lets the
    // exit of a command that ended meanwhile be heard, so it ends as it really did.
    let deadline = setTimeout(function due() {
      if (performance.now() - t0 > task.timeoutMs + LATE_DEADLINE_MS && !stop.signal.aborted) deadline = setTimeout(() => stop.abort(EXECUTION_DEADLINE), LATE_DEADLINE_MS)
      else stop.abort(EXECUTION_DEADLINE)
    }, task.timeoutMs)
    cancel.addEventListener('abort', onCancel, { once: true })
    let r: ExecResult
    try {
      // A task of a job cancelled before it came runs nothing: it ends as the cancel says.
      if (cancel.aborted) {
        const why = cancel.reason as StopRequest
        r = { state: why.state, exitCode: null, signal: null, cause: why.cause, bytes: 0, truncated: false, digest: null }
      } else r = await cfg.execute(task, stop.signal, {
        onStart: () => events.started(startedEvent(task.jobId, task.node, Date.now())),
        onOutput: (c) => events.output({ ...base, ts: Date.now(), kind: 'node.output', stream: c.stream, data: c.data, human: prefixLines(task.node, c.data) }),
      })
    } catch (err) {
      log.error({ err, jobId: task.jobId, node: task.node }, 'task failed inside the worker')
      r = { state: 'error', exitCode: null, signal: null, cause: `worker error: ${(err as Error).message}`, bytes: 0, truncated: false, digest: null }
    } finally {
      clearTimeout(deadline)
      cancel.removeEventListener('abort', onCancel)
    }
    const durationMs = Math.round((performance.now() - t0) * 10) / 10
    counted?.nodeDuration.observe({ state: r.state }, durationMs / 1000)
    await finish(entry, {
      ...base,
      ts: Date.now(),
      kind: 'node.finished',
      step: events.step(),
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
    }, events, { deadline: deadlineAt, revision: claimRevision })
  }

  /** Hears no more tasks (a queue group's member leaves it: NATS hands them to the others). */
  const stopTaking = () => {
    taskSub?.unsubscribe()
    taskSub = undefined
  }

  const close = async () => {
    closing = true
    draining = true
    stopTaking()
    for (const { abort } of running.values()) abort.abort({ state: 'cancelled', cause: 'worker shutting down' } satisfies StopRequest)
    await Promise.all([...running.values()].map((r) => r.done))
    controlSub.unsubscribe()
    await settle(publishing, PUBLISH_DRAIN_MS)
    // What is not stored by now is given up; each final state stays in the journal.
    stopPublishing.abort()
    await journal.close()
    await bus.flush()
  }

  return {
    running: () => running.size,
    refusals: () => ({ ...refusals }),
    draining: () => draining,
    close,
    async drain(graceMs) {
      if (closing) return close()
      draining = true
      // In a queue group a refusal would land on the task, where another member could have
      // taken it. What this one runs is still reported; a re-offer or re-ask of it now reaches
      // another member, which answers from the task's claim.
      if (cfg.queue !== undefined) {
        stopTaking()
        log.info({ queue: cfg.queue, tasks: running.size }, 'draining: left the queue group; new tasks go to its other members')
      }
      if (running.size > 0) {
        log.info({ tasks: running.size, graceMs }, 'draining: no new task; waiting for the running ones to finish')
        let timer: NodeJS.Timeout | undefined
        const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))
        await Promise.race([Promise.all([...running.values()].map((r) => r.done)), late])
        clearTimeout(timer)
        if (running.size > 0) {
          log.warn({ tasks: running.size, graceMs }, 'the drain grace passed: stopping the tasks still running')
          const stop: StopRequest = { state: 'cancelled', cause: `the worker stopped: its drain grace (${graceMs / 1000} s) passed while the task ran` }
          for (const { abort } of running.values()) abort.abort(stop)
        }
      }
      await close()
    },
  }
}

/** Waits until `pending` is empty (promises may join it meanwhile), or `ms` passed. */
async function settle(pending: ReadonlySet<Promise<void>>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))
  let over = false
  void late.then(() => (over = true))
  try {
    while (pending.size > 0 && !over) await Promise.race([Promise.all(pending), late])
  } finally {
    clearTimeout(timer)
  }
}

/** The result of an operation that ran nothing and succeeded (ping, facts). */
export function okResult(result: NodeRunResult): ExecResult {
  return { state: 'ok', exitCode: null, signal: null, cause: null, bytes: 0, truncated: false, digest: null, result }
}
