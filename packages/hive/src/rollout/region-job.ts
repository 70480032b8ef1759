import {
  Ack,
  type Bus,
  type BusSubscription,
  Control,
  decode,
  type FinalState,
  type HiveJob,
  isApiaryError,
  type Logger,
  notRunEvent,
  spendsErrorBudget,
  subjects,
  type Task,
  WireEvent,
} from '@apiary/shared'
import { SlidingWindow } from './window.ts'

export interface RegionJobOptions {
  bus: Bus
  log: Logger
  hiveId: string
  /** Slack past the execution timeout before a silent node counts as lost. */
  resultGraceMs: number
}


/**
 * One region's share of one phase of a job: dispatches tasks through a sliding window, counts
 * finishes from the job's event stream, stops dispatching when the error budget is spent or
 * the queen halts or cancels, and makes sure every node of the share gets exactly one final
 * event: nodes it never dispatched end `skipped` with the reason.
 */
export class RegionJob {
  readonly #finished = new Set<string>()
  readonly #nodes: Set<string>
  readonly #agentless: Set<string>
  readonly #watchdogs = new Map<string, NodeJS.Timeout>()
  readonly #window: SlidingWindow<string>
  readonly #subs: BusSubscription[] = []
  readonly #log: Logger
  #abandoned = false
  #errors: number
  #haltReason: string | null = null
  #resolveDone!: () => void
  /** Resolves when every node of the share has a final state. */
  readonly done = new Promise<void>((resolve) => (this.#resolveDone = resolve))

  constructor(
    private readonly job: HiveJob,
    private readonly o: RegionJobOptions,
  ) {
    this.#log = o.log.child({ jobId: job.jobId })
    this.#nodes = new Set(job.nodes)
    this.#agentless = new Set(job.agentless)
    this.#errors = job.errorsSoFar
    this.#window = new SlidingWindow(job.nodes, job.concurrency, (node) => {
      this.#dispatch(node).catch((err: unknown) => this.#log.error({ err, node }, 'dispatch failed'))
    })
  }

  start(): void {
    const { bus } = this.o
    this.#subs.push(
      bus.subscribe(subjects.events(this.job.jobId), (msg) => {
        // Only finishes matter here; output and starts are not even validated.
        if ((msg.data as { kind?: unknown } | null)?.kind !== 'node.finished') return
        const ev = decode(WireEvent, msg, this.#log)
        if (ev?.kind === 'node.finished') this.#onFinished(ev.node, ev.state)
      }),
      bus.subscribe(subjects.control(this.job.jobId), (msg) => {
        const c = decode(Control, msg, this.#log)
        if (c) this.halt(c.reason)
      }),
    )
    // Subscriptions must be in place before the first task can finish.
    void bus.flush().then(
      () => this.#window.pump(),
      (err: unknown) => {
        this.#log.error({ err }, 'cannot start the rollout')
        for (const n of this.#window.stop()) this.#fail(n, 'error', 'hive lost its bus connection')
      },
    )
  }

  /** Dispatches nothing more; what never started ends `skipped` with the reason. */
  halt(reason: string): void {
    if (this.#haltReason !== null) return
    this.#haltReason = reason
    const rest = this.#window.stop()
    this.#log.info({ reason, skipped: rest.length }, 'rollout stopped')
    for (const node of rest) this.#fail(node, 'skipped', `not dispatched: ${reason}`)
  }

  async #dispatch(node: string): Promise<void> {
    const task: Task = {
      jobId: this.job.jobId,
      node,
      operation: this.job.operation,
      timeoutMs: this.job.timeoutMs,
      outputCapBytes: this.job.outputCapBytes,
    }
    // An agent takes its own node's tasks; any SSH worker of the region takes an agentless node's.
    const agentless = this.#agentless.has(node)
    const subject = agentless ? subjects.regionSsh(this.job.region) : subjects.nodeTasks(node)
    try {
      const reply = Ack.safeParse(await this.o.bus.request(subject, task, { timeoutMs: this.job.deliveryTimeoutMs }))
      if (!reply.success) return this.#fail(node, 'error', 'worker sent a malformed acknowledgement')
      if (!reply.data.accepted) return this.#fail(node, 'error', `worker refused the task: ${reply.data.reason ?? 'no reason'}`)
      if (this.#finished.has(node)) return
      const limit = this.job.timeoutMs + this.o.resultGraceMs
      const t = setTimeout(() => this.#fail(node, 'lost', `no result ${Math.round(limit / 1000)} s after dispatch`), limit)
      t.unref()
      this.#watchdogs.set(node, t)
    } catch (err) {
      if (isApiaryError(err, 'no_responders')) {
        return this.#fail(node, 'error', agentless ? `unreachable: no SSH worker in region ${this.job.region}` : 'unreachable: no worker is serving this node')
      }
      if (isApiaryError(err, 'timeout')) return this.#fail(node, 'error', 'undelivered: no worker took the task in time')
      this.#log.warn({ err, node }, 'dispatch failed')
      return this.#fail(node, 'error', `dispatch failed: ${(err as Error).message}`)
    }
  }

  /** The hive ends a node itself (it never ran, or nobody reported). */
  #fail(node: string, state: FinalState, cause: string): void {
    if (this.#finished.has(node) || this.#abandoned) return
    const event = notRunEvent(this.job.jobId, node, state, cause)
    try {
      this.o.bus.publish(subjects.events(this.job.jobId), event)
    } catch (err) {
      this.#log.error({ err, node, state }, 'cannot report a node’s end')
    }
    this.#onFinished(node, state)
  }

  #onFinished(node: string, state: FinalState): void {
    if (this.#finished.has(node) || !this.#nodes.has(node)) return
    this.#finished.add(node)
    clearTimeout(this.#watchdogs.get(node))
    this.#watchdogs.delete(node)
    if (spendsErrorBudget(state)) this.#errors++
    const max = this.job.maxErrors
    // Checked before the window refills, so the slot this finish frees is not handed out.
    if (max !== null && this.#errors >= max) this.halt(`max errors reached (${this.#errors} of ${max} allowed)`)
    this.#window.finish(node)
    if (this.#finished.size === this.#nodes.size) this.#close()
  }

  #close(): void {
    for (const s of this.#subs) s.unsubscribe()
    for (const t of this.#watchdogs.values()) clearTimeout(t)
    this.#resolveDone()
  }

  /** Abandons the share (hive shutting down); nodes still open get no event from this hive. */
  abandon(): void {
    this.#abandoned = true
    this.#window.stop()
    this.#close()
  }
}
