import { type Control, type FinalState, type HiveJob, spendsErrorBudget } from '@apiary/shared'
import { SlidingWindow } from './window.ts'

/** What the rollout needs of a job share. */
export type RolloutShare = Pick<HiveJob, 'region' | 'nodes' | 'agentless' | 'concurrency' | 'maxErrors' | 'errorsSoFar' | 'timeoutMs'>

/** What became of handing one node's task to a worker (or asking it again). */
export type Delivery =
  | { kind: 'accepted' }
  /**
   * The worker took this task before (`Ack.already`): it still runs, or it ended in this state
   * and publishes that final event again. It is never run twice.
   */
  | { kind: 'already'; state: 'running' | FinalState }
  | { kind: 'refused'; reason: string | undefined }
  /** The reply was not an acknowledgement. */
  | { kind: 'malformed' }
  | { kind: 'no-responders' }
  /** Nobody acknowledged within the delivery deadline. */
  | { kind: 'timeout' }
  | { kind: 'failed'; message: string }

/**
 * How the rollout stands. It only moves forward: running → halted (nothing more is
 * dispatched, what runs finishes) → done (every node has a final state). `abandoned` (the
 * hive is shutting down) ends it with nodes still open. `reason` is the first halt's.
 */
export type StopState = { kind: 'running' } | { kind: 'halted'; reason: string } | { kind: 'done' } | { kind: 'abandoned' }

/** What the rollout asks the world to do; the caller carries effects out in order. */
export type Effect =
  | { type: 'dispatch'; node: string; agentless: boolean }
  /**
   * An accepted node's result is overdue: send the worker the same task again, so that it
   * says what became of it (`already`); answer with `reasked`.
   */
  | { type: 'reask'; node: string; agentless: boolean }
  /** The hive ends a node itself (it never ran, or nobody reported): publish its final event. */
  | { type: 'publish'; node: string; state: FinalState; cause: string }
  | { type: 'halted'; reason: string; skipped: number }
  /** Nothing more will come out: drop subscriptions and the timer. */
  | { type: 'done' }

/** Why a node whose worker answers no more ends `lost`. */
const NO_ANSWER = 'worker gone: no answer when asked again'

export interface RolloutConfig {
  /** Slack past the execution timeout before the worker of a silent node is asked again. */
  resultGraceMs: number
  /** How many times the worker of a silent node is asked again before it counts as lost (default `MAX_REASKS`). */
  maxReasks?: number
  /** Told once of each node's final state (metrics). */
  onSettle?: (state: FinalState) => void
}

/**
 * Re-asks of one node at most. A worker that keeps saying `running` past its own execution
 * deadline is stuck (a kill that does not take); three answers a grace apart say so.
 */
export const MAX_REASKS = 3

/** What the hive knows of an accepted node whose result has not come. */
interface Awaited {
  /** When to ask again, or to give up; null while an ask is on its way. */
  due: number | null
  /** Re-asks sent so far. */
  asks: number
  /** Re-asks in a row that nobody answered. */
  silent: number
  /** What the last re-ask came to, for the cause if the node ends lost. */
  last: 'running' | 'silent' | { failed: string } | null
}

/**
 * One region's share of one phase of a job as pure state: the sliding window, the error
 * budget, halt, how each node ends, and the result deadline of each accepted task. It takes
 * inputs and the time and returns effects; it does no I/O and reads no clock. Every node of
 * the share gets exactly one final state; inputs after the end are ignored.
 *
 * A share may be a re-offer (its first hive died): its nodes are the ones still open, and
 * their workers may have taken them before. A worker answers such a task with what became of
 * it (`already`), and it runs nowhere twice.
 *
 * `lost` means the worker is gone, not that a result went missing (a NATS blink drops a core
 * event): when an accepted node's result is overdue, its worker is asked again (`reask`),
 * and the node ends only by what that says. Nobody answering two asks in a row, or a worker
 * still saying `running` after `maxReasks` asks, is `lost`.
 *
 * @example
 * const r = new RegionRollout(share, { resultGraceMs: 15_000 })
 * execute(r.start()); execute(r.delivered('n1', { kind: 'accepted' }, Date.now()))
 */
export class RegionRollout {
  readonly #share: RolloutShare
  readonly #nodes: ReadonlySet<string>
  readonly #agentless: ReadonlySet<string>
  readonly #window: SlidingWindow<string>
  /** How long after its acceptance a task's result is due. */
  readonly #resultLimitMs: number
  readonly #graceMs: number
  readonly #maxReasks: number
  readonly #onSettle: ((state: FinalState) => void) | undefined
  readonly #dispatched = new Set<string>()
  /** Nodes whose delivery timed out once and were sent again. */
  readonly #redelivered = new Set<string>()
  readonly #final = new Set<string>()
  /** Accepted nodes without a result yet. */
  readonly #awaited = new Map<string, Awaited>()
  /** Not-ok nodes of the whole job: the share's count at hand-over, then this share's. */
  #errors: number
  #stop: StopState = { kind: 'running' }
  #out: Effect[] = []

  constructor(share: RolloutShare, cfg: RolloutConfig) {
    this.#share = share
    this.#nodes = new Set(share.nodes)
    this.#agentless = new Set(share.agentless)
    this.#errors = share.errorsSoFar
    this.#resultLimitMs = share.timeoutMs + cfg.resultGraceMs
    this.#graceMs = cfg.resultGraceMs
    this.#maxReasks = cfg.maxReasks ?? MAX_REASKS
    this.#onSettle = cfg.onSettle
    this.#window = new SlidingWindow(share.nodes, share.concurrency, (node) => {
      this.#dispatched.add(node)
      this.#out.push({ type: 'dispatch', node, agentless: this.#agentless.has(node) })
    })
  }

  /** Tasks dispatched and awaiting their result. */
  get inFlight(): number {
    return this.#window.inFlight
  }

  get state(): StopState {
    return this.#stop
  }

  /** Fills the window. The caller's subscriptions must be in place first. */
  start(): Effect[] {
    if (this.#over()) return []
    this.#window.pump()
    return this.#take()
  }

  /** The rollout cannot begin (the bus failed before anything was dispatched): what is left ends `error`. */
  cannotStart(cause: string): Effect[] {
    if (this.#over()) return []
    for (const node of this.#window.stop()) this.#end(node, 'error', cause)
    return this.#take()
  }

  /**
   * The answer to a dispatch: an accepted task's result is due `timeoutMs + resultGraceMs`
   * from `now`, and so is one the worker says it runs already. One it says ended settles in
   * that state at once (its worker publishes the final event again; that changes nothing).
   */
  delivered(node: string, outcome: Delivery, now: number): Effect[] {
    if (this.#over() || !this.#dispatched.has(node) || this.#final.has(node) || this.#awaited.has(node)) return []
    switch (outcome.kind) {
      case 'already':
        if (outcome.state !== 'running') return this.finished(node, outcome.state)
        this.#await(node, now)
        break
      case 'accepted':
        this.#await(node, now)
        break
      case 'refused':
        this.#end(node, 'error', `worker refused the task: ${outcome.reason ?? 'no reason'}`)
        break
      case 'malformed':
        this.#end(node, 'error', 'worker sent a malformed acknowledgement')
        break
      case 'no-responders':
        this.#end(
          node,
          'error',
          this.#agentless.has(node) ? `unreachable: no SSH worker in region ${this.#share.region}` : 'unreachable: no worker is serving this node',
        )
        break
      case 'timeout':
        // The answer may only be late (a slow fsync, a lost reply) while the worker took the
        // task: it is sent once more, and a worker that took it says so (`already`).
        if (!this.#redelivered.has(node)) {
          this.#redelivered.add(node)
          this.#out.push({ type: 'dispatch', node, agentless: this.#agentless.has(node) })
        } else this.#end(node, 'error', 'undelivered: no worker took the task in time')
        break
      case 'failed':
        this.#end(node, 'error', `dispatch failed: ${outcome.message}`)
        break
    }
    return this.#take()
  }

  /**
   * The answer to a `reask`. `running` waits a grace more (a plain acceptance: the task started
   * only now, so its whole limit); a final state settles; a refusal ends `error`; nobody
   * answering ends `lost` the second time in a row (the first may be the bus blinking, or a
   * worker not yet subscribed again after a reconnect); the hive failing to ask waits too.
   */
  reasked(node: string, outcome: Delivery, now: number): Effect[] {
    const a = this.#awaited.get(node)
    if (this.#over() || !a || a.due !== null) return []
    // The next tick asks once more, or gives up once `maxReasks` asks are spent.
    const waitAgain = (ms: number) => void (a.due = now + ms)
    switch (outcome.kind) {
      case 'accepted':
        a.silent = 0
        a.last = 'running'
        waitAgain(this.#resultLimitMs)
        break
      case 'already':
        a.silent = 0
        if (outcome.state !== 'running') return this.finished(node, outcome.state)
        a.last = 'running'
        waitAgain(this.#graceMs)
        break
      case 'refused':
        this.#end(node, 'error', `worker refused the task when asked again: ${outcome.reason ?? 'no reason'}`)
        break
      case 'malformed':
        this.#end(node, 'error', 'worker sent a malformed acknowledgement when asked again')
        break
      case 'no-responders':
      case 'timeout':
        a.last = 'silent'
        if (++a.silent >= 2) this.#end(node, 'lost', NO_ANSWER)
        else waitAgain(this.#graceMs)
        break
      case 'failed':
        a.last = { failed: outcome.message }
        waitAgain(this.#graceMs)
        break
    }
    return this.#take()
  }

  /** A node's final event arrived (the worker's, or the hive's own coming back). */
  finished(node: string, state: FinalState): Effect[] {
    if (this.#over()) return []
    this.#settle(node, state)
    return this.#take()
  }

  /** The queen halts or cancels: either way nothing more is dispatched (workers stop what a cancel kills). */
  control(c: Pick<Control, 'action' | 'reason'>): Effect[] {
    return this.halt(c.reason)
  }

  /** Dispatches nothing more; what never started ends `skipped` with the reason. Only the first reason counts. */
  halt(reason: string): Effect[] {
    if (this.#over()) return []
    this.#halt(reason)
    return this.#take()
  }

  /** The hive gives the share up (shutting down): nodes still open get no end from this hive. */
  abandon(): Effect[] {
    if (this.#over()) return []
    this.#stop = { kind: 'abandoned' }
    this.#window.stop()
    this.#awaited.clear()
    this.#out.push({ type: 'done' })
    return this.#take()
  }

  /** When the rollout next needs `tick`, or null. */
  nextWake(): number | null {
    let at: number | null = null
    for (const { due } of this.#awaited.values()) if (due !== null && (at === null || due < at)) at = due
    return at
  }

  /**
   * The time passed: the worker of each accepted node silent past its deadline is asked again
   * (`reask`), or, once asked `maxReasks` times, the node ends `lost`.
   */
  tick(now: number): Effect[] {
    if (this.#over()) return []
    for (const [node, a] of this.#awaited) {
      if (a.due === null || now < a.due) continue
      if (a.asks >= this.#maxReasks) {
        this.#end(node, 'lost', this.#lostCause(a))
        continue
      }
      a.due = null
      a.asks++
      this.#out.push({ type: 'reask', node, agentless: this.#agentless.has(node) })
    }
    return this.#take()
  }

  /** Its result is due a whole limit from now. */
  #await(node: string, now: number) {
    this.#awaited.set(node, { due: now + this.#resultLimitMs, asks: 0, silent: 0, last: null })
  }

  #lostCause(a: Awaited): string {
    const after = `no result ${Math.round(this.#resultLimitMs / 1000)} s after dispatch`
    if (a.asks === 0 || a.last === null) return after
    if (a.last === 'silent') return NO_ANSWER
    const times = `${a.asks} time${a.asks === 1 ? '' : 's'}`
    if (a.last === 'running') return `${after}: asked again ${times}, the worker still says it is running`
    return `${after}: asked again ${times}, the last ask failed: ${a.last.failed}`
  }

  #over(): boolean {
    return this.#stop.kind === 'done' || this.#stop.kind === 'abandoned'
  }

  #halt(reason: string) {
    if (this.#stop.kind !== 'running') return
    this.#stop = { kind: 'halted', reason }
    const rest = this.#window.stop()
    this.#out.push({ type: 'halted', reason, skipped: rest.length })
    for (const node of rest) this.#end(node, 'skipped', `not dispatched: ${reason}`)
  }

  /** The hive ends a node itself. */
  #end(node: string, state: FinalState, cause: string) {
    if (this.#final.has(node)) return
    this.#out.push({ type: 'publish', node, state, cause })
    this.#settle(node, state)
  }

  #settle(node: string, state: FinalState) {
    if (this.#final.has(node) || !this.#nodes.has(node)) return
    this.#final.add(node)
    this.#awaited.delete(node)
    this.#onSettle?.(state)
    if (spendsErrorBudget(state)) this.#errors++
    const max = this.#share.maxErrors
    // Checked before the window refills, so the slot this finish frees is not handed out.
    if (max !== null && this.#errors >= max) this.#halt(`max errors reached (${this.#errors} of ${max} allowed)`)
    this.#window.finish(node)
    // A halt above may already have ended the last node.
    if (this.#final.size === this.#nodes.size && this.#stop.kind !== 'done') {
      this.#stop = { kind: 'done' }
      this.#awaited.clear()
      this.#out.push({ type: 'done' })
    }
  }

  #take(): Effect[] {
    const out = this.#out
    this.#out = []
    return out
  }
}
