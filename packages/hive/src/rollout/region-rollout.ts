import { type Control, type FinalState, type HiveJob, spendsErrorBudget } from '@apiary/shared'
import { SlidingWindow } from './window.ts'

/** What the rollout needs of a job share. */
export type RolloutShare = Pick<HiveJob, 'region' | 'nodes' | 'agentless' | 'concurrency' | 'maxErrors' | 'errorsSoFar' | 'timeoutMs'>

/** What became of handing one node's task to a worker. */
export type Delivery =
  | { kind: 'accepted' }
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
  /** The hive ends a node itself (it never ran, or nobody reported): publish its final event. */
  | { type: 'publish'; node: string; state: FinalState; cause: string }
  | { type: 'halted'; reason: string; skipped: number }
  /** Nothing more will come out: drop subscriptions and the timer. */
  | { type: 'done' }

export interface RolloutConfig {
  /** Slack past the execution timeout before a silent node counts as lost. */
  resultGraceMs: number
}

/**
 * One region's share of one phase of a job as pure state: the sliding window, the error
 * budget, halt, how each node ends, and the result deadline of each accepted task. It takes
 * inputs and the time and returns effects; it does no I/O and reads no clock. Every node of
 * the share gets exactly one final state; inputs after the end are ignored.
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
  readonly #dispatched = new Set<string>()
  readonly #final = new Set<string>()
  /** Accepted nodes without a result yet, and when each counts as lost. */
  readonly #due = new Map<string, number>()
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
    this.#window = new SlidingWindow(share.nodes, share.concurrency, (node) => {
      this.#dispatched.add(node)
      this.#out.push({ type: 'dispatch', node, agentless: this.#agentless.has(node) })
    })
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

  /** The answer to a dispatch: an accepted task's result is due `timeoutMs + resultGraceMs` from `now`. */
  delivered(node: string, outcome: Delivery, now: number): Effect[] {
    if (this.#over() || !this.#dispatched.has(node) || this.#final.has(node)) return []
    switch (outcome.kind) {
      case 'accepted':
        this.#due.set(node, now + this.#resultLimitMs)
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
        this.#end(node, 'error', 'undelivered: no worker took the task in time')
        break
      case 'failed':
        this.#end(node, 'error', `dispatch failed: ${outcome.message}`)
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
    this.#due.clear()
    this.#out.push({ type: 'done' })
    return this.#take()
  }

  /** When the rollout next needs `tick`, or null. */
  nextWake(): number | null {
    let at: number | null = null
    for (const due of this.#due.values()) if (at === null || due < at) at = due
    return at
  }

  /** The time passed: accepted nodes silent past their deadline end `lost`. */
  tick(now: number): Effect[] {
    if (this.#over()) return []
    for (const [node, at] of this.#due) {
      if (now >= at) this.#end(node, 'lost', `no result ${Math.round(this.#resultLimitMs / 1000)} s after dispatch`)
    }
    return this.#take()
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
    this.#due.delete(node)
    if (spendsErrorBudget(state)) this.#errors++
    const max = this.#share.maxErrors
    // Checked before the window refills, so the slot this finish frees is not handed out.
    if (max !== null && this.#errors >= max) this.#halt(`max errors reached (${this.#errors} of ${max} allowed)`)
    this.#window.finish(node)
    // A halt above may already have ended the last node.
    if (this.#final.size === this.#nodes.size && this.#stop.kind !== 'done') {
      this.#stop = { kind: 'done' }
      this.#due.clear()
      this.#out.push({ type: 'done' })
    }
  }

  #take(): Effect[] {
    const out = this.#out
    this.#out = []
    return out
  }
}
