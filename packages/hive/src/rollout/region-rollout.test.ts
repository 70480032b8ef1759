import { describe, expect, it } from 'vitest'
import type { FinalState } from '@apiary/shared'
import { type Delivery, type Effect, MAX_REASKS, RegionRollout, type RolloutShare } from './region-rollout.ts'

const TIMEOUT = 10_000
const GRACE = 1_000

const ids = (n: number) => Array.from({ length: n }, (_, i) => `n${i + 1}`)

const share = (o: Partial<RolloutShare> = {}): RolloutShare => ({
  region: 'eu',
  nodes: ids(6),
  agentless: [],
  concurrency: 2,
  maxErrors: null,
  errorsSoFar: 0,
  timeoutMs: TIMEOUT,
  ...o,
})

const accepted: Delivery = { kind: 'accepted' }

/**
 * A rollout and everything it asked for, with a clock the test moves. It keeps the books a
 * queen would: each node's one final state (the hive's own end, or the worker's report the
 * rollout took), and what is in flight.
 */
class Driver {
  now = 0
  readonly r: RegionRollout
  readonly effects: Effect[] = []
  readonly ends = new Map<string, { state: FinalState; cause: string | null }>()
  readonly inFlight = new Set<string>()
  /** Re-asks sent and not yet answered. */
  readonly asking = new Set<string>()
  peak = 0

  constructor(s: RolloutShare = share()) {
    this.r = new RegionRollout(s, { resultGraceMs: GRACE })
  }

  feed(effects: Effect[]): Effect[] {
    for (const e of effects) {
      if (e.type === 'dispatch') {
        expect(this.ends.has(e.node), `${e.node} dispatched after its end`).toBe(false)
        this.inFlight.add(e.node)
        this.peak = Math.max(this.peak, this.inFlight.size)
      }
      if (e.type === 'reask') {
        expect(this.inFlight.has(e.node), `${e.node} asked again while not in flight`).toBe(true)
        expect(this.asking.has(e.node), `${e.node} asked again twice at once`).toBe(false)
        this.asking.add(e.node)
      }
      if (e.type === 'publish') this.#end(e.node, e.state, e.cause)
    }
    this.effects.push(...effects)
    return effects
  }
  start() {
    return this.feed(this.r.start())
  }
  deliver(node: string, outcome: Delivery = accepted) {
    return this.#republished(node, outcome, this.feed(this.r.delivered(node, outcome, this.now)))
  }
  /** The worker's answer to a re-ask. */
  answer(node: string, outcome: Delivery) {
    this.asking.delete(node)
    return this.#republished(node, outcome, this.feed(this.r.reasked(node, outcome, this.now)))
  }
  /** A worker reports; a report on a node that already ended is one the queen would drop too. */
  finish(node: string, state: FinalState) {
    if (!this.ends.has(node)) this.#end(node, state, null)
    return this.feed(this.r.finished(node, state))
  }
  at(ms: number) {
    this.now = ms
    return this.feed(this.r.tick(ms))
  }
  dispatched(): string[] {
    return this.effects.flatMap((e) => (e.type === 'dispatch' ? [e.node] : []))
  }
  doneCount(): number {
    return this.effects.filter((e) => e.type === 'done').length
  }

  /**
   * A worker that says a task ended publishes its final event again: it comes after the
   * answer, as on the bus (and settles the node if the answer was not taken).
   */
  #republished(node: string, outcome: Delivery, effects: Effect[]): Effect[] {
    if (outcome.kind === 'already' && outcome.state !== 'running') this.finish(node, outcome.state)
    return effects
  }

  #end(node: string, state: FinalState, cause: string | null) {
    expect(this.ends.has(node), `${node} ended twice`).toBe(false)
    this.ends.set(node, { state, cause })
    this.inFlight.delete(node)
    this.asking.delete(node)
  }
}

const dispatches = (effects: Effect[]) => effects.flatMap((e) => (e.type === 'dispatch' ? [e.node] : []))
const reasks = (effects: Effect[]) => effects.flatMap((e) => (e.type === 'reask' ? [e.node] : []))
const publishes = (effects: Effect[]) => effects.flatMap((e) => (e.type === 'publish' ? [{ node: e.node, state: e.state, cause: e.cause }] : []))

describe('RegionRollout', () => {
  it('keeps at most `concurrency` in flight, in share order, one more for each end', () => {
    const d = new Driver(share({ nodes: ids(10), concurrency: 3 }))
    expect(dispatches(d.start())).toEqual(['n1', 'n2', 'n3'])
    for (const n of ['n1', 'n2', 'n3']) expect(d.deliver(n)).toEqual([])
    // Finishes out of order, by report and by the hive's own ends alike.
    expect(dispatches(d.finish('n2', 'ok'))).toEqual(['n4'])
    expect(dispatches(d.deliver('n4', { kind: 'refused', reason: 'busy' }))).toEqual(['n5'])
    expect(dispatches(d.finish('n1', 'failed'))).toEqual(['n6'])
    expect(d.inFlight.size).toBe(3)
    for (const n of ['n3', 'n5', 'n6', 'n7', 'n8', 'n9', 'n10']) d.finish(n, 'ok')
    expect(d.dispatched()).toEqual(ids(10))
    expect(d.peak).toBe(3)
    expect(d.r.state).toEqual({ kind: 'done' })
    expect(d.doneCount()).toBe(1)
  })

  it('halts at the error budget: the freed slot is not handed out, the rest is skipped with the reason', () => {
    const d = new Driver(share({ maxErrors: 2 }))
    d.start()
    d.deliver('n1')
    d.deliver('n2')
    expect(dispatches(d.finish('n1', 'failed'))).toEqual(['n3'])
    const out = d.finish('n2', 'timeout')
    const reason = 'max errors reached (2 of 2 allowed)'
    expect(dispatches(out)).toEqual([])
    expect(out[0]).toEqual({ type: 'halted', reason, skipped: 3 })
    expect(publishes(out)).toEqual(['n4', 'n5', 'n6'].map((node) => ({ node, state: 'skipped', cause: `not dispatched: ${reason}` })))
    expect(d.r.state).toEqual({ kind: 'halted', reason })
    // What runs finishes; the rollout is done once it does.
    expect(d.finish('n3', 'ok')).toEqual([{ type: 'done' }])
    expect(d.r.state).toEqual({ kind: 'done' })
  })

  it('counts the job’s errors so far toward the budget, and only not-ok states', () => {
    const d = new Driver(share({ maxErrors: 3, errorsSoFar: 2 }))
    d.start()
    expect(dispatches(d.finish('n1', 'ok'))).toEqual(['n3'])
    expect(dispatches(d.finish('n2', 'cancelled'))).toEqual(['n4'])
    const out = d.finish('n3', 'lost')
    expect(out[0]).toEqual({ type: 'halted', reason: 'max errors reached (3 of 3 allowed)', skipped: 2 })
    expect(dispatches(out)).toEqual([])
  })

  it('a delivery failure spends the budget like any other not-ok end', () => {
    const d = new Driver(share({ maxErrors: 1 }))
    d.start()
    const out = d.deliver('n1', { kind: 'no-responders' })
    expect(out[0]).toEqual({ type: 'publish', node: 'n1', state: 'error', cause: 'unreachable: no worker is serving this node' })
    expect(out[1]).toEqual({ type: 'halted', reason: 'max errors reached (1 of 1 allowed)', skipped: 4 })
    expect(dispatches(out)).toEqual([])
  })

  it('halt or cancel from the queen skips what was not dispatched; the first reason stands', () => {
    const d = new Driver()
    d.start()
    d.deliver('n1')
    const out = d.feed(d.r.control({ action: 'cancel', reason: 'cancelled by alice' }))
    expect(out[0]).toEqual({ type: 'halted', reason: 'cancelled by alice', skipped: 4 })
    expect(publishes(out)).toEqual(['n3', 'n4', 'n5', 'n6'].map((node) => ({ node, state: 'skipped', cause: 'not dispatched: cancelled by alice' })))
    expect(d.feed(d.r.halt('hive shutting down'))).toEqual([])
    expect(d.r.state).toEqual({ kind: 'halted', reason: 'cancelled by alice' })
    // In flight is not ended by the hive, and frees no slot.
    expect(d.finish('n1', 'cancelled')).toEqual([])
    expect(d.finish('n2', 'cancelled')).toEqual([{ type: 'done' }])
  })

  describe('maps a delivery failure to the node’s end', () => {
    const cases: Array<[string, Delivery, boolean, string]> = [
      ['refused with a reason', { kind: 'refused', reason: 'signature expired' }, false, 'worker refused the task: signature expired'],
      ['refused without one', { kind: 'refused', reason: undefined }, false, 'worker refused the task: no reason'],
      ['a malformed acknowledgement', { kind: 'malformed' }, false, 'worker sent a malformed acknowledgement'],
      ['no responders, agent node', { kind: 'no-responders' }, false, 'unreachable: no worker is serving this node'],
      ['no responders, agentless node', { kind: 'no-responders' }, true, 'unreachable: no SSH worker in region eu'],
      ['the delivery deadline', { kind: 'timeout' }, false, 'undelivered: no worker took the task in time'],
      ['the delivery deadline, agentless node', { kind: 'timeout' }, true, 'undelivered: no worker took the task in time'],
      ['any other failure', { kind: 'failed', message: 'the bus is closed' }, true, 'dispatch failed: the bus is closed'],
    ]
    for (const [name, outcome, agentless, cause] of cases) {
      it(name, () => {
        const d = new Driver(share({ agentless: agentless ? ['n1'] : [] }))
        expect(d.start()[0]).toEqual({ type: 'dispatch', node: 'n1', agentless })
        let out = d.deliver('n1', outcome)
        if (outcome.kind === 'timeout') {
          // Sent once more first: the answer may only have been late.
          expect(out).toEqual([{ type: 'dispatch', node: 'n1', agentless }])
          out = d.deliver('n1', outcome)
        }
        expect(out[0]).toEqual({ type: 'publish', node: 'n1', state: 'error', cause })
        // The slot it held goes to the next node.
        expect(dispatches(out)).toEqual(['n3'])
      })
    }
  })

  it('a delivery that timed out and is sent again is taken by a worker that had it: nothing ends error', () => {
    const d = new Driver()
    d.start()
    expect(d.deliver('n1', { kind: 'timeout' })).toEqual([{ type: 'dispatch', node: 'n1', agentless: false }])
    expect(publishes(d.deliver('n1', { kind: 'already', state: 'running' }))).toEqual([])
    expect(d.finish('n1', 'ok')).not.toContainEqual(expect.objectContaining({ type: 'publish' }))
  })

  it('asks the worker of a silent accepted node again at timeoutMs + resultGraceMs after acceptance, and not before', () => {
    const d = new Driver()
    d.start()
    d.now = 500
    d.deliver('n1')
    d.now = 700
    d.deliver('n2')
    const due = 500 + TIMEOUT + GRACE
    expect(d.r.nextWake()).toBe(due)
    expect(d.at(due - 1)).toEqual([])
    // Not lost: the same task goes to the worker again, and the node keeps its slot meanwhile.
    expect(d.at(due)).toEqual([{ type: 'reask', node: 'n1', agentless: false }])
    expect(d.r.nextWake()).toBe(700 + TIMEOUT + GRACE)
    // The worker ran it: its finish went missing. It settles as the worker says, and frees the slot.
    const out = d.answer('n1', { kind: 'already', state: 'ok' })
    expect(publishes(out)).toEqual([])
    expect(dispatches(out)).toEqual(['n3'])
    expect(d.ends.get('n1')).toEqual({ state: 'ok', cause: null })
    // The finish it publishes again changes nothing.
    expect(d.feed(d.r.finished('n1', 'ok'))).toEqual([])
    // A result in time clears the deadline.
    d.finish('n2', 'ok')
    expect(d.r.nextWake()).toBeNull()
    expect(d.at(100_000)).toEqual([])
  })

  it('asks an agentless node’s SSH workers again on their subject', () => {
    const d = new Driver(share({ agentless: ['n1'] }))
    d.start()
    d.deliver('n1')
    expect(d.at(TIMEOUT + GRACE)).toEqual([{ type: 'reask', node: 'n1', agentless: true }])
  })

  it('takes a worker’s answer that it ran the task before: running arms the deadline, a final state settles at once and counts once', () => {
    // A re-offer: its nodes' workers may have taken them from the hive that died.
    const d = new Driver(share({ nodes: ids(4), concurrency: 2, maxErrors: 2 }))
    d.start()
    d.now = 100
    expect(d.deliver('n1', { kind: 'already', state: 'running' })).toEqual([])
    expect(d.r.nextWake()).toBe(100 + TIMEOUT + GRACE)
    // Ended failed: no end of the hive's own, the slot goes on, one error spent.
    const out = d.deliver('n2', { kind: 'already', state: 'failed' })
    expect(publishes(out)).toEqual([])
    expect(dispatches(out)).toEqual(['n3'])
    // Its final event, published again, is not a second error: the budget of two is not reached.
    expect(d.feed(d.r.finished('n2', 'failed'))).toEqual([])
    expect(d.r.state).toEqual({ kind: 'running' })
    // A second acknowledgement of a node that already ended changes nothing either.
    expect(d.deliver('n2', { kind: 'already', state: 'failed' })).toEqual([])
    const halted = d.finish('n1', 'timeout')
    expect(halted[0]).toEqual({ type: 'halted', reason: 'max errors reached (2 of 2 allowed)', skipped: 1 })
  })

  it('waits a grace more for a worker that says it is still running, at most MAX_REASKS times, then ends it lost and says why', () => {
    const d = new Driver()
    d.start()
    d.deliver('n1')
    let at = TIMEOUT + GRACE
    for (let ask = 1; ask <= MAX_REASKS; ask++) {
      expect(reasks(d.at(at)), `ask ${ask}`).toEqual(['n1'])
      expect(d.r.nextWake()).toBeNull()
      expect(d.answer('n1', { kind: 'already', state: 'running' })).toEqual([])
      at += GRACE
      expect(d.r.nextWake()).toBe(at)
      expect(d.at(at - 1)).toEqual([])
    }
    const out = d.at(at)
    expect(reasks(out)).toEqual([])
    expect(publishes(out)).toEqual([{ node: 'n1', state: 'lost', cause: `no result 11 s after dispatch: asked again ${MAX_REASKS} times, the worker still says it is running` }])
    expect(dispatches(out)).toEqual(['n3'])
  })

  it('ends a node lost when its worker does not answer twice in a row: a blink or a worker not yet subscribed again is not gone', () => {
    for (const silence of [{ kind: 'no-responders' }, { kind: 'timeout' }] as Delivery[]) {
      const d = new Driver()
      d.start()
      d.deliver('n1')
      d.at(TIMEOUT + GRACE)
      expect(d.answer('n1', silence)).toEqual([])
      expect(d.r.nextWake()).toBe(TIMEOUT + 2 * GRACE)
      expect(reasks(d.at(TIMEOUT + 2 * GRACE))).toEqual(['n1'])
      const out = d.answer('n1', silence)
      expect(publishes(out)).toEqual([{ node: 'n1', state: 'lost', cause: 'worker gone: no answer when asked again' }])
      expect(dispatches(out)).toEqual(['n3'])
    }
  })

  it('counts only answers missing in a row: one between two silences resets it', () => {
    const d = new Driver()
    d.start()
    d.deliver('n1')
    d.at(TIMEOUT + GRACE)
    d.answer('n1', { kind: 'no-responders' })
    d.at(TIMEOUT + 2 * GRACE)
    d.answer('n1', { kind: 'already', state: 'running' })
    d.at(TIMEOUT + 3 * GRACE)
    expect(d.answer('n1', { kind: 'timeout' })).toEqual([])
    // The asks are spent: the silence after them ends it.
    expect(publishes(d.at(TIMEOUT + 4 * GRACE))).toEqual([{ node: 'n1', state: 'lost', cause: 'worker gone: no answer when asked again' }])
  })

  it('ends a node error when its worker refuses the task asked again, or answers nonsense', () => {
    const cases: Array<[Delivery, string]> = [
      [{ kind: 'refused', reason: 'the grant expired at 2030-01-01T00:00:00.000Z' }, 'worker refused the task when asked again: the grant expired at 2030-01-01T00:00:00.000Z'],
      [{ kind: 'refused', reason: undefined }, 'worker refused the task when asked again: no reason'],
      [{ kind: 'malformed' }, 'worker sent a malformed acknowledgement when asked again'],
    ]
    for (const [outcome, cause] of cases) {
      const d = new Driver()
      d.start()
      d.deliver('n1')
      d.at(TIMEOUT + GRACE)
      expect(publishes(d.answer('n1', outcome))).toEqual([{ node: 'n1', state: 'error', cause }])
    }
  })

  it('gives a plain acceptance when asked again a whole limit: the task started only then', () => {
    const d = new Driver()
    d.start()
    d.deliver('n1')
    d.at(TIMEOUT + GRACE)
    d.now = TIMEOUT + GRACE + 50
    d.answer('n1', accepted)
    expect(d.r.nextWake()).toBe(TIMEOUT + GRACE + 50 + TIMEOUT + GRACE)
  })

  it('asks again a grace later when the hive could not ask, and says so if the asks run out', () => {
    const d = new Driver()
    d.start()
    d.deliver('n1')
    let at = TIMEOUT + GRACE
    for (let ask = 1; ask <= MAX_REASKS; ask++) {
      expect(reasks(d.at(at))).toEqual(['n1'])
      expect(d.answer('n1', { kind: 'failed', message: 'the bus is closed' })).toEqual([])
      at += GRACE
    }
    expect(publishes(d.at(at))).toEqual([{ node: 'n1', state: 'lost', cause: `no result 11 s after dispatch: asked again ${MAX_REASKS} times, the last ask failed: the bus is closed` }])
  })

  it('takes a result that comes while the worker is being asked again; the answer then changes nothing', () => {
    const d = new Driver()
    d.start()
    d.deliver('n1')
    d.at(TIMEOUT + GRACE)
    expect(dispatches(d.finish('n1', 'failed'))).toEqual(['n3'])
    expect(d.feed(d.r.reasked('n1', { kind: 'no-responders' }, d.now))).toEqual([])
    expect(d.feed(d.r.reasked('n1', { kind: 'already', state: 'ok' }, d.now))).toEqual([])
    expect(d.ends.get('n1')?.state).toBe('failed')
    // An answer nobody asked for is ignored too.
    d.deliver('n2')
    expect(d.feed(d.r.reasked('n2', { kind: 'already', state: 'ok' }, d.now))).toEqual([])
    expect(d.ends.has('n2')).toBe(false)
  })

  it('ends a silent node lost at once without asking when told to ask no more (maxReasks 0)', () => {
    const r = new RegionRollout(share(), { resultGraceMs: GRACE, maxReasks: 0 })
    r.start()
    r.delivered('n1', accepted, 0)
    expect(publishes(r.tick(TIMEOUT + GRACE))).toEqual([{ node: 'n1', state: 'lost', cause: 'no result 11 s after dispatch' }])
  })

  it('arms no deadline for a node whose result came before its acknowledgement', () => {
    const d = new Driver()
    d.start()
    d.finish('n1', 'ok')
    expect(d.deliver('n1')).toEqual([])
    expect(d.r.nextWake()).toBeNull()
  })

  it('ignores reports of nodes outside the share and answers for nodes it never dispatched', () => {
    const d = new Driver()
    d.start()
    expect(d.feed(d.r.finished('elsewhere', 'failed'))).toEqual([])
    expect(d.deliver('n5', { kind: 'timeout' })).toEqual([])
    expect(d.deliver('n5')).toEqual([])
    expect(d.r.nextWake()).toBeNull()
  })

  it('ends every node `error` when it cannot start', () => {
    const d = new Driver(share({ nodes: ids(3) }))
    const out = d.feed(d.r.cannotStart('hive lost its bus connection'))
    expect(publishes(out)).toEqual(ids(3).map((node) => ({ node, state: 'error', cause: 'hive lost its bus connection' })))
    expect(dispatches(out)).toEqual([])
    expect(out.at(-1)).toEqual({ type: 'done' })
    expect(d.start()).toEqual([])
  })

  it('ignores everything after the end', () => {
    const d = new Driver(share({ nodes: ids(2) }))
    d.start()
    d.deliver('n1')
    d.finish('n1', 'ok')
    d.finish('n2', 'ok')
    expect(d.r.state).toEqual({ kind: 'done' })
    expect(d.r.finished('n1', 'failed')).toEqual([])
    expect(d.r.delivered('n2', { kind: 'timeout' }, 0)).toEqual([])
    expect(d.r.halt('late')).toEqual([])
    expect(d.r.control({ action: 'cancel', reason: 'late' })).toEqual([])
    expect(d.r.tick(1e9)).toEqual([])
    expect(d.r.abandon()).toEqual([])
    expect(d.r.nextWake()).toBeNull()
    expect(d.r.state).toEqual({ kind: 'done' })
  })

  it('abandoning ends it at once, leaving open nodes to their workers', () => {
    const d = new Driver()
    d.start()
    d.deliver('n1')
    expect(d.feed(d.r.abandon())).toEqual([{ type: 'done' }])
    expect(d.r.state).toEqual({ kind: 'abandoned' })
    expect(d.r.nextWake()).toBeNull()
    expect(d.r.tick(1e9)).toEqual([])
    expect(d.r.delivered('n2', { kind: 'refused', reason: 'x' }, 0)).toEqual([])
    expect(d.r.finished('n1', 'ok')).toEqual([])
  })

  it('gives every node exactly one final state, whatever the order of inputs', () => {
    const outcomes: Delivery[] = [
      accepted,
      accepted,
      accepted,
      { kind: 'already', state: 'running' },
      { kind: 'already', state: 'ok' },
      { kind: 'already', state: 'failed' },
      { kind: 'refused', reason: 'no' },
      { kind: 'no-responders' },
      { kind: 'timeout' },
      { kind: 'failed', message: 'closed' },
    ]
    const states: FinalState[] = ['ok', 'ok', 'failed', 'timeout', 'cancelled']
    for (let seed = 1; seed <= 200; seed++) {
      let x = seed
      const rand = (n: number) => {
        x = (x * 1103515245 + 12345) % 2 ** 31
        return x % n
      }
      const n = 1 + rand(12)
      const nodes = ids(n)
      const s = share({ nodes, agentless: nodes.filter(() => rand(2) === 0), concurrency: 1 + rand(4), maxErrors: rand(3) === 0 ? null : 1 + rand(n), errorsSoFar: rand(2) })
      const d = new Driver(s)
      d.start()
      for (let step = 0; step < 400 && d.r.state.kind !== 'done'; step++) {
        const open = d.dispatched().filter((node) => !d.ends.has(node))
        const node = open[rand(Math.max(open.length, 1))]
        switch (rand(6)) {
          case 0:
          case 1: {
            // The answer to a re-ask on its way, or to the dispatch.
            const asked = [...d.asking][rand(Math.max(d.asking.size, 1))]
            if (asked && rand(2) === 0) d.answer(asked, outcomes[rand(outcomes.length)]!)
            else if (node) d.deliver(node, outcomes[rand(outcomes.length)]!)
            break
          }
          case 2:
          case 3:
            // Sometimes a second report of a node that already ended.
            if (node) d.finish(rand(8) === 0 ? (d.dispatched()[0] ?? node) : node, states[rand(states.length)]!)
            break
          case 4:
            d.at(d.now + rand(2 * (TIMEOUT + GRACE)))
            break
          case 5:
            if (rand(10) === 0) d.feed(d.r.halt('stopped'))
            break
        }
        expect(d.inFlight.size).toBeLessThanOrEqual(s.concurrency)
      }
      // What is still open ends by report, which lets the rest be dispatched.
      for (let open = d.dispatched().filter((node) => !d.ends.has(node)); open.length > 0; open = d.dispatched().filter((node) => !d.ends.has(node))) {
        for (const node of open) d.finish(node, 'ok')
      }
      expect(d.r.state, `seed ${seed}`).toEqual({ kind: 'done' })
      expect(d.ends.size).toBe(n)
      expect(d.doneCount()).toBe(1)
    }
  })
})
