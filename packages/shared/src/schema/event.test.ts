import { describe, expect, it } from 'vitest'
import { EVENT_KINDS, JobEvent, WireEvent } from './event.ts'

const envelope = { jobId: 'jabc123def', ts: 1_700_000_000_000, human: 'something happened' }

/** One valid event of every kind. */
const samples: WireEvent[] = [
  {
    ...envelope,
    kind: 'job.submitted',
    operation: { type: 'exec', argv: ['uptime'], shell: false },
    targets: 'role=web',
    rollout: { concurrency: 10, canary: 0, timeoutMs: 5000, deliveryTimeoutMs: 5000 },
    nodes: 3,
  },
  { ...envelope, kind: 'job.region', region: 'eu', nodes: 3, hive: null },
  { ...envelope, kind: 'job.cancelling', reason: 'asked by alice' },
  { ...envelope, kind: 'job.halted', reason: 'max errors reached (5 of 5 allowed)' },
  { ...envelope, kind: 'job.canary', state: 'passed', nodes: 2 },
  {
    ...envelope,
    kind: 'job.finished',
    state: 'failed',
    counts: { ok: 2, failed: 1 },
    groups: [{ state: 'ok', exitCode: 0, digest: 'abc', cause: null, count: 2, nodes: ['web-1', 'web-2'] }],
    durationMs: 1234,
    stopReason: null,
  },
  { ...envelope, kind: 'node.started', node: 'web-1.example.com' },
  { ...envelope, kind: 'node.output', node: 'web-1', stream: 'stderr', data: 'warning\n' },
  {
    ...envelope,
    kind: 'node.finished',
    node: 'web-1',
    state: 'ok',
    exitCode: 0,
    signal: null,
    cause: null,
    durationMs: 12,
    bytes: 8,
    truncated: false,
    digest: 'abc',
  },
]

const sample = (kind: WireEvent['kind']): WireEvent => samples.find((e) => e.kind === kind)!

describe('WireEvent', () => {
  it('has a sample of every kind (so this file notices a new kind)', () => {
    expect(samples.map((e) => e.kind).sort()).toEqual([...EVENT_KINDS].sort())
  })

  it.each(samples.map((e) => [e.kind, e] as const))('parses %s unchanged', (_kind, event) => {
    expect(WireEvent.parse(event)).toEqual(event)
  })

  it('rejects an unknown kind, naming the kind field', () => {
    const r = WireEvent.safeParse({ ...envelope, kind: 'node.exploded', node: 'web-1' })
    expect(r.success).toBe(false)
    expect(r.error!.issues[0]!.path).toEqual(['kind'])
  })

  it('rejects an event without a jobId or with a malformed one', () => {
    const { jobId: _omit, ...noJob } = sample('node.started')
    expect(WireEvent.safeParse(noJob).error?.issues[0]?.path).toEqual(['jobId'])
    expect(WireEvent.safeParse({ ...sample('node.started'), jobId: 'not-a-job' }).error?.issues[0]?.path).toEqual(['jobId'])
  })

  it('rejects a field of the wrong kind-specific shape, naming it', () => {
    const r = WireEvent.safeParse({ ...envelope, kind: 'node.output', node: 'web-1', stream: 'stdin', data: 'x' })
    expect(r.error?.issues[0]?.path).toEqual(['stream'])
    const f = WireEvent.safeParse({ ...sample('node.finished'), state: 'running' })
    expect(f.error?.issues[0]?.path).toEqual(['state'])
  })

  it('rejects a fractional exit code and a node id with a space', () => {
    expect(WireEvent.safeParse({ ...sample('node.finished'), exitCode: 1.5 }).success).toBe(false)
    expect(WireEvent.safeParse({ ...sample('node.started'), node: 'web 1' }).success).toBe(false)
  })

  it('does not carry a seq through (producers do not number events)', () => {
    const parsed = WireEvent.parse({ ...sample('node.started'), seq: 9 })
    expect(parsed).not.toHaveProperty('seq')
  })
})

describe('JobEvent', () => {
  it.each(samples.map((e) => [e.kind, e] as const))('parses %s and keeps seq', (_kind, event) => {
    const parsed = JobEvent.parse({ ...event, seq: 7 })
    expect(parsed).toEqual({ ...event, seq: 7 })
    expect(parsed.seq).toBe(7)
  })

  it('requires seq to be a whole number of at least 1', () => {
    expect(JobEvent.safeParse(sample('node.started')).error?.issues[0]?.path).toEqual(['seq'])
    expect(JobEvent.safeParse({ ...sample('node.started'), seq: 0 }).error?.issues[0]?.path).toEqual(['seq'])
    expect(JobEvent.safeParse({ ...sample('node.started'), seq: 1.5 }).success).toBe(false)
    expect(JobEvent.safeParse({ ...sample('node.started'), seq: 1 }).success).toBe(true)
  })

  it('rejects an unknown kind even with a seq', () => {
    const r = JobEvent.safeParse({ ...envelope, kind: 'node.exploded', node: 'web-1', seq: 1 })
    expect(r.success).toBe(false)
  })
})
