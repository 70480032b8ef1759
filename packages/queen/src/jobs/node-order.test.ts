import { describe, expect, it } from 'vitest'
import { type NodeEvent, NodeOrder, type OrderLimits } from './node-order.ts'

const LIMITS: OrderLimits = { holdMs: 1000, maxHeld: 4, maxHeldChars: 1 << 20 }

const started = (node: string, step?: number): NodeEvent => ({ jobId: 'j1', ts: 0, kind: 'node.started', node, human: '', ...(step ? { step } : {}) })
const output = (node: string, step: number, data = 'x'): NodeEvent => ({ jobId: 'j1', ts: 0, kind: 'node.output', node, stream: 'stdout', data, human: '', step })
const finished = (node: string, step?: number): NodeEvent => ({
  jobId: 'j1',
  ts: 0,
  kind: 'node.finished',
  node,
  state: 'ok',
  exitCode: 0,
  signal: null,
  cause: null,
  durationMs: 1,
  bytes: 0,
  truncated: false,
  digest: null,
  human: '',
  ...(step ? { step } : {}),
})

/** The kinds and steps of what an order hands out. */
const steps = (evs: NodeEvent[]) => evs.map((e) => `${e.node}:${e.kind.slice(5)}${e.step ?? ''}`)

describe('NodeOrder', () => {
  it('applies in-order events at once', () => {
    const o = new NodeOrder(LIMITS)
    expect(steps(o.accept(started('a', 1), false, 0).ready)).toEqual(['a:started1'])
    expect(steps(o.accept(output('a', 2), true, 0).ready)).toEqual(['a:output2'])
    expect(steps(o.accept(finished('a', 3), true, 0).ready)).toEqual(['a:finished3'])
    expect(o.held).toBe(0)
  })

  it('holds a finish stored before its start and output, and applies all three in order once they come', () => {
    const o = new NodeOrder(LIMITS)
    expect(o.accept(finished('a', 3), false, 0)).toEqual({ ready: [], gaps: [] })
    expect(o.accept(output('a', 2), false, 0).ready).toEqual([])
    expect(o.held).toBe(2)
    expect(steps(o.accept(started('a', 1), false, 0).ready)).toEqual(['a:started1', 'a:output2', 'a:finished3'])
    expect(o.held).toBe(0)
    expect(o.nextDue()).toBeNull()
  })

  it('keeps each node apart', () => {
    const o = new NodeOrder(LIMITS)
    o.accept(output('a', 2), false, 0)
    expect(steps(o.accept(started('b', 1), false, 0).ready)).toEqual(['b:started1'])
    expect(steps(o.accept(started('a', 1), false, 0).ready)).toEqual(['a:started1', 'a:output2'])
  })

  it('drops a repeat, held or applied', () => {
    const o = new NodeOrder(LIMITS)
    o.accept(started('a', 1), false, 0)
    expect(o.accept(started('a', 1), true, 0).ready).toEqual([])
    o.accept(finished('a', 3), true, 0)
    expect(o.accept(finished('a', 3), true, 0).ready).toEqual([])
    expect(o.held).toBe(1)
  })

  it('passes unnumbered events (a hive’s verdict, an older worker) at once', () => {
    const o = new NodeOrder(LIMITS)
    o.accept(output('a', 2), false, 0)
    expect(steps(o.accept(finished('a'), false, 0).ready)).toEqual(['a:finished'])
  })

  it('takes the next event of a node that started without a step as it comes', () => {
    const o = new NodeOrder(LIMITS)
    expect(steps(o.accept(output('a', 5), true, 0).ready)).toEqual(['a:output5'])
    expect(o.accept(finished('a', 7), true, 0).ready).toEqual([])
    expect(steps(o.accept(output('a', 6), true, 0).ready)).toEqual(['a:output6', 'a:finished7'])
  })

  it('applies a held event without the missing one once it waited holdMs, and says which never came', () => {
    const o = new NodeOrder(LIMITS)
    o.accept(started('a', 1), false, 0)
    o.accept(finished('a', 4), true, 100)
    expect(o.nextDue()).toBe(1100)
    expect(o.due(1099)).toEqual({ ready: [], gaps: [] })
    const { ready, gaps } = o.due(1100)
    expect(steps(ready)).toEqual(['a:finished4'])
    expect(gaps).toEqual([{ node: 'a', missing: [2, 3], why: 'waited too long' }])
    // What comes late now is a repeat of what was stepped over.
    expect(o.accept(output('a', 2), true, 1200).ready).toEqual([])
    expect(o.nextDue()).toBeNull()
  })

  it('steps over one gap at a time: a later one waits its own hold', () => {
    const o = new NodeOrder(LIMITS)
    o.accept(output('a', 3), false, 0)
    o.accept(finished('a', 5), false, 600)
    const first = o.due(1000)
    expect(steps(first.ready)).toEqual(['a:output3'])
    expect(first.gaps).toEqual([{ node: 'a', missing: [1, 2], why: 'waited too long' }])
    expect(o.nextDue()).toBe(1600)
    expect(steps(o.accept(output('a', 4), true, 1100).ready)).toEqual(['a:output4', 'a:finished5'])
  })

  it('holds at most maxHeld events for the job: past it the node held longest is applied without its gap', () => {
    const o = new NodeOrder(LIMITS)
    o.accept(output('a', 2), false, 0)
    o.accept(output('a', 3), false, 1)
    o.accept(output('b', 2), false, 2)
    o.accept(output('b', 3), false, 3)
    const { ready, gaps } = o.accept(output('c', 2), false, 4)
    expect(steps(ready)).toEqual(['a:output2', 'a:output3'])
    expect(gaps).toEqual([{ node: 'a', missing: [1, 1], why: 'too many held' }])
    expect(o.held).toBe(3)
  })

  it('holds at most maxHeldChars of events', () => {
    const o = new NodeOrder({ ...LIMITS, maxHeld: 100, maxHeldChars: 2500 })
    o.accept(output('a', 2, 'x'.repeat(900)), false, 0)
    expect(o.accept(output('b', 2, 'y'.repeat(900)), false, 1).ready).toEqual([])
    const { ready } = o.accept(output('c', 2, 'z'.repeat(900)), false, 2)
    expect(steps(ready)).toEqual(['a:output2'])
  })

  it('forgets a node that ended, with what it held', () => {
    const o = new NodeOrder(LIMITS)
    o.accept(output('a', 3), false, 0)
    o.forget('a')
    expect(o.held).toBe(0)
    expect(o.snapshot()).toEqual({ next: [], held: [] })
  })

  it('goes on from its snapshot (another queen leads): the next step and the held events', () => {
    const o = new NodeOrder(LIMITS)
    o.accept(started('a', 1), false, 0)
    o.accept(finished('a', 3), true, 50)
    const again = new NodeOrder(LIMITS, JSON.parse(JSON.stringify(o.snapshot())))
    expect(again.held).toBe(1)
    expect(again.nextDue()).toBe(1050)
    expect(again.accept(started('a', 1), true, 60).ready).toEqual([])
    expect(steps(again.accept(output('a', 2), true, 60).ready)).toEqual(['a:output2', 'a:finished3'])
  })
})
