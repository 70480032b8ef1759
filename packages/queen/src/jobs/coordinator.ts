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
  type JobRequest,
  type JobState,
  type Logger,
  newJobId,
  type NodeState,
  type ResultGroup,
  subjects,
  WireEvent,
} from '@apiary/shared'
import type { Presence } from '../presence/presence.ts'
import type { JobStore, NodeUpdate } from '../store/store.ts'
import { resolveTargets } from '../targets/resolve.ts'
import { countsLine, durationText, groupKey, sortGroups } from './human.ts'

interface ActiveJob {
  id: string
  request: JobRequest
  createdAt: number
  nodes: Map<string, { region: string; state: NodeState }>
  counts: Map<NodeState, number>
  open: number
  cancelReason: string | null
  cancelTimer: NodeJS.Timeout | undefined
}

export interface CoordinatorOptions {
  bus: Bus
  store: JobStore
  presence: Presence
  log: Logger
  /** How long a hive has to take a job before its region counts as having none. */
  hiveAckTimeoutMs: number
  /** After a cancel, how long to wait for confirmations before closing the job anyway. */
  cancelGraceMs: number
}

type Listener = (ev: JobEvent) => void

/**
 * The queen's job logic: submits jobs to the hives, ingests every event into the store with
 * its sequence number, tracks each node to exactly one final state, and finishes the job.
 */
export class Coordinator {
  readonly #active = new Map<string, ActiveJob>()
  readonly #listeners = new Map<string, Set<Listener>>()
  readonly #o: CoordinatorOptions

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
      const summary = this.#o.store.getJob(id)
      if (!summary) continue
      const job = this.#newActive(id, { operation: summary.operation, targets: summary.targets, rollout: summary.rollout, outputCapBytes: summary.outputCapBytes }, summary.createdAt)
      for (const n of this.#o.store.nodes(id)) this.#setNode(job, n.node, n.region, n.state)
      this.#active.set(id, job)
      this.#o.log.info({ jobId: id, open: job.open }, 'resumed a running job')
      if (job.open === 0) this.#finish(job)
    }
  }

  #newActive(id: string, request: JobRequest, createdAt: number): ActiveJob {
    return { id, request, createdAt, nodes: new Map(), counts: new Map(), open: 0, cancelReason: null, cancelTimer: undefined }
  }

  #setNode(job: ActiveJob, node: string, region: string, state: NodeState) {
    const prev = job.nodes.get(node)
    if (prev) {
      job.counts.set(prev.state, (job.counts.get(prev.state) ?? 1) - 1)
      if (!isFinal(prev.state)) job.open--
    }
    job.nodes.set(node, { region, state })
    job.counts.set(state, (job.counts.get(state) ?? 0) + 1)
    if (!isFinal(state)) job.open++
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

  isActive(jobId: string): boolean {
    return this.#active.has(jobId)
  }

  #append(ev: WireEvent, nodeUpdate?: { node: string; update: NodeUpdate }): JobEvent {
    const stored = this.#o.store.append(ev, nodeUpdate)
    const set = this.#listeners.get(ev.jobId)
    if (set) for (const fn of [...set]) fn(stored)
    return stored
  }

  /** Validated request in, stored job out; dispatch to the hives continues in the background. */
  submit(request: JobRequest): { jobId: string; nodes: string[] } {
    const known = this.#o.presence.nodes()
    const targets = resolveTargets(request.targets, known)
    if (targets.length === 0) {
      throw new ApiaryError(
        'invalid_input',
        `targets: "${request.targets}" matches no node (${known.length} known; see GET /v1/nodes)`,
        'targets',
      )
    }
    const now = Date.now()
    const jobId = newJobId(now)
    const job = this.#newActive(jobId, request, now)
    for (const t of targets) this.#setNode(job, t.id, t.region, 'pending')
    this.#o.store.createJob({ id: jobId, request, createdAt: now, nodes: targets.map((t) => ({ node: t.id, region: t.region })) })
    this.#active.set(jobId, job)
    const log = this.#o.log.child({ jobId })
    log.info({ nodes: targets.length, targets: request.targets, op: request.operation.type }, 'job submitted')
    this.#append({
      jobId,
      ts: now,
      kind: 'job.submitted',
      operation: request.operation,
      targets: request.targets,
      rollout: request.rollout,
      nodes: targets.length,
      human: `job ${jobId}: ${describeOperation(request.operation)} on ${targets.length} node${targets.length === 1 ? '' : 's'} (targets ${request.targets})`,
    })
    const byRegion = new Map<string, string[]>()
    for (const t of targets) {
      if (!t.online) {
        this.#finishNode(job, t.id, { state: 'error', cause: 'offline' })
        continue
      }
      const list = byRegion.get(t.region) ?? []
      list.push(t.id)
      byRegion.set(t.region, list)
    }
    for (const [region, nodes] of byRegion) {
      this.#dispatch(job, region, nodes, log).catch((err: unknown) => log.error({ err, region }, 'dispatch to region failed'))
    }
    if (job.open === 0) this.#finish(job)
    return { jobId, nodes: targets.map((t) => t.id) }
  }

  async #dispatch(job: ActiveJob, region: string, nodes: string[], log: Logger): Promise<void> {
    const share: HiveJob = {
      jobId: job.id,
      region,
      nodes,
      operation: job.request.operation,
      rollout: job.request.rollout,
      outputCapBytes: job.request.outputCapBytes,
    }
    let cause: string
    try {
      const reply = Ack.safeParse(await this.#o.bus.request(subjects.hiveJobs(region), share, { timeoutMs: this.#o.hiveAckTimeoutMs }))
      if (reply.success && reply.data.accepted) {
        if (!this.#active.has(job.id)) return
        this.#append({ jobId: job.id, ts: Date.now(), kind: 'job.region', region, nodes: nodes.length, hive: reply.data.by, human: `region ${region}: ${nodes.length} node${nodes.length === 1 ? '' : 's'} handed to hive ${reply.data.by}` })
        return
      }
      cause = reply.success ? `hive refused the job: ${reply.data.reason ?? 'no reason given'}` : 'hive sent a malformed acknowledgement'
    } catch (err) {
      cause = isApiaryError(err, 'no_responders') || isApiaryError(err, 'timeout') ? `no hive for region ${region}` : `cannot reach the hive of region ${region}`
      if (!isApiaryError(err, 'no_responders')) log.warn({ err, region }, 'dispatch to hive failed')
    }
    log.warn({ region, cause }, 'region not dispatched')
    for (const n of nodes) this.#finishNode(job, n, { state: 'error', cause })
  }

  /** A node reaches a final state from the queen's side (offline, no hive, lost, cancel grace). */
  #finishNode(job: ActiveJob, node: string, r: { state: FinalState; cause: string }) {
    const cur = job.nodes.get(node)
    if (!cur || isFinal(cur.state)) return
    this.ingest({
      jobId: job.id,
      ts: Date.now(),
      kind: 'node.finished',
      node,
      state: r.state,
      exitCode: null,
      signal: null,
      cause: r.cause,
      durationMs: null,
      bytes: 0,
      truncated: false,
      digest: null,
      human: `${node}: ${r.state}: ${r.cause}`,
    })
  }

  /** Takes one event from a producer. Events for unknown jobs or nodes, or after a node's end, are dropped. */
  ingest(ev: WireEvent): void {
    const job = this.#active.get(ev.jobId)
    if (!job) {
      this.#o.log.debug({ jobId: ev.jobId, kind: ev.kind }, 'event for a job that is not running')
      return
    }
    switch (ev.kind) {
      case 'job.submitted':
      case 'job.finished':
      case 'job.cancelling':
        this.#o.log.warn({ jobId: ev.jobId, kind: ev.kind }, 'dropped a job event only the queen may emit')
        return
      case 'job.region':
        this.#append(ev)
        return
      case 'node.started':
      case 'node.output':
      case 'node.finished': {
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
          this.#append(ev)
          return
        }
        if (ev.kind === 'node.started') {
          this.#setNode(job, ev.node, cur.region, 'running')
          this.#append(ev, { node: ev.node, update: { state: 'running' } })
          return
        }
        this.#setNode(job, ev.node, cur.region, ev.state)
        this.#append(ev, {
          node: ev.node,
          update: {
            state: ev.state,
            exitCode: ev.exitCode,
            signal: ev.signal,
            cause: ev.cause,
            durationMs: ev.durationMs,
            bytes: ev.bytes,
            truncated: ev.truncated,
            digest: ev.digest,
            result: ev.result,
          },
        })
        if (job.open === 0) this.#finish(job)
      }
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
    if (job.cancelReason === null) {
      job.cancelReason = reason
      this.#append({ jobId, ts: Date.now(), kind: 'job.cancelling', reason, human: `job ${jobId}: cancelling (${reason})` })
      const control: Control = { jobId, action: 'cancel', reason }
      this.#o.bus.publish(subjects.control(jobId), control)
      this.#o.log.info({ jobId, reason }, 'job cancel requested')
      // Nodes nobody confirms in time: never dispatched → skipped; started → outcome unknown → lost.
      job.cancelTimer = setTimeout(() => {
        for (const [node, s] of job.nodes) {
          if (s.state === 'pending') this.#finishNode(job, node, { state: 'skipped', cause: 'cancelled before dispatch' })
          else if (s.state === 'running') this.#finishNode(job, node, { state: 'lost', cause: 'no confirmation of the cancel' })
        }
      }, this.#o.cancelGraceMs)
      job.cancelTimer.unref()
    }
    return { state: 'running' }
  }

  /** Marks started nodes whose worker went offline as lost: their outcome is unknown. */
  sweepLost(): void {
    for (const job of this.#active.values()) {
      for (const [node, s] of job.nodes) {
        if (s.state !== 'running') continue
        const info = this.#o.presence.node(node)
        if (info && !info.online) this.#finishNode(job, node, { state: 'lost', cause: 'worker stopped heartbeating' })
      }
    }
  }

  #finish(job: ActiveJob) {
    if (!this.#active.delete(job.id)) return
    clearTimeout(job.cancelTimer)
    const results = this.#o.store.nodes(job.id)
    const groups = new Map<string, ResultGroup>()
    for (const r of results) {
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
    const state: JobState = job.cancelReason !== null ? 'cancelled' : counts.ok === job.nodes.size ? 'ok' : 'failed'
    const finishedAt = Date.now()
    const durationMs = finishedAt - job.createdAt
    this.#o.store.finishJob(job.id, state, finishedAt, counts)
    this.#append({
      jobId: job.id,
      ts: finishedAt,
      kind: 'job.finished',
      state,
      counts,
      groups: sortGroups([...groups.values()]),
      durationMs,
      human: `job ${job.id} ${state} in ${durationText(durationMs)}: ${countsLine(counts)}`,
    })
    this.#o.log.info({ jobId: job.id, state, counts, durationMs }, 'job finished')
  }

  close() {
    for (const job of this.#active.values()) clearTimeout(job.cancelTimer)
  }
}
