import type { JobDetail, JobEvent, NodeResult } from '@apiary/shared'
import { describe, expect, it } from 'vitest'
import { JobModel } from './model.ts'

const node = (id: string, over: Partial<NodeResult> = {}): NodeResult => ({
  node: id, region: 'default', state: 'pending', exitCode: null, signal: null, cause: null, durationMs: null, bytes: 0, truncated: false, digest: null, ...over,
})
const detail = (nodes: NodeResult[], over: Partial<JobDetail> = {}): JobDetail =>
  ({
    id: 'j1', state: 'running', operation: { type: 'ping' }, targets: 'all', rollout: {}, outputCapBytes: 1024, createdAt: 0, finishedAt: null,
    nodeCount: nodes.length, counts: {}, lastSeq: 2, stopReason: null, rerunOf: null, nodes, ...over,
  }) as unknown as JobDetail
let seq = 2
const started = (n: string, ts = 0) => ({ kind: 'node.started', jobId: 'j1', seq: ++seq, ts, human: '', node: n }) as JobEvent
const finished = (n: string, state: string, o: { exitCode?: number; durationMs?: number; digest?: string; ts?: number } = {}) =>
  ({ kind: 'node.finished', jobId: 'j1', seq: ++seq, ts: o.ts ?? 0, human: '', node: n, state, exitCode: o.exitCode ?? 0, signal: null, cause: null, durationMs: o.durationMs ?? 10, bytes: 0, truncated: false, digest: o.digest ?? 'd' }) as unknown as JobEvent

describe('JobModel', () => {
  it('counts nodes by state as events arrive and marks only the changed slots', () => {
    const m = new JobModel(detail([node('a'), node('b'), node('c', { state: 'ok', durationMs: 5, digest: 'd', exitCode: 0 })]))
    expect(m.takeDirty().all).toBe(true)
    expect(m.apply(started('a'))).toBe(true)
    expect(m.apply(finished('b', 'failed', { exitCode: 2 }))).toBe(true)
    expect(m.takeDirty()).toEqual({ all: false, slots: [0, 1] })
    expect(m.takeDirty().slots).toEqual([])
    expect(m.progress()).toMatchObject({ total: 3, done: 2, ok: 1, notOk: 1, running: 1, pending: 0 })
    expect(m.stateAt(1)).toBe('failed')
    expect(m.exitCode[1]).toBe(2)
  })

  it('ignores an event it has seen (a replay after a reconnect) and a start after the end', () => {
    const m = new JobModel(detail([node('a')]))
    const fin = finished('a', 'ok')
    expect(m.apply(fin)).toBe(true)
    expect(m.apply(fin)).toBe(false)
    expect(m.apply(started('a'))).toBe(false)
    expect(m.stateAt(0)).toBe('ok')
    expect(m.apply({ ...finished('zz', 'ok') })).toBe(false)
  })

  it('measures the rate over recent finishes and the time left at it', () => {
    const m = new JobModel(detail(Array.from({ length: 10 }, (_, i) => node(`n${i}`))))
    for (let i = 0; i < 4; i++) m.apply(finished(`n${i}`, 'ok', { ts: 1000 * i }))
    const p = m.progress()
    expect(p.rate).toBeCloseTo(1)
    expect(p.etaMs).toBeCloseTo(6000)
  })

  it('groups ended nodes by state, exit code, digest and cause, largest first', () => {
    const m = new JobModel(detail(Array.from({ length: 6 }, (_, i) => node(`n${i}`))))
    for (let i = 0; i < 4; i++) m.apply(finished(`n${i}`, 'ok'))
    m.apply(finished('n4', 'failed', { exitCode: 1, digest: 'x' }))
    m.apply(finished('n5', 'ok', { digest: 'other' }))
    const g = m.groups()
    expect(g.map((x) => [x.state, x.count, x.sample])).toEqual([
      ['ok', 4, ['n0', 'n1', 'n2', 'n3']],
      ['failed', 1, ['n4']],
      ['ok', 1, ['n5']],
    ])
  })

  it('keeps the rate over the last ten seconds across many finishes and a pause', () => {
    const n = 30_000
    const m = new JobModel(detail(Array.from({ length: n }, (_, i) => node(`n${i}`))))
    // 25,000 finishes at 2,500/s, a 30 s pause, then four at 1/s.
    for (let i = 0; i < 25_000; i++) m.apply(finished(`n${i}`, 'ok', { ts: i * 0.4 }))
    expect(m.progress().rate).toBeCloseTo(2500, -1)
    for (let k = 0; k < 4; k++) m.apply(finished(`n${25_000 + k}`, 'ok', { ts: 40_000 + k * 1000 }))
    expect(m.progress()).toMatchObject({ done: 25_004 })
    expect(m.progress().rate).toBeCloseTo(1)
  })

  it('keeps groups as nodes end in any order and change result: the same as grouping every node afresh', () => {
    const n = 60
    const m = new JobModel(detail(Array.from({ length: n }, (_, i) => node(`n${i}`, i % 7 === 0 ? { state: 'ok', exitCode: 0, digest: 'a' } : {}))))
    // A fixed pseudo-random sequence: finishes out of target order, some nodes ending twice
    // (lost, then their real result), so that sampled nodes leave their group.
    let r = 7
    const rnd = (k: number) => ((r = (r * 1103515245 + 12345) % 2 ** 31), r % k)
    for (let step = 0; step < 200; step++) {
      const i = rnd(n)
      const state = ['ok', 'ok', 'failed', 'lost'][rnd(4)]!
      m.apply(finished(`n${i}`, state, { exitCode: state === 'failed' ? 1 + rnd(2) : 0, digest: ['a', 'b'][rnd(2)]! }))
      if (step % 10 === 0) expect(m.groups()).toEqual(regroup(m))
    }
    expect(m.groups()).toEqual(regroup(m))
  })

  it('bins durations and lists the slowest', () => {
    const m = new JobModel(detail(Array.from({ length: 20 }, (_, i) => node(`n${i}`))))
    for (let i = 0; i < 20; i++) m.apply(finished(`n${i}`, 'ok', { durationMs: i * 10 }))
    const h = m.histogram(4, 3)
    expect(h.counts).toEqual([5, 5, 5, 5])
    expect(h.counts.reduce((a, b) => a + b, 0)).toBe(20)
    expect(h.slowest).toEqual([
      { node: 'n19', durationMs: 190 },
      { node: 'n18', durationMs: 180 },
      { node: 'n17', durationMs: 170 },
    ])
  })

  it('takes the end of the job from job.finished', () => {
    const m = new JobModel(detail([node('a')]))
    m.apply(finished('a', 'ok', { ts: 500 }))
    m.apply({ kind: 'job.finished', jobId: 'j1', seq: ++seq, ts: 1000, human: '', state: 'ok', counts: { ok: 1 }, groups: [], durationMs: 1000, stopReason: null } as JobEvent)
    expect(m.jobState).toBe('ok')
    expect(m.progress()).toMatchObject({ done: 1, rate: 1, etaMs: null })
  })
})

/** Groups made from every node, as the model once did each time: the reference. */
function regroup(m: JobModel) {
  const byKey = new Map<string, { state: string; exitCode: number | null; cause: string | null; count: number; sample: string[] }>()
  for (let i = 0; i < m.size; i++) {
    const state = m.stateAt(i)
    if (state === 'running' || state === 'pending') continue
    const key = `${state} ${m.exitCode[i]} ${m.digest[i]} ${m.cause[i]}`
    let g = byKey.get(key)
    if (!g) byKey.set(key, (g = { state, exitCode: m.exitCode[i]!, cause: m.cause[i]!, count: 0, sample: [] }))
    g.count++
    if (g.sample.length < 5) g.sample.push(m.ids[i]!)
  }
  return [...byKey.values()].sort((a, b) => b.count - a.count || a.state.localeCompare(b.state))
}
