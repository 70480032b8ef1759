import {
  ApiaryError,
  BODY_LIMITS,
  type BusMessage,
  clip,
  decode,
  digestOf,
  type Durable,
  errorMessage,
  type FinalState,
  hasSecrets,
  joinSecrets,
  type JobPlan,
  type JobRequest,
  type JobRequestView,
  type JobState,
  type JobSummary,
  MAX_CAUSE,
  type Operation,
  redactOperation,
  splitSecrets,
  type Logger,
  newJobId,
  parseSubject,
  type StreamMessage,
  type StreamReader,
  subjects,
  WireEvent,
} from '@apiary/shared'
import { rateLimitedWarning, warnRateLimited } from '@apiary/shared/runtime'
import type { Presence } from '../presence/presence.ts'
import type { JobStore } from '../store/store.ts'
import type { EventLog } from './event-log.ts'
import type { HiveDispatch } from './hive-dispatch.ts'
import type { SecretSealer } from './sealed-secrets.ts'
import { type Effect, JobRun, type PresenceView, type RunSnapshot } from './job-run.ts'
import { checkConfirmation, type Plan, planJob, summarisePlan } from './plan.ts'

export interface SubmitOptions {
  /** Restricts the targets to a snapshot (a re-run). */
  nodes?: string[]
  /** The job this one re-runs. */
  rerunOf?: string
  /** Recorded with the job. */
  submittedBy?: string
  /** Sees the resolved plan before anything is stored; throws to refuse it. */
  authorize?: (plan: Plan) => void
  /** The request's `Idempotency-Key`: the same one again from the same user answers with the job it made. */
  requestKey?: string
}

export interface CoordinatorOptions {
  /** Where node events come from: the event stream, through the durable consumer `queen`. */
  durable: Durable
  /** How long an event handed to a leader that died is held before the next leader gets it. */
  ackWaitMs?: number
  /** How often the leader trims what it applied from the events stream (default `TRIM_EVENTS_EVERY_MS`). */
  trimEveryMs?: number
  store: JobStore
  presence: Presence
  log: Logger
  events: EventLog
  dispatch: HiveDispatch
  /** Seals a new job's env values and stdin, opens them to dispatch, forgets them when the job ends. */
  sealer: SecretSealer
  /** After a cancel or the job deadline, how long to wait for confirmations before closing anyway. */
  cancelGraceMs: number
  /** How long after a failed re-offer of a share the next is tried. */
  reofferRetryMs?: number
}

/** What a hive may say about a node of its region: never dispatched, undelivered or refused, lost. */
const HIVE_VERDICTS = new Set<FinalState>(['skipped', 'error', 'lost'])

/** How often the leader trims the events stream of what it applied. */
export const TRIM_EVENTS_EVERY_MS = 5000

/** The durable consumer of the event stream that the leading queen reads. */
export const EVENTS_CONSUMER = 'queen'

/**
 * Runs the queen's jobs while it leads: plans and submits them, feeds each running job (a
 * `JobRun`, pure policy) the events, answers and time it needs, and carries out what it
 * decides — events into the log, shares and controls to the hives, those only once the state
 * that asked for them is stored (a queen that dies in between leaves nothing done that the
 * next leader does not know of). Holds one timer per running job. A standby holds none.
 */
export class Coordinator {
  readonly #runs = new Map<string, { run: JobRun; timer?: NodeJS.Timeout; wakeAt?: number | null }>()
  readonly #o: CoordinatorOptions
  readonly #presenceView: PresenceView
  /** Each running job's whole operation, once this queen has it (a run holds only its view). */
  readonly #operations = new Map<string, Promise<Operation>>()
  /** The sealed env values and stdin of the jobs this queen resumed, opened when a share needs them. */
  readonly #sealed = new Map<string, string>()
  /** Submits with an `Idempotency-Key` being stored, by `<user>/<key>`. */
  readonly #keyed = new Map<string, { digest: string; made: Promise<{ jobId: string; nodes: string[] }> }>()
  /** Runs whose state changed since the last commit: their snapshots go with the next. */
  readonly #dirty = new Set<JobRun>()
  #leading = false
  #consumer: StreamReader | undefined
  #trimTimer: NodeJS.Timeout | undefined
  #closed = false
  /** Events a producer may not send: one log line per interval however many come. */
  readonly #dropped: ReturnType<typeof rateLimitedWarning>

  constructor(opts: CoordinatorOptions) {
    this.#o = opts
    this.#dropped = rateLimitedWarning(opts.log, 'dropped an event')
    this.#presenceView = {
      workerOffline: (node) => opts.presence.workerGone(node),
      hiveGone: (hive) => opts.presence.hiveGone(hive),
    }
  }

  /** Whether this queen leads now. */
  get leading(): boolean {
    return this.#leading
  }

  /** The state of each run changed since the last call, for the next commit. */
  dirtyRuns(): Array<{ jobId: string; run: RunSnapshot }> {
    const out: Array<{ jobId: string; run: RunSnapshot }> = []
    for (const run of this.#dirty) if (!run.finished) out.push({ jobId: run.id, run: run.snapshot() })
    this.#dirty.clear()
    return out
  }

  /**
   * Leads: goes on with the jobs the index says are running (the index must have caught up
   * with the job log first), then takes events from the stream where the last leader left off.
   */
  lead(): void {
    if (this.#leading || this.#closed) return
    this.#leading = true
    this.#recover()
    // Handed out again: after a leader died between storing an event's effects and acknowledging
    // it, or to this one while its write was slow (past the ack wait). Applied once either way.
    // Everything at or below `applied` was applied: the consumer hands messages out without a
    // gap (it starts again from its ack floor when one went missing). A node's events stored out
    // of their task's order are put back in it by its run (`NodeOrder`), not here.
    let applied = this.#o.store.position().eventsSeq
    this.#consumer = this.#o.durable.consume(
      'events',
      EVENTS_CONSUMER,
      (m) => {
        if (!this.#leading) return
        if (m.seq > applied) {
          applied = m.seq
          this.#fromStream(m)
        }
        this.#o.events.source(m.seq, () => m.ack())
      },
      { ackWaitMs: this.#o.ackWaitMs ?? 30_000, maxBytes: BODY_LIMITS.event },
    )
    this.#trimEvents(applied)
  }

  /**
   * Now and then, while it leads, removes from the events stream what this queen applied and
   * stored (the index's position): the stream holds only what is still to be consumed, so that
   * when full it refuses new events (their producers retry) rather than dropping unconsumed ones.
   */
  #trimEvents(trimmed: number): void {
    this.#trimTimer = setTimeout(() => {
      if (!this.#leading) return
      const upTo = this.#o.store.position().eventsSeq
      if (upTo <= trimmed) return this.#trimEvents(trimmed)
      this.#o.durable.trimEvents(upTo + 1).then(
        () => this.#leading && this.#trimEvents(upTo),
        (err: unknown) => {
          warnRateLimited(this.#o.log, 'cannot trim the events stream of what was applied', { err })
          if (this.#leading) this.#trimEvents(trimmed)
        },
      )
    }, this.#o.trimEveryMs ?? TRIM_EVENTS_EVERY_MS)
    this.#trimTimer.unref()
  }

  /**
   * Takes no more events off the stream, still leading: what it applied can then be stored
   * with the runs' state before `stepDown` drops them.
   */
  async stopTaking(): Promise<void> {
    const consumer = this.#consumer
    this.#consumer = undefined
    await consumer?.stop()
  }

  /** Stops leading: takes no more events, drops the runs (the next leader has their state), acts on nothing. */
  async stepDown(): Promise<void> {
    if (!this.#leading) return
    this.#leading = false
    const taking = this.stopTaking()
    clearTimeout(this.#trimTimer)
    for (const { timer } of this.#runs.values()) clearTimeout(timer)
    this.#runs.clear()
    this.#operations.clear()
    this.#sealed.clear()
    this.#dirty.clear()
    await taking
  }

  /** An event off the stream: which kind of producer sent it is in its subject. */
  #fromStream(m: StreamMessage): void {
    const kind = m.subject.split('.')[1]
    const from = kind === 'ev' ? 'agent' : kind === 'sev' ? 'ssh' : kind === 'hev' ? 'hive' : undefined
    if (!from) return this.#o.log.debug({ subject: m.subject }, 'dropped a stream message of no producer')
    this.#fromBus({ subject: m.subject, data: m.data, expectsReply: false, respond: () => {} }, from)
  }

  /**
   * An event as it came over the bus, taken only from whom it may come from: a node's events
   * on that node's own subject (the broker lets only its identity publish there; an agent
   * node's from its agent, an agentless node's from its region's SSH workers), a hive's
   * verdicts on nodes of its own region, never a `job.*` event, which only the queen writes.
   */
  #fromBus(msg: BusMessage, from: 'agent' | 'ssh' | 'hive'): void {
    const log = this.#o.log
    const toks = parseSubject(msg.subject) ?? []
    const region = toks[1]
    const node = from === 'hive' ? undefined : toks[2]
    const jobId = from === 'hive' ? toks[2] : toks[3]
    // Events of no running job (late, or a flood of made-up ids) cost no validation.
    if (jobId === undefined || !this.#runs.has(jobId)) return log.debug({ subject: msg.subject }, 'event for a job that is not running')
    const ev = decode(WireEvent, msg, log)
    if (!ev) return
    const drop = (why: string) => this.#dropped.note({ subject: msg.subject, jobId: ev.jobId, kind: ev.kind, node: 'node' in ev ? ev.node : undefined, why })
    if (!ev.kind.startsWith('node.')) return drop('only the queen writes job events')
    if (ev.jobId !== jobId) return drop('published on another job’s subject')
    const evNode = (ev as { node: string }).node
    if (node !== undefined && evNode !== node) return drop('published on another node’s subject')
    const entry = this.#runs.get(ev.jobId)
    if (!entry) return
    const target = entry.run.target(evNode)
    if (!target) return drop('the node is not a target of the job')
    if (target.region !== region) return drop(`the node is in region ${target.region}`)
    if (from === 'agent' && target.agentless) return drop('the node is agentless: its events come from an SSH worker')
    if (from === 'ssh' && !target.agentless) return drop('the node has an agent: its events come from the agent')
    if (from === 'hive' && !(ev.kind === 'node.finished' && HIVE_VERDICTS.has(ev.state))) return drop('a hive only reports nodes it never ran or lost')
    if (from === 'hive' && ev.kind === 'node.finished' && entry.run.reofferedSince(evNode, ev.attempt ?? 0)) return drop('a verdict of an earlier attempt of its share: it was offered again since')
    // A hive never ran the node: its verdict has no place among a task's steps, and no start.
    if (from === 'hive' && ev.kind === 'node.finished' && (ev.startedAt !== undefined || ev.step !== undefined)) {
      const { startedAt: _s, step: _n, ...verdict } = ev
      return this.ingest(verdict)
    }
    this.ingest(ev)
  }

  #recover() {
    const { store, presence } = this.#o
    for (const id of store.runningJobIds()) {
      const s = store.getJob(id)
      const state = store.runState(id)
      if (!s || !state) continue
      const request: JobRequestView = state.request
      if (state.sealed !== undefined) this.#sealed.set(id, state.sealed)
      const nodes = state.nodes.map((n) => ({ ...n, agentless: presence.isAgentless(n.node) }))
      this.#o.events.open(id, s.lastSeq)
      const cfg = { id, request, createdAt: s.createdAt, ...this.#runConfig() }
      const snapshot = state.run as RunSnapshot | null
      const { run, effects } = snapshot?.v === 1 ? JobRun.restore(cfg, snapshot, nodes, Date.now()) : JobRun.resume(cfg, nodes, Date.now())
      this.#runs.set(id, { run })
      this.#carryOut(run, effects)
    }
  }

  /** Resolves and classifies a request without running anything. */
  plan(request: JobRequest, nodes?: string[]): JobPlan {
    this.#checkWarm()
    return summarisePlan(planJob(request, this.#o.presence.nodes(), nodes), request)
  }

  /**
   * Validated request in, stored job out (in the job log and the index: it survives this
   * queen); dispatch continues in the background. `nodes` restricts the targets to a snapshot
   * (a re-run); `rerunOf` links the new job to the old; `submittedBy` is recorded with the job.
   * `authorize` sees the resolved plan before anything is stored and throws to refuse it: the
   * targets it judges are the ones that run. With `requestKey`, the same key from the same user
   * answers with the job it made (`replayed`), kept in the log and index with the job, so a new
   * leader knows it too; the same key with another request is a `conflict`.
   */
  async submit(request: JobRequest, opts: SubmitOptions = {}): Promise<{ jobId: string; nodes: string[]; replayed?: true }> {
    if (opts.requestKey === undefined) return this.#submit(request, opts)
    this.#checkLeader()
    // A key is the submitter's own: another user's same key is another request.
    const key = `${opts.submittedBy ?? ''}/${opts.requestKey}`
    const digest = digestOf({ request: { ...request, operation: redactOperation(request.operation) }, nodes: opts.nodes ?? null, rerunOf: opts.rerunOf ?? null })
    const replay = (jobId: string, made: string | null) => {
      if (made !== digest) throw new ApiaryError('conflict', `Idempotency-Key: already used for another request (job ${jobId}); a new request needs a new key`, 'Idempotency-Key')
      return { jobId, nodes: this.#o.store.nodes(jobId).map((n) => n.node), replayed: true as const }
    }
    // The same key again while the first is being stored here waits for it; one that failed is tried anew.
    const pending = this.#keyed.get(key)
    if (pending) {
      const first = await pending.made.catch(() => undefined)
      if (first) return replay(first.jobId, pending.digest)
    }
    const found = this.#o.store.jobByRequestKey(key)
    if (found) return replay(found.jobId, found.digest)
    const entry = { digest, made: this.#submit(request, { ...opts, requestKey: key, requestDigest: digest }) }
    this.#keyed.set(key, entry)
    try {
      return await entry.made
    } finally {
      if (this.#keyed.get(key) === entry) this.#keyed.delete(key)
    }
  }

  async #submit(request: JobRequest, opts: SubmitOptions & { requestDigest?: string }): Promise<{ jobId: string; nodes: string[] }> {
    this.#checkLeader()
    this.#checkWarm()
    const plan = planJob(request, this.#o.presence.nodes(), opts.nodes)
    opts.authorize?.(plan)
    checkConfirmation(plan, request)
    const now = Date.now()
    const jobId = newJobId(now)
    const targets = plan.targets
    // What is stored and logged is the operation's view and its secrets sealed; the whole
    // operation stays in this queen's memory while the job runs, to dispatch.
    const { view, secrets } = splitSecrets(request.operation)
    const stored: JobRequestView = { ...request, operation: view }
    const sealed = secrets === undefined ? undefined : await this.#o.sealer.seal(jobId, secrets)
    this.#checkLeader()
    this.#o.events.create({ id: jobId, request: stored, ...(sealed !== undefined ? { sealed } : {}), createdAt: now, nodes: targets.map((t) => ({ node: t.id, region: t.region })), rerunOf: opts.rerunOf ?? null, ...(opts.submittedBy ? { submittedBy: opts.submittedBy } : {}), ...(opts.requestKey !== undefined && opts.requestDigest !== undefined ? { requestKey: opts.requestKey, requestDigest: opts.requestDigest } : {}) })
    this.#o.log.child({ jobId }).info({ nodes: targets.length, targets: request.targets, op: request.operation.type, risk: plan.risk.class, rerunOf: opts.rerunOf }, 'job submitted')
    this.#o.events.open(jobId, 0)
    const { run, effects } = JobRun.submit(
      { id: jobId, request: stored, createdAt: now, ...this.#runConfig() },
      targets.map((t) => ({ id: t.id, region: t.region, online: t.online, ...(t.draining ? { draining: true } : {}), agentless: t.executor === 'ssh' })),
      opts.rerunOf ? { rerunOf: opts.rerunOf } : {},
      now,
    )
    this.#runs.set(jobId, { run })
    this.#operations.set(jobId, Promise.resolve(request.operation))
    this.#carryOut(run, effects)
    await this.#o.events.stored()
    return { jobId, nodes: targets.map((t) => t.id) }
  }

  /**
   * The operation a re-run of `job` runs: the original's, with the env values and stdin of
   * `given`. A job's are forgotten when it ends, so a re-run of one that had them must give
   * them again (`invalid_input` naming the field); while it runs, the leader still has them,
   * and gives them to a re-run by its submitter (`by`) that gives neither. `given.env` replaces
   * the whole environment.
   */
  async rerunOperation(job: JobSummary, given: { env?: Record<string, string> | undefined; stdin?: string | undefined }, by?: string): Promise<Operation> {
    const view = job.operation
    if (view.type !== 'exec') {
      const field = given.env !== undefined ? 'env' : given.stdin !== undefined ? 'stdin' : undefined
      if (field) throw new ApiaryError('invalid_input', `${field}: a ${view.type} operation takes no ${field}`, field)
      return view
    }
    const entry = this.#runs.get(job.id)
    // A running job's own env values and stdin go again only to its submitter, and only whole:
    // another user's re-run must give them (else it could read them, its own env steering the
    // command that reads the original stdin), and given ones are never mixed with kept ones.
    const reuse = by !== undefined && by === job.submittedBy && given.env === undefined && given.stdin === undefined
    const kept = reuse && hasSecrets(view) && entry ? await this.#operationOf(entry.run).catch(() => undefined) : undefined
    const original = kept?.type === 'exec' ? kept : undefined
    const { env: envView, stdinBytes, ...rest } = view
    const env = given.env ?? original?.env
    if (env === undefined && envView !== undefined && Object.keys(envView).length > 0) {
      throw new ApiaryError('invalid_input', `env: the original job's env values (${Object.keys(envView).join(', ')}) are not kept for this re-run (the job ended, or you did not submit it, or you gave stdin); give them again`, 'env')
    }
    const stdin = given.stdin ?? original?.stdin
    if (stdin === undefined && stdinBytes !== undefined) {
      throw new ApiaryError('invalid_input', `stdin: the original job's stdin (${stdinBytes} bytes) is not kept for this re-run (the job ended, or you did not submit it, or you gave env); give it again`, 'stdin')
    }
    return { ...rest, ...(env !== undefined ? { env } : envView !== undefined ? { env: {} } : {}), ...(stdin !== undefined ? { stdin } : {}) }
  }

  /** The run's whole operation: its view, with its secrets opened from where they are sealed when it has any. */
  #operationOf(run: JobRun): Promise<Operation> {
    let p = this.#operations.get(run.id)
    if (p) return p
    const view = run.request.operation
    p = hasSecrets(view) ? this.#unseal(run.id, view) : Promise.resolve(joinSecrets(view, undefined))
    this.#operations.set(run.id, p)
    // A failure is not kept: what asks next tries again.
    p.catch(() => this.#operations.get(run.id) === p && this.#operations.delete(run.id))
    return p
  }

  async #unseal(jobId: string, view: JobRun['request']['operation']): Promise<Operation> {
    const sealed = this.#sealed.get(jobId)
    if (sealed === undefined) throw new ApiaryError('not_found', `job ${jobId} has no sealed env values or stdin (it was stored before they were sealed)`)
    return joinSecrets(view, await this.#o.sealer.open(jobId, sealed))
  }

  #runConfig() {
    return { cancelGraceMs: this.#o.cancelGraceMs, ...(this.#o.reofferRetryMs !== undefined ? { reofferRetryMs: this.#o.reofferRetryMs } : {}) }
  }

  #checkLeader() {
    if (!this.#leading) throw new ApiaryError('not_leader', 'this queen is a standby: send writes to the leading queen')
  }

  /** Takes one event from a producer. Events for jobs that are not running are dropped. */
  ingest(ev: WireEvent): void {
    const entry = this.#runs.get(ev.jobId)
    if (!entry) {
      this.#o.log.debug({ jobId: ev.jobId, kind: ev.kind }, 'event for a job that is not running')
      return
    }
    this.#carryOut(entry.run, entry.run.onEvent(ev, Date.now()))
  }

  /** Asks hives and workers to stop the job; the job ends when each node confirms. */
  cancel(jobId: string, reason: string): { state: JobState } {
    this.#checkLeader()
    const entry = this.#runs.get(jobId)
    if (!entry) {
      const stored = this.#o.store.getJob(jobId)
      if (!stored) throw new ApiaryError('not_found', `job ${jobId} does not exist`, 'jobId')
      return { state: stored.state }
    }
    this.#carryOut(entry.run, entry.run.cancel(reason, Date.now()))
    return { state: 'running' }
  }

  /** Ends what nobody will report: see `JobRun.sweep`. */
  sweepLost(): void {
    for (const { run } of [...this.#runs.values()]) {
      const effects = run.sweep(this.#presenceView, Date.now())
      // A sweep that changed the run (a silent worker's deadline, a re-offer) is stored at once.
      this.#carryOut(run, effects, effects.length > 0)
    }
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

  /**
   * Carries a run's effects out; with `store`, its state is written at once even if no event
   * follows (what a sweep or a hive's answer changed: a new leader must have it). Without, it
   * goes with the next event's group.
   */
  #carryOut(run: JobRun, effects: Effect[], store = false) {
    // A closed or stepped-down coordinator acts on nothing: a late hive answer must not dispatch or control.
    if (this.#closed || !this.#leading) return
    const log = this.#o.log
    this.#dirty.add(run)
    if (store) this.#o.events.touch()
    // What goes out to hives waits until what asked for it is stored, and is dropped if this
    // queen is fenced off before that: the next leader decides again.
    const afterStored = (fn: () => void) => this.#o.events.stored().then(() => !this.#closed && this.#leading && fn(), () => {})
    for (const e of effects) {
      switch (e.type) {
        case 'emit':
          this.#o.events.append(e.event, e.node)
          break
        case 'dispatch': {
          const share = e.share
          const mine = () => !this.#closed && this.#leading && this.#runs.get(run.id)?.run === run
          void afterStored(() =>
            this.#operationOf(run)
              .then(
                (operation) => (mine() ? this.#o.dispatch.offer({ ...share, operation }) : undefined),
                (err: unknown) => {
                  // Never run without its env: the job stops dispatching, and says why.
                  log.error({ err, jobId: run.id, region: share.region }, 'cannot dispatch: the operation’s env values and stdin cannot be opened')
                  if (mine()) this.#carryOut(run, run.undispatchable(share, clip(`the operation’s env values and stdin cannot be opened: ${errorMessage(err)}`, MAX_CAUSE), Date.now()))
                  return undefined
                },
              )
              .then((answer) => {
                if (answer === undefined) return
                // A hive that takes a share but does not heartbeat would take every re-offer and run none.
                const outcome = answer.accepted && this.#o.presence.hiveGone(answer.by) ? { accepted: false as const, cause: `hive ${answer.by} took the share but does not heartbeat` } : answer
                // Stored at once: a leader that took over without the answer would offer the share again.
                if (this.#runs.get(run.id)?.run === run) this.#carryOut(run, run.onShare(share, outcome, Date.now()), true)
              })
              .catch((err: unknown) => log.error({ err, jobId: run.id, region: share.region }, 'dispatch to region failed')),
          )
          break
        }
        case 'control': {
          const control = e.control
          void afterStored(() => this.#o.dispatch.control(control))
          break
        }
        case 'finished':
          this.#o.events.end(e.end)
          clearTimeout(this.#runs.get(run.id)?.timer)
          this.#runs.delete(run.id)
          this.#operations.delete(run.id)
          this.#sealed.delete(run.id)
          // Once its end is stored, the job's data key goes: its sealed secrets can never be opened again.
          if (hasSecrets(run.request.operation)) {
            void afterStored(() =>
              this.#o.sealer.forget(run.id).catch((err: unknown) => log.warn({ err, jobId: run.id }, 'cannot purge the data key of an ended job: it stays in the secrets bucket until the bucket’s max age')),
            )
          }
          break
        case 'note':
          log[e.level]({ jobId: run.id, ...e.fields }, e.msg)
          break
      }
    }
    this.#arm(run)
  }

  /** One timer per running job, for its next deadline. */
  #arm(run: JobRun) {
    const entry = this.#runs.get(run.id)
    if (!entry || entry.run !== run) return
    const at = run.nextWake()
    // Most events move no deadline: keep the timer rather than re-arm one per event.
    if (at === entry.wakeAt && entry.timer !== undefined) return
    clearTimeout(entry.timer)
    entry.timer = undefined
    entry.wakeAt = at
    if (at === null) return
    entry.timer = setTimeout(() => {
      entry.timer = undefined
      // The timer runs on the monotonic clock: when it fires, `at` has come, even if the wall
      // clock was set back meanwhile (an NTP step) and says otherwise.
      this.#carryOut(run, run.tick(Math.max(Date.now(), at)))
    }, Math.max(0, at - Date.now()))
    entry.timer.unref()
  }

  /** Stops leading and acts on nothing more; the event log is closed by its owner. */
  async close(): Promise<void> {
    await this.stepDown()
    this.#closed = true
  }
}
