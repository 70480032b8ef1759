import { describe, expect, it } from 'vitest'
import { JobRequestView, notRunEvent, type WireEvent } from '@apiary/shared'
import { type Effect, JobRun } from './job-run.ts'

const GRACE = 1000
const TIMEOUT = 5000
const cfg = { id: 'j1', request: JobRequestView.parse({ operation: { type: 'exec', argv: ['true'] }, targets: 'all', rollout: { timeoutMs: TIMEOUT } }), createdAt: 0, cancelGraceMs: GRACE }

const started = (node: string, step: number): WireEvent => ({ jobId: 'j1', ts: 0, kind: 'node.started', node, human: '', step })
const output = (node: string, step: number, data: string): WireEvent => ({ jobId: 'j1', ts: 0, kind: 'node.output', node, stream: 'stdout', data, human: '', step })
const finished = (node: string, step: number): WireEvent => ({ ...notRunEvent('j1', node, 'ok', '', 0), cause: null, exitCode: 0, durationMs: 3, digest: 'd', step })

const emitted = (effects: Effect[]) => effects.flatMap((e) => (e.type === 'emit' ? [e.event] : []))
const kinds = (effects: Effect[]) => emitted(effects).map((e) => `${e.kind}${'node' in e ? ` ${e.node}` : ''}`)

function submit(nodes: string[]) {
  const { run } = JobRun.submit(cfg, nodes.map((id) => ({ id, region: 'eu', online: true, agentless: false })), {}, 0)
  return run
}

describe('JobRun applies a node’s events in their task’s order', () => {
  it('holds a finish the stream stored before its start and output, then applies all three in order, output kept', () => {
    const run = submit(['a', 'b'])
    expect(kinds(run.onEvent(finished('a', 3), 10))).toEqual([])
    expect(run.state('a')).toBe('pending')
    expect(run.nextWake()).toBe(10 + TIMEOUT + GRACE)
    expect(kinds(run.onEvent(output('a', 2, 'a\n'), 11))).toEqual([])
    const effects = run.onEvent(started('a', 1), 12)
    expect(kinds(effects)).toEqual(['node.started a', 'node.output a', 'node.finished a'])
    expect(emitted(effects).find((e) => e.kind === 'node.output')).toMatchObject({ data: 'a\n' })
    // The worker's step is its own order, not part of the job's log.
    expect(emitted(effects).some((e) => 'step' in e)).toBe(false)
    expect(run.state('a')).toBe('ok')
    expect(run.nextWake()).toBeNull()
  })

  it('applies an end that carries its start as the start and then the end, once, and keeps neither the step nor startedAt', () => {
    const run = submit(['a', 'b'])
    const end = { ...finished('a', 2), startedAt: 7 } as WireEvent
    const effects = run.onEvent(end, 10)
    expect(kinds(effects)).toEqual(['node.started a', 'node.finished a'])
    expect(emitted(effects)[0]).toMatchObject({ kind: 'node.started', ts: 7, human: 'a: started' })
    expect(emitted(effects).some((e) => 'step' in e || 'startedAt' in e)).toBe(false)
    expect(run.state('a')).toBe('ok')
    // Sent again (a re-offer answered from the journal): the node has ended, nothing more.
    expect(kinds(run.onEvent(end, 11))).toEqual([])
    // On an end with no step before it (a hive's verdict, an unnumbered one) it says nothing.
    const verdict = { ...notRunEvent('j1', 'c', 'error', 'unreachable'), startedAt: 9 } as WireEvent
    const ended = submit(['c']).onEvent(verdict, 1)
    expect(kinds(ended)).toEqual(['node.finished c', 'job.finished'])
    expect(emitted(ended).some((e) => 'startedAt' in e)).toBe(false)
    expect(kinds(submit(['c']).onEvent({ ...finished('c', 1), startedAt: 9 } as WireEvent, 1))).toEqual(['node.finished c', 'job.finished'])
    // A node whose start came on its own too starts once.
    expect(kinds(run.onEvent(started('b', 1), 12))).toEqual(['node.started b'])
    expect(kinds(run.onEvent({ ...finished('b', 2), startedAt: 8 } as WireEvent, 13))).toEqual(['node.finished b', 'job.finished'])
  })

  it('applies a held finish without the events that never came once the hold passed, and says so', () => {
    const run = submit(['a', 'b'])
    run.onEvent(started('a', 1), 0)
    run.onEvent(finished('a', 4), 100)
    const at = run.nextWake()!
    expect(at).toBe(100 + TIMEOUT + GRACE)
    const effects = run.tick(at)
    expect(kinds(effects)).toEqual(['node.finished a'])
    expect(effects).toContainEqual(expect.objectContaining({ type: 'note', level: 'warn', fields: { node: 'a', missing: [2, 3], why: 'waited too long' } }))
    // Late now: the node ended.
    expect(kinds(run.onEvent(output('a', 2, 'late'), at + 1))).toEqual([])
  })

  it('stores what it holds in its snapshot: another queen goes on with it', () => {
    const run = submit(['a', 'b'])
    run.onEvent(started('a', 1), 0)
    run.onEvent(finished('a', 3), 5)
    const snapshot = JSON.parse(JSON.stringify(run.snapshot()))
    const { run: next } = JobRun.restore(
      cfg,
      snapshot,
      ['a', 'b'].map((node) => ({ node, region: 'eu', state: node === 'a' ? ('running' as const) : ('pending' as const), agentless: false, exitCode: null, digest: null, cause: null })),
      10,
    )
    expect(kinds(next.onEvent(output('a', 2, 'x\n'), 20))).toEqual(['node.output a', 'node.finished a'])
  })

  it('ends the node by a hive’s verdict (unnumbered) at once, dropping what it held', () => {
    const run = submit(['a', 'b'])
    run.onEvent(finished('a', 3), 0)
    expect(kinds(run.onEvent(notRunEvent('j1', 'a', 'lost', 'worker gone', 1), 1))).toEqual(['node.finished a'])
    expect(run.nextWake()).toBeNull()
    expect(run.snapshot().order).toEqual({ next: [], held: [] })
  })
})
