import {
  Ack,
  ApiaryError,
  type Bus,
  type Control,
  decode,
  describeOperation,
  type FinalState,
  type HiveJob,
  isApiaryError,
  isFinal,
  type JobEvent,
  type JobPlan,
  type JobRequest,
  type JobState,
  type Logger,
  newJobId,
  notRunEvent,
  type NodeState,
  resolveCount,
  type ResultGroup,
  spendsErrorBudget,
  subjects,
  WireEvent,
} from '@apiary/shared'
import type { Presence } from '../presence/presence.ts'
import type { Batch, JobStore, NodeUpdate } from '../store/store.ts'
import { countsLine, durationText, groupKey, sortGroups } from './human.ts'
import { checkConfirmation, planJob, summarisePlan } from './plan.ts'

interface NodeEntry {
  region: string
  state: NodeState
  /** Index of the phase the node belongs to (0 = canary when there is one). */
  phase: number
  /** Reached over SSH by the region's SSH workers. */
  agentless: boolean
  /** The hive that took the node's share, once it did. */
  hive?: string
}

interface ActiveJob {
  id: string
  request: JobRequest
  createdAt: number
  nodes: Map<string, NodeEntry>
  counts: Map<NodeState, number>
  open: number
  lastSeq: number
  /** Nodes of the whole job that spent the error budget. */
  errors: number
  maxErrors: number | null
  /** Phases: [canary, rest] or [all]; the next phase to hand to the hives. */
  phases: string[][]
  nextPhase: number
  /** Why dispatching stopped early; set once. */
  stopReason: string | null
  cancelled: boolean
  /** The last control message sent, re-sent to a hive that takes a share after it. */
  control: Control | null
  timers: NodeJS.Timeout[]
}

export interface CoordinatorOptions {
  bus: Bus
  store: JobStore
  presence: Presence
  log: Logger
  /** How long a hive has to take a job before its region counts as having none. */
  hiveAckTimeoutMs: number
  /** After a cancel or the job deadline, how long to wait for confirmations before closing anyway. */
  cancelGraceMs: number
}

type Listener = (ev: JobEvent) => void

/**
 * The queen's job logic: plans and submits jobs, hands each phase's region shares to the
 * hives, ingests every event with its gapless sequence number, enforces the job-wide
 * policy (canary, error budget, deadline, cancel), tracks each node to exactly one final
 * state, and finishes the job.
 *
 * Events are committed in groups: everything appended in one tick is one transaction, and
 * listeners hear of an event only after it is committed.
 */
export class Coordinator {
  readonly #active = new Map<string, ActiveJob>()
  readonly #listeners = new Map<string, Set<Listener>>()
  readonly #o: CoordinatorOptions
  #batch: Batch = { events: [], ends: [] }
  #flushScheduled = false
  #retryTimer: NodeJS.Timeout | undefined
  #closed = false

  constructor(opts: CoordinatorOptions) {
    this.#o = opts
    this.#recover()
  }

  /** Subscribes to the events subjects. */
  start(): () => void {
    const sub = this.#o.bus.subscribe(subjects.eventsAll, (msg) => {
      const ev = decode(WireEvent, msg, this.#o.log)
      if (!ev) return
      if (subjects.events(ev.jobId) !== msg.subject) {
        this.#o.log.warn({ subject: msg.subject, jobId: ev.jobId }, 'dropped an event published on another job’s subject')
        return
      }
      this.ingest(ev)
    })
    return () => sub.unsubscribe()
  }

  /** Re-opens jobs that were running when the queen stopped: their workers may still report. */
  #recover() {
    for (const id of this.#o.store.runningJobIds()) {
      const s = this.#o.store.getJob(id)
      if (!s) continue
      const request: JobRequest = { operation: s.operation, targets: s.targets, rollout: s.rollout, outputCapBytes: s.outputCapBytes }
      const job = this.#newActive(id, request, s.createdAt, s.lastSeq)
      const nodes = this.#o.store.nodes(id)
      job.phases = [nodes.map((n) => n.node)]
      job.nextPhase = 1
      for (const n of nodes) {
        this.#setNode(job, n.node, { region: n.region, state: n.state, phase: 0, agentless: this.#o.presence.isAgentless(n.node) })
        if (spendsErrorBudget(n.state)) job.errors++
      }
      this.#active.set(id, job)
      this.#o.log.info({ jobId: id, open: job.open }, 'resumed a running job')
      if (job.open === 0) {
        this.#finish(job)
        continue
      }
      // The queen no longer knows which hive holds which share: stop dispatching (hives skip
      // what they have not started); what runs still reports. Whatever has not reported by
      // then ends as unknown, never re-run.
      this.#stop(job, 'the queen restarted', 'halt')
      const timer = setTimeout(() => {
        for (const [node, e] of job.nodes) {
          if (e.state === 'pending') this.#finishNode(job, node, 'skipped', 'not dispatched: the queen restarted')
          else if (e.state === 'running') this.#finishNode(job, node, 'lost', 'no result after the queen restarted')
        }
      }, request.rollout.timeoutMs + this.#o.cancelGraceMs)
      timer.unref()
      job.timers.push(timer)
    }
  }

  #newActive(id: string, request: JobRequest, createdAt: number, lastSeq: number): ActiveJob {
    return {
      id,
      request,
      createdAt,
      nodes: new Map(),
      counts: new Map(),
      open: 0,
      lastSeq,
      errors: 0,
      maxErrors: null,
      phases: [],
      nextPhase: 0,
      stopReason: null,
      cancelled: false,
      control: null,
      timers: [],
    }
  }

  #setNode(job: ActiveJob, node: string, entry: NodeEntry) {
    const prev = job.nodes.get(node)
    if (prev) {
      job.counts.set(prev.state, (job.counts.get(prev.state) ?? 1) - 1)
      if (!isFinal(prev.state)) job.open--
    }
    job.nodes.set(node, entry)
    job.counts.set(entry.state, (job.counts.get(entry.state) ?? 0) + 1)
    if (!isFinal(entry.state)) job.open++
  }

  listen(jobId: string, fn: Listener): () => void {
    let set = this.#listeners.get(jobId)
    if (!set) this.#listeners.set(jobId, (set = new Set()))
    set.add(fn)
    return () => {
      set.delete(fn)
      if (set.size === 0) this.#listeners.delete(jobId)
    }
  }

  /** Numbers an event and queues it for the next group commit. */
  #append(job: ActiveJob, ev: WireEvent, nodeUpdate?: { node: string; update: NodeUpdate }) {
    const event = { ...ev, seq: ++job.lastSeq } as JobEvent
    this.#batch.events.push(nodeUpdate ? { event, nodeUpdate } : { event })
    this.#scheduleFlush()
  }

  #scheduleFlush() {
    if (this.#flushScheduled || this.#closed) return
    this.#flushScheduled = true
    setImmediate(() => this.flush())
  }

  /** Commits what is queued, then tells the listeners. */
  flush(): void {
    this.#flushScheduled = false
    const batch = this.#batch
    if (batch.events.length === 0 && batch.ends.length === 0) return
    this.#batch = { events: [], ends: [] }
    try {
      this.#o.store.commit(batch)
    } catch (err) {
      // Nothing is dropped: the batch goes back in front of what came since, and is tried
      // again; listeners hear of none of it until it is stored.
      this.#o.log.error({ err, events: batch.events.length }, 'cannot store events; retrying')
      this.#batch = { events: [...batch.events, ...this.#batch.events], ends: [...batch.ends, ...this.#batch.ends] }
      if (!this.#closed && !this.#retryTimer) {
        this.#retryTimer = setTimeout(() => {
          this.#retryTimer = undefined
          this.flush()
        }, 1000)
      }
      return
    }
    for (const { event } of batch.events) {
      const set = this.#listeners.get(event.jobId)
      if (set) for (const fn of [...set]) fn(event)
    }
  }

  /** Resolves and classifies a request without running anything. */
  plan(request: JobRequest, nodes?: string[]): JobPlan {
    this.#checkWarm()
    return summarisePlan(planJob(request, this.#o.presence.nodes(), nodes), request)
  }

  /**
   * Validated request in, stored job out; dispatch continues in the background. `nodes`
   * restricts the targets to a snapshot (a re-run); `rerunOf` links the new job to the old.
   */
  submit(request: JobRequest, opts: { nodes?: string[]; rerunOf?: string } = {}): { jobId: string; nodes: string[] } {
    this.#checkWarm()
    const plan = planJob(request, this.#o.presence.nodes(), opts.nodes)
    checkConfirmation(plan, request)
    const targets = plan.targets
    const now = Date.now()
    const jobId = newJobId(now)
    const job = this.#newActive(jobId, request, now, 0)
    const canary = request.rollout.canary > 0 && request.rollout.canary < targets.length ? request.rollout.canary : 0
    job.phases = canary > 0 ? [targets.slice(0, canary).map((t) => t.id), targets.slice(canary).map((t) => t.id)] : [targets.map((t) => t.id)]
    job.maxErrors = request.rollout.maxErrors === undefined ? null : resolveCount(request.rollout.maxErrors, targets.length)
    targets.forEach((t, i) =>
      this.#setNode(job, t.id, { region: t.region, state: 'pending', phase: canary > 0 && i >= canary ? 1 : 0, agentless: t.executor === 'ssh' }),
    )
    this.#o.store.createJob({
      id: jobId,
      request,
      createdAt: now,
      nodes: targets.map((t) => ({ node: t.id, region: t.region })),
      rerunOf: opts.rerunOf ?? null,
    })
    this.#active.set(jobId, job)
    this.#o.log.child({ jobId }).info({ nodes: targets.length, targets: request.targets, op: request.operation.type, risk: plan.risk.class, rerunOf: opts.rerunOf }, 'job submitted')
    const n = targets.length
    this.#append(job, {
      jobId,
      ts: now,
      kind: 'job.submitted',
      operation: request.operation,
      targets: request.targets,
      rollout: request.rollout,
      nodes: n,
      human: `job ${jobId}: ${describeOperation(request.operation)} on ${n} node${n === 1 ? '' : 's'} (targets ${opts.rerunOf ? `re-run of ${opts.rerunOf}` : request.targets})`,
    })
    for (const t of targets) if (!t.online) this.#finishNode(job, t.id, 'error', 'offline')
    if (request.rollout.deadlineMs !== undefined) {
      const timer = setTimeout(() => this.#stop(job, 'job deadline passed', 'timeout'), request.rollout.deadlineMs)
      timer.unref()
      job.timers.push(timer)
    }
    if (this.#active.has(jobId)) this.#nextPhase(job)
    return { jobId, nodes: targets.map((t) => t.id) }
  }

  /** Hands the next phase's pending nodes to their regions' hives, or ends the job's dispatching. */
  #nextPhase(job: ActiveJob) {
    const phase = job.nextPhase
    const ids = job.phases[phase]
    if (!ids || job.stopReason !== null) return
    job.nextPhase++
    const isCanary = phase === 0 && job.phases.length > 1
    if (isCanary) {
      this.#append(job, { jobId: job.id, ts: Date.now(), kind: 'job.canary', state: 'running', nodes: ids.length, human: `canary: ${ids.length} node${ids.length === 1 ? '' : 's'} first, the rest only if all are ok` })
    }
    const byRegion = new Map<string, string[]>()
    for (const id of ids) {
      const entry = job.nodes.get(id)
      if (!entry || entry.state !== 'pending') continue
      const list = byRegion.get(entry.region) ?? []
      list.push(id)
      byRegion.set(entry.region, list)
    }
    const log = this.#o.log.child({ jobId: job.id })
    for (const [region, nodes] of byRegion) {
      this.#dispatch(job, phase, region, nodes, log).catch((err: unknown) => log.error({ err, region }, 'dispatch to region failed'))
    }
    // A phase whose nodes all ended already (offline) moves on at once.
    this.#phaseDone(job)
  }

  async #dispatch(job: ActiveJob, phase: number, region: string, nodes: string[], log: Logger): Promise<void> {
    const r = job.request.rollout
    const share: HiveJob = {
      jobId: job.id,
      phase,
      region,
      nodes,
      agentless: nodes.filter((id) => job.nodes.get(id)?.agentless),
      operation: job.request.operation,
      concurrency: resolveCount(r.concurrency, nodes.length),
      maxErrors: job.maxErrors,
      errorsSoFar: job.errors,
      timeoutMs: r.timeoutMs,
      deliveryTimeoutMs: r.deliveryTimeoutMs,
      outputCapBytes: job.request.outputCapBytes,
    }
    let cause: string
    try {
      const reply = Ack.safeParse(await this.#o.bus.request(subjects.hiveJobs(region), share, { timeoutMs: this.#o.hiveAckTimeoutMs }))
      if (reply.success && reply.data.accepted) {
        if (!this.#active.has(job.id)) return
        for (const n of nodes) {
          const e = job.nodes.get(n)
          if (e) e.hive = reply.data.by
        }
        this.#append(job, { jobId: job.id, ts: Date.now(), kind: 'job.region', region, nodes: nodes.length, hive: reply.data.by, human: `region ${region}: ${nodes.length} node${nodes.length === 1 ? '' : 's'} handed to hive ${reply.data.by}` })
        // A stop that came while the share was on its way: the hive may have missed it.
        if (job.control) this.#publishControl(job, job.control)
        return
      }
      cause = reply.success ? `hive refused the job: ${reply.data.reason ?? 'no reason given'}` : 'hive sent a malformed acknowledgement'
    } catch (err) {
      cause = isApiaryError(err, 'no_responders') || isApiaryError(err, 'timeout') ? `no hive for region ${region}` : `cannot reach the hive of region ${region}`
      if (!isApiaryError(err, 'no_responders')) log.warn({ err, region }, 'dispatch to hive failed')
    }
    log.warn({ region, cause }, 'region not dispatched')
    for (const n of nodes) this.#finishNode(job, n, 'error', cause)
  }

  /** A node reaches a final state from the queen's side (offline, no hive, lost, not dispatched). */
  #finishNode(job: ActiveJob, node: string, state: FinalState, cause: string) {
    const cur = job.nodes.get(node)
    if (!cur || isFinal(cur.state)) return
    this.ingest(notRunEvent(job.id, node, state, cause))
  }

  /** Takes one event from a producer. Events for unknown jobs or nodes, or after a node's end, are dropped. */
  ingest(ev: WireEvent): void {
    const job = this.#active.get(ev.jobId)
    if (!job) {
      this.#o.log.debug({ jobId: ev.jobId, kind: ev.kind }, 'event for a job that is not running')
      return
    }
    switch (ev.kind) {
      case 'job.region':
        this.#append(job, ev)
        return
      case 'node.started':
      case 'node.output':
      case 'node.finished':
        break
      default:
        this.#o.log.warn({ jobId: ev.jobId, kind: ev.kind }, 'dropped a job event only the queen may emit')
        return
    }
    const cur = job.nodes.get(ev.node)
    if (!cur) {
      this.#o.log.warn({ jobId: ev.jobId, node: ev.node, kind: ev.kind }, 'dropped an event for a node that is not a target')
      return
    }
    if (isFinal(cur.state)) {
      this.#o.log.debug({ jobId: ev.jobId, node: ev.node, kind: ev.kind }, 'dropped an event after the node ended')
      return
    }
    if (ev.kind === 'node.output') {
      this.#append(job, ev)
      return
    }
    if (ev.kind === 'node.started') {
      this.#setNode(job, ev.node, { ...cur, state: 'running' })
      this.#append(job, ev, { node: ev.node, update: { state: 'running' } })
      return
    }
    this.#setNode(job, ev.node, { ...cur, state: ev.state })
    const { jobId: _j, ts: _t, kind: _k, node: _n, human: _h, ...outcome } = ev
    this.#append(job, ev, { node: ev.node, update: outcome })
    if (spendsErrorBudget(ev.state)) {
      job.errors++
      if (job.maxErrors !== null && job.errors >= job.maxErrors) this.#stop(job, `max errors reached (${job.errors} of ${job.maxErrors} allowed)`, 'halt')
    }
    this.#phaseDone(job)
    if (job.open === 0) this.#finish(job)
  }

  /** Right after a restart the node list may be incomplete: a selector must not silently miss nodes. */
  #checkWarm() {
    const warm = this.#o.presence.warmingUp()
    if (!warm) return
    throw new ApiaryError(
      'unavailable',
      `the queen restarted and is waiting for ${warm.waiting} known node${warm.waiting === 1 ? '' : 's'} to report (at most ${Math.ceil(warm.leftMs / 1000)} s more); try again then`,
    )
  }

  /** When every node of the dispatched phases has ended: judge the canary, start the next phase. */
  #phaseDone(job: ActiveJob) {
    const current = job.nextPhase - 1
    if (current < 0 || job.nextPhase >= job.phases.length || job.stopReason !== null) return
    const ids = job.phases[current]!
    if (!ids.every((id) => isFinal(job.nodes.get(id)!.state))) return
    const notOk = ids.filter((id) => job.nodes.get(id)!.state !== 'ok').length
    if (notOk > 0) {
      this.#append(job, { jobId: job.id, ts: Date.now(), kind: 'job.canary', state: 'failed', nodes: ids.length, human: `canary failed: ${notOk} of ${ids.length} not ok` })
      this.#stop(job, `canary failed (${notOk} of ${ids.length} not ok)`, 'halt')
      return
    }
    this.#append(job, { jobId: job.id, ts: Date.now(), kind: 'job.canary', state: 'passed', nodes: ids.length, human: `canary passed: ${ids.length} ok; rolling out to the rest` })
    this.#nextPhase(job)
  }

  /**
   * Stops the job's dispatching (`halt`) or also what runs (`cancel`, `timeout`): the hives
   * skip what they have not dispatched, the queen skips the phases it has not handed out.
   */
  #stop(job: ActiveJob, reason: string, how: 'halt' | 'cancel' | 'timeout') {
    if (!this.#active.has(job.id)) return
    const stopping = how !== 'halt'
    if (job.stopReason !== null && (!stopping || job.cancelled)) return
    const first = job.stopReason === null
    if (first) job.stopReason = reason
    if (stopping) job.cancelled = how === 'cancel' || job.cancelled
    if (how === 'cancel') this.#append(job, { jobId: job.id, ts: Date.now(), kind: 'job.cancelling', reason, human: `job ${job.id}: cancelling (${reason})` })
    else this.#append(job, { jobId: job.id, ts: Date.now(), kind: 'job.halted', reason, human: `job ${job.id}: ${stopping ? 'stopping' : 'dispatching stopped'}: ${reason}` })
    this.#o.log.info({ jobId: job.id, reason, how }, 'job stopping')
    this.#publishControl(job, { jobId: job.id, action: stopping ? 'cancel' : 'halt', reason, outcome: how === 'timeout' ? 'timeout' : 'cancelled' })
    for (const phase of job.phases.slice(job.nextPhase)) for (const id of phase) this.#finishNode(job, id, 'skipped', `not dispatched: ${reason}`)
    job.nextPhase = job.phases.length
    if (stopping) {
      // Nodes nobody confirms in time: never dispatched → skipped; started → outcome unknown → lost.
      const timer = setTimeout(() => {
        for (const [node, s] of job.nodes) {
          if (s.state === 'pending') this.#finishNode(job, node, 'skipped', `not dispatched: ${reason}`)
          else if (s.state === 'running') this.#finishNode(job, node, 'lost', `no confirmation after: ${reason}`)
        }
      }, this.#o.cancelGraceMs)
      timer.unref()
      job.timers.push(timer)
    }
  }

  #publishControl(job: ActiveJob, control: Control) {
    job.control = control
    try {
      this.#o.bus.publish(subjects.control(job.id), control)
    } catch (err) {
      this.#o.log.error({ err, jobId: job.id }, 'cannot publish a control message')
    }
  }

  /** Asks hives and workers to stop the job; the job ends when each node confirms. */
  cancel(jobId: string, reason: string): { state: JobState } {
    const job = this.#active.get(jobId)
    if (!job) {
      const stored = this.#o.store.getJob(jobId)
      if (!stored) throw new ApiaryError('not_found', `job ${jobId} does not exist`, 'jobId')
      return { state: stored.state }
    }
    this.#stop(job, reason, 'cancel')
    return { state: 'running' }
  }

  /**
   * Ends what nobody will report: started nodes whose worker went offline are `lost` (their
   * outcome is unknown); nodes a hive took but had not dispatched when it went offline are
   * `skipped` (the worker of a node it did dispatch reports to the queen directly).
   */
  sweepLost(): void {
    for (const job of [...this.#active.values()]) {
      for (const [node, s] of job.nodes) {
        if (s.state === 'running') {
          const info = this.#o.presence.node(node)
          if (info && !info.online) this.#finishNode(job, node, 'lost', 'worker stopped heartbeating')
        } else if (s.state === 'pending' && s.hive !== undefined && this.#o.presence.hiveOnline(s.hive) === false) {
          this.#finishNode(job, node, 'skipped', `not dispatched: hive ${s.hive} stopped heartbeating`)
        }
      }
    }
  }

  #finish(job: ActiveJob) {
    if (!this.#active.delete(job.id)) return
    for (const t of job.timers) clearTimeout(t)
    const groups = new Map<string, ResultGroup>()
    // Node results are read from the store: flush first so the last ones are there.
    this.flush()
    for (const r of this.#o.store.nodes(job.id)) {
      if (!isFinal(r.state)) continue
      const g = { state: r.state, exitCode: r.exitCode, digest: r.digest ?? '', cause: r.cause }
      const key = groupKey(g)
      const existing = groups.get(key)
      if (existing) {
        existing.count++
        existing.nodes.push(r.node)
      } else groups.set(key, { ...g, count: 1, nodes: [r.node] })
    }
    const counts: Partial<Record<NodeState, number>> = {}
    for (const [s, n] of job.counts) if (n > 0) counts[s] = n
    const state: JobState = job.cancelled ? 'cancelled' : counts.ok === job.nodes.size ? 'ok' : 'failed'
    const finishedAt = Date.now()
    const durationMs = finishedAt - job.createdAt
    this.#append(job, {
      jobId: job.id,
      ts: finishedAt,
      kind: 'job.finished',
      state,
      counts,
      groups: sortGroups([...groups.values()]),
      durationMs,
      stopReason: job.stopReason,
      human: `job ${job.id} ${state} in ${durationText(durationMs)}: ${countsLine(counts)}${job.stopReason ? ` (stopped: ${job.stopReason})` : ''}`,
    })
    this.#batch.ends.push({ jobId: job.id, state, finishedAt, counts, stopReason: job.stopReason })
    this.#o.log.info({ jobId: job.id, state, counts, durationMs, stopReason: job.stopReason }, 'job finished')
  }

  close() {
    this.flush()
    this.#closed = true
    clearTimeout(this.#retryTimer)
    for (const job of this.#active.values()) for (const t of job.timers) clearTimeout(t)
  }
}
