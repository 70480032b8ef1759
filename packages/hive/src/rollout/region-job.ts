import {
  Ack,
  BODY_LIMITS,
  type Bus,
  type BusMessage,
  type BusSubscription,
  type CheckedShare,
  Control,
  controlRefusal,
  decode,
  errorMessage,
  type FinalState,
  type HiveJob,
  isApiaryError,
  type Logger,
  parseSubject,
  subjects,
  type Task,
  type Verifier,
  WireEvent,
} from '@apiary/shared'
import { type DaemonMetrics, secondsSince, warnRateLimited } from '@apiary/shared/runtime'
import { type Delivery, type Effect, RegionRollout } from './region-rollout.ts'
import type { VerdictOutbox } from './verdicts.ts'

export interface RegionJobOptions {
  bus: Bus
  log: Logger
  /** Slack past the execution timeout before the worker of a silent node is asked again. */
  resultGraceMs: number
  /** The queen's public key: control messages it did not sign are ignored. */
  queenKey: Verifier
  /** Where the hive's own node ends go (the events stream). */
  verdicts: VerdictOutbox
  /** Where node ends and delivery latencies are counted. */
  metrics?: DaemonMetrics<'nodesFinished' | 'deliveryLatency'>
}

/** How long the subscriptions may take to reach a server that is away, between tries. */
const START_RETRY_MS = { first: 250, max: 5000 }

/**
 * One region's share of one phase of a job on the bus. The policy (window, error budget,
 * halt, who ends how, result deadlines, asking a silent node's worker again) is
 * `RegionRollout`'s; this only carries its effects out: task requests to workers, the hive's
 * own node ends, the job's event and control subscriptions, and one timer for the nearest
 * result deadline.
 *
 * Nothing here waits for the queen. The subscriptions are core ones that the NATS client
 * makes again after a reconnect; a finish published while NATS was away is missed here (the
 * queen still gets it from the stream), and the worker, asked again, tells the hive.
 */
export class RegionJob {
  readonly #rollout: RegionRollout
  readonly #subs: BusSubscription[] = []
  readonly #log: Logger
  #timer: NodeJS.Timeout | undefined
  #wakeAt: number | null = null
  /** Done or abandoned: nothing more is carried out. */
  #stopped = false
  /** The attempt its verdicts carry: the share's, or a newer re-offer of it to this hive (`adopt`). */
  #attempt: number
  /** The nodes this hive ended itself, and how: given again under a newer attempt. */
  readonly #judged = new Map<string, { state: FinalState; cause: string }>()
  #resolveDone!: () => void
  /** Resolves when every node of the share has a final state, or the share is abandoned. */
  readonly done = new Promise<void>((resolve) => (this.#resolveDone = resolve))

  private readonly job: HiveJob

  constructor(
    private readonly checked: CheckedShare,
    private readonly o: RegionJobOptions,
  ) {
    const job = (this.job = checked.share)
    this.#attempt = job.attempt
    this.#log = o.log.child({ jobId: job.jobId })
    const counted = o.metrics?.m
    this.#rollout = new RegionRollout(job, { resultGraceMs: o.resultGraceMs, ...(counted ? { onSettle: (state) => counted.nodesFinished.inc({ state }) } : {}) })
  }

  start(): void {
    const { bus } = this.o
    const { jobId, region } = this.job
    const agentless = new Set(this.job.agentless)
    const onEvent = (msg: BusMessage, fromSsh: boolean) => {
      // Only finishes matter here; output and starts are not even validated.
      if ((msg.data as { kind?: unknown } | null)?.kind !== 'node.finished') return
      const ev = decode(WireEvent, msg, this.#log)
      // A node speaks only for itself, on its own subject (the broker enforces who publishes
      // it): an agent node on the agents' subject, an agentless one on the SSH workers'.
      if (ev?.kind !== 'node.finished' || ev.jobId !== jobId || parseSubject(msg.subject)?.[2] !== ev.node) return
      if (agentless.has(ev.node) !== fromSsh) return
      this.#carryOut(this.#rollout.finished(ev.node, ev.state))
    }
    const [agentEvents, sshEvents] = subjects.regionJobEvents(region, jobId)
    this.#subs.push(
      bus.subscribe(agentEvents!, (msg) => onEvent(msg, false), { maxBytes: BODY_LIMITS.finished }),
      bus.subscribe(sshEvents!, (msg) => onEvent(msg, true), { maxBytes: BODY_LIMITS.finished }),
      bus.subscribe(subjects.control(jobId), (msg) => {
        const c = decode(Control, msg, this.#log)
        if (!c) return
        const forged = controlRefusal(c, this.o.queenKey, jobId, Date.now())
        if (forged) return warnRateLimited(this.#log, 'ignored a control message', { reason: forged })
        this.#carryOut(this.#rollout.control(c))
      }, { maxBytes: BODY_LIMITS.control }),
    )
    void this.#begin()
  }

  /** Tasks dispatched and awaiting their result. */
  get inFlight(): number {
    return this.#rollout.inFlight
  }

  /** The share's attempt (0, or a re-offer's number). */
  get attempt(): number {
    return this.job.attempt
  }

  /**
   * The share was offered again, as attempt `attempt`, to this hive, which goes on running it.
   * The queen now drops a verdict of an earlier attempt (it cannot tell this hive from one cut
   * off since), so when the re-offer is the very next attempt (no other hive can have held one
   * in between) this hive's verdicts carry it from now on, and those it gave already are given
   * again under it: none is lost to the race between a verdict and the re-offer. After a gap
   * another hive may run those nodes: its verdicts stay under the attempt it holds. Returns
   * whether it took the attempt on.
   */
  adopt(attempt: number): boolean {
    if (this.#stopped || attempt !== this.#attempt + 1) return false
    this.#attempt = attempt
    for (const [node, v] of this.#judged) this.#verdict(node, v.state, v.cause)
    return true
  }

  #verdict(node: string, state: FinalState, cause: string): void {
    this.o.verdicts.send({ jobId: this.job.jobId, region: this.job.region, node, attempt: this.#attempt, state, cause, deadline: this.checked.grant.expiresAt })
  }

  /**
   * Subscriptions must be in place before the first task can finish. A flush fails while NATS
   * is away (the client rejects what waits for a server that left): try again until the grant
   * expires, rather than end a share for a blink.
   */
  async #begin(): Promise<void> {
    for (let wait = START_RETRY_MS.first; ; wait = Math.min(wait * 2, START_RETRY_MS.max)) {
      const failed = await this.o.bus.flush().then(
        () => null,
        (err: unknown) => err,
      )
      if (this.#stopped) return
      if (failed === null) return this.#carryOut(this.#rollout.start())
      if (isApiaryError(failed, 'closed') || Date.now() + wait > this.checked.grant.expiresAt) {
        this.#log.error({ err: failed }, 'cannot start the rollout')
        return this.#carryOut(this.#rollout.cannotStart('hive lost its bus connection'))
      }
      warnRateLimited(this.#log, 'the bus is away; the rollout starts once it is back', { err: errorMessage(failed) })
      await new Promise((resolve) => setTimeout(resolve, wait).unref())
    }
  }

  /** Dispatches nothing more; what never started ends `skipped` with the reason. */
  halt(reason: string): void {
    this.#carryOut(this.#rollout.halt(reason))
  }

  /** Abandons the share (hive shutting down); nodes still open get no event from this hive. */
  abandon(): void {
    this.#carryOut(this.#rollout.abandon())
  }

  #carryOut(effects: Effect[]): void {
    for (const e of effects) {
      switch (e.type) {
        case 'dispatch':
          this.#deliver(e.node, e.agentless)
            .then((outcome) => this.#carryOut(this.#rollout.delivered(e.node, outcome, Date.now())))
            .catch((err: unknown) => this.#log.error({ err, node: e.node }, 'dispatch failed'))
          break
        case 'reask':
          // The same task again, on the same subject: a worker that took it says what became of it.
          this.#log.info({ node: e.node }, 'no result in time; asking the worker again')
          this.#deliver(e.node, e.agentless)
            .then((outcome) => this.#carryOut(this.#rollout.reasked(e.node, outcome, Date.now())))
            .catch((err: unknown) => this.#log.error({ err, node: e.node }, 'asking again failed'))
          break
        case 'publish':
          if (e.state === 'lost') this.#log.warn({ node: e.node, cause: e.cause }, 'node lost')
          this.#judged.set(e.node, { state: e.state, cause: e.cause })
          this.#verdict(e.node, e.state, e.cause)
          break
        case 'halted':
          this.#log.info({ reason: e.reason, skipped: e.skipped }, 'rollout stopped')
          break
        case 'done':
          this.#stopped = true
          for (const s of this.#subs) s.unsubscribe()
          this.#resolveDone()
          break
      }
    }
    this.#arm()
  }

  async #deliver(node: string, agentless: boolean): Promise<Delivery> {
    const t0 = performance.now()
    const d = await this.#request(node, agentless)
    this.o.metrics?.m.deliveryLatency.observe({ outcome: d.kind }, secondsSince(t0))
    return d
  }

  async #request(node: string, agentless: boolean): Promise<Delivery> {
    const task: Task = {
      jobId: this.job.jobId,
      node,
      operation: this.job.operation,
      timeoutMs: this.job.timeoutMs,
      outputCapBytes: this.job.outputCapBytes,
      grant: this.checked.grant,
      proof: this.checked.proof(node),
    }
    // An agent takes its own node's tasks; any SSH worker of the region takes an agentless node's.
    const subject = agentless ? subjects.ssh(this.job.region) : subjects.task(this.job.region, node)
    try {
      const reply = Ack.safeParse(await this.o.bus.request(subject, task, { timeoutMs: this.job.deliveryTimeoutMs }))
      if (!reply.success) return { kind: 'malformed' }
      // What the worker did with it before stands, whatever it says of taking it now.
      if (reply.data.already !== undefined) return { kind: 'already', state: reply.data.already }
      return reply.data.accepted ? { kind: 'accepted' } : { kind: 'refused', reason: reply.data.reason }
    } catch (err) {
      if (isApiaryError(err, 'no_responders')) return { kind: 'no-responders' }
      if (isApiaryError(err, 'timeout')) return { kind: 'timeout' }
      this.#log.warn({ err, node }, 'dispatch failed')
      return { kind: 'failed', message: errorMessage(err) }
    }
  }

  /** One timer, for the nearest result deadline. */
  #arm(): void {
    const at = this.#rollout.nextWake()
    // Most effects move no deadline: keep the timer rather than re-arm one per finish.
    if (at === this.#wakeAt) return
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#wakeAt = at
    if (at === null) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#wakeAt = null
      // Monotonic timer: `at` has come even if the wall clock was set back meanwhile.
      this.#carryOut(this.#rollout.tick(Math.max(Date.now(), at)))
    }, Math.max(0, at - Date.now()))
    this.#timer.unref()
  }
}
