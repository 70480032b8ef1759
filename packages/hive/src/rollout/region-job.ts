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
  type HiveJob,
  isApiaryError,
  type Logger,
  notRunEvent,
  parseSubject,
  subjects,
  type Task,
  type Verifier,
  WireEvent,
} from '@apiary/shared'
import { warnRateLimited } from '@apiary/shared/runtime'
import { type Delivery, type Effect, RegionRollout } from './region-rollout.ts'

export interface RegionJobOptions {
  bus: Bus
  log: Logger
  /** Slack past the execution timeout before a silent node counts as lost. */
  resultGraceMs: number
  /** The queen's public key: control messages it did not sign are ignored. */
  queenKey: Verifier
}

/**
 * One region's share of one phase of a job on the bus. The policy (window, error budget,
 * halt, who ends how, result deadlines) is `RegionRollout`'s; this only carries its effects
 * out: task requests to workers, the hive's own node events, the job's event and control
 * subscriptions, and one timer for the nearest result deadline.
 */
export class RegionJob {
  readonly #rollout: RegionRollout
  readonly #subs: BusSubscription[] = []
  readonly #log: Logger
  #timer: NodeJS.Timeout | undefined
  #wakeAt: number | null = null
  #resolveDone!: () => void
  /** Resolves when every node of the share has a final state, or the share is abandoned. */
  readonly done = new Promise<void>((resolve) => (this.#resolveDone = resolve))

  private readonly job: HiveJob

  constructor(
    private readonly checked: CheckedShare,
    private readonly o: RegionJobOptions,
  ) {
    const job = (this.job = checked.share)
    this.#log = o.log.child({ jobId: job.jobId })
    this.#rollout = new RegionRollout(job, { resultGraceMs: o.resultGraceMs })
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
    // Subscriptions must be in place before the first task can finish.
    void bus.flush().then(
      () => this.#carryOut(this.#rollout.start()),
      (err: unknown) => {
        this.#log.error({ err }, 'cannot start the rollout')
        this.#carryOut(this.#rollout.cannotStart('hive lost its bus connection'))
      },
    )
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
        case 'publish':
          try {
            this.o.bus.publish(subjects.hiveEvents(this.job.region, this.job.jobId), notRunEvent(this.job.jobId, e.node, e.state, e.cause))
          } catch (err) {
            this.#log.error({ err, node: e.node, state: e.state }, 'cannot report a node’s end')
          }
          break
        case 'halted':
          this.#log.info({ reason: e.reason, skipped: e.skipped }, 'rollout stopped')
          break
        case 'done':
          for (const s of this.#subs) s.unsubscribe()
          this.#resolveDone()
          break
      }
    }
    this.#arm()
  }

  async #deliver(node: string, agentless: boolean): Promise<Delivery> {
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
