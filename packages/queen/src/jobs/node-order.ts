import type { WireEventOf } from '@apiary/shared'

/** A node's event as its worker sends it, perhaps numbered among its task's events (`step`). */
export type NodeEvent = WireEventOf<'node.started'> | WireEventOf<'node.output'> | WireEventOf<'node.finished'>

/** An event that came before one it follows, kept until that one comes (or until `at` + the hold). */
export interface HeldEvent {
  ev: NodeEvent
  /** When it was first held. */
  at: number
}

/** What a run stores of its order, so the next leader goes on with it: small, only nodes that run or wait. */
export interface OrderSnapshot {
  /** The step each node's next event must have, for nodes past their first. */
  next: Array<[node: string, step: number]>
  held: HeldEvent[]
}

export interface OrderLimits {
  /** How long a held event waits for those before it; then it is applied without them. */
  holdMs: number
  /** The most events held for the whole job, and their JSON's most characters. */
  maxHeld: number
  maxHeldChars: number
}

/**
 * A job's held events are few (a stream leader's failover reorders a handful per node), and
 * they travel in the run's snapshot with every commit: a small bound keeps that record small.
 */
export const ORDER_LIMITS = { maxHeld: 256, maxHeldChars: 256 * 1024 } as const

/** Why events were applied without one before them, for the run's log line. */
export interface Gap {
  node: string
  /** The steps that never came (first and last). */
  missing: [number, number]
  why: 'waited too long' | 'too many held'
}

/**
 * Puts each node's events back in their task's order (the worker's `step`), whatever order the
 * stream stores or hands them in: an event with the node's next step is applied with every held
 * one that follows it; a later one is held; an earlier one (a repeat) is dropped. Unnumbered
 * events (a hive's verdicts, older workers) pass at once. A node that started without a step
 * (it ran under an older queen or worker) takes its next event as it comes.
 *
 * Bounded: a held event is applied without the ones before it once it waited `holdMs`, or when
 * the job holds more than its limits (the node held longest goes first); each such gap is
 * reported. Pure: the caller gives the time and keeps the snapshot with its state.
 */
export class NodeOrder {
  readonly #limits: OrderLimits
  readonly #next = new Map<string, number>()
  /** By node, by step. */
  readonly #held = new Map<string, Map<number, HeldEvent & { chars: number }>>()
  #heldCount = 0
  #heldChars = 0

  constructor(limits: OrderLimits, snapshot?: OrderSnapshot) {
    this.#limits = limits
    for (const [node, step] of snapshot?.next ?? []) this.#next.set(node, step)
    for (const h of snapshot?.held ?? []) this.#hold(h.ev, h.at)
  }

  /**
   * A producer's event of a node that has not ended; `running` says whether it started. Returns
   * what to apply now, in order, and any gap stepped over to stay within the limits.
   */
  accept(ev: NodeEvent, running: boolean, now: number): { ready: NodeEvent[]; gaps: Gap[] } {
    const step = ev.step
    if (step === undefined) return { ready: [ev], gaps: [] }
    const expected = this.#next.get(ev.node) ?? (running ? step : 1)
    if (step < expected || this.#held.get(ev.node)?.has(step)) return { ready: [], gaps: [] }
    if (step === expected) {
      this.#next.set(ev.node, step + 1)
      return { ready: [ev, ...this.#drain(ev.node)], gaps: [] }
    }
    this.#next.set(ev.node, expected)
    this.#hold(ev, now)
    const ready: NodeEvent[] = []
    const gaps: Gap[] = []
    while (this.#heldCount > this.#limits.maxHeld || this.#heldChars > this.#limits.maxHeldChars) {
      const node = this.#longestHeld()
      if (node === undefined) break
      this.#release(node, 'too many held', ready, gaps)
    }
    return { ready, gaps }
  }

  /** Held events that waited `holdMs`: applied now, without those that did not come. */
  due(now: number): { ready: NodeEvent[]; gaps: Gap[] } {
    const ready: NodeEvent[] = []
    const gaps: Gap[] = []
    const waited = (node: string) => [...(this.#held.get(node)?.values() ?? [])].some((h) => now >= h.at + this.#limits.holdMs)
    for (const node of [...this.#held.keys()]) while (waited(node)) this.#release(node, 'waited too long', ready, gaps)
    return { ready, gaps }
  }

  /** When `due` next has something to apply, or null. */
  nextDue(): number | null {
    let at = Infinity
    for (const held of this.#held.values()) for (const h of held.values()) at = Math.min(at, h.at + this.#limits.holdMs)
    return at === Infinity ? null : at
  }

  /** The node ended: nothing more of it is ordered, and what it held is dropped. */
  forget(node: string): void {
    this.#next.delete(node)
    const held = this.#held.get(node)
    if (!held) return
    for (const h of held.values()) this.#unhold(h.chars)
    this.#held.delete(node)
  }

  /** Events held now (for tests and the log). */
  get held(): number {
    return this.#heldCount
  }

  snapshot(): OrderSnapshot {
    return {
      next: [...this.#next],
      held: [...this.#held.values()].flatMap((m) => [...m.values()].map(({ ev, at }) => ({ ev, at }))),
    }
  }

  #hold(ev: NodeEvent, at: number) {
    let held = this.#held.get(ev.node)
    if (!held) this.#held.set(ev.node, (held = new Map()))
    const chars = JSON.stringify(ev).length
    held.set(ev.step!, { ev, at, chars })
    this.#heldCount++
    this.#heldChars += chars
  }

  #unhold(chars: number) {
    this.#heldCount--
    this.#heldChars -= chars
  }

  /** The held events that now follow in order. */
  #drain(node: string): NodeEvent[] {
    const held = this.#held.get(node)
    const out: NodeEvent[] = []
    if (!held) return out
    for (let step = this.#next.get(node)!; ; step++) {
      const h = held.get(step)
      if (!h) break
      held.delete(step)
      this.#unhold(h.chars)
      out.push(h.ev)
      this.#next.set(node, step + 1)
    }
    if (held.size === 0) this.#held.delete(node)
    return out
  }

  /** Applies a node's held events without the missing ones, in order. */
  #release(node: string, why: Gap['why'], ready: NodeEvent[], gaps: Gap[]) {
    const held = this.#held.get(node)
    if (!held || held.size === 0) return
    const first = Math.min(...held.keys())
    gaps.push({ node, missing: [this.#next.get(node) ?? 1, first - 1], why })
    this.#next.set(node, first)
    ready.push(...this.#drain(node))
    // Past the limits nothing of the node stays held; what waited too long goes one gap at a time.
    if (this.#held.has(node) && why === 'too many held') this.#release(node, why, ready, gaps)
  }

  #longestHeld(): string | undefined {
    let best: string | undefined
    let at = Infinity
    for (const [node, held] of this.#held) {
      for (const h of held.values()) {
        if (h.at < at) {
          at = h.at
          best = node
        }
      }
    }
    return best
  }
}
