import { describe, expect, it } from 'vitest'
import { EVENT_KINDS, JobEvent, MAX_HUMAN, MAX_OUTPUT_DATA, MAX_OUTPUT_HUMAN, WireEvent } from './event.ts'
import { MAX_CAUSE } from './job.ts'
import type { Facts } from './operation.ts'

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

const facts: Facts = {
  hostname: 'web-1',
  os: 'Debian GNU/Linux 12 (bookworm)',
  platform: 'linux',
  kernel: '6.1.0-18-amd64',
  arch: 'x64',
  cpus: { count: 8, model: 'AMD EPYC 7B13' },
  memory: { totalBytes: 33_554_432_000, availableBytes: 20_000_000_000 },
  uptimeSeconds: 86_400,
  loadAverage: [0.1, 0.2, 0.3],
}
/** The first problem's path, or undefined when `patch` on a sample of `kind` parses. */
const problem = (kind: WireEvent['kind'], patch: Record<string, unknown>) => {
  const r = WireEvent.safeParse({ ...sample(kind), ...patch })
  return r.success ? undefined : r.error.issues[0]?.path.join('.')
}

describe('node.finished result', () => {
  it('is what facts and ping produce: Facts, or { pong: true }', () => {
    expect(WireEvent.parse({ ...sample('node.finished'), result: facts })).toMatchObject({ result: facts })
    expect(WireEvent.parse({ ...sample('node.finished'), result: { pong: true } })).toMatchObject({ result: { pong: true } })
    expect(problem('node.finished', {})).toBeUndefined()
  })

  it('refuses any other shape', () => {
    for (const result of [{ pong: false }, { pong: true, more: 1 }, 'ok', 42, [], { hostname: 'x' }]) expect(problem('node.finished', { result })).toBe('result')
  })

  it('refuses an object nested 300,000 deep, without a stack overflow (no JSON.stringify could store it)', () => {
    let deep: unknown = 1
    for (let i = 0; i < 300_000; i++) deep = { a: deep }
    expect(problem('node.finished', { result: deep })).toBe('result')
    expect(problem('node.finished', { result: { ...facts, cpus: deep } })).toBe('result')
  })

  it('refuses facts longer than 8 KiB as JSON', () => {
    expect(problem('node.finished', { result: { ...facts, os: 'o'.repeat(7000) } })).toBeUndefined()
    expect(problem('node.finished', { result: { ...facts, os: 'o'.repeat(9000) } })).toBe('result')
  })
})

describe('string bounds', () => {
  it('bounds human to 4 KiB, and an output chunk to 64 Ki characters with 128 Ki of human', () => {
    expect(problem('node.started', { human: 'h'.repeat(MAX_HUMAN) })).toBeUndefined()
    expect(problem('node.started', { human: 'h'.repeat(MAX_HUMAN + 1) })).toBe('human')
    expect(problem('job.finished', { human: 'h'.repeat(MAX_HUMAN + 1) })).toBe('human')
    expect(problem('node.output', { data: 'd'.repeat(MAX_OUTPUT_DATA), human: 'h'.repeat(MAX_OUTPUT_HUMAN) })).toBeUndefined()
    expect(problem('node.output', { data: 'd'.repeat(MAX_OUTPUT_DATA + 1) })).toBe('data')
    expect(problem('node.output', { human: 'h'.repeat(MAX_OUTPUT_HUMAN + 1) })).toBe('human')
  })

  it('bounds a cause, a reason and a stop reason to 1 KiB, a signal to 32 characters, a digest to 64, a hive to 300', () => {
    expect(problem('node.finished', { cause: 'c'.repeat(MAX_CAUSE) })).toBeUndefined()
    expect(problem('node.finished', { cause: 'c'.repeat(MAX_CAUSE + 1) })).toBe('cause')
    expect(problem('node.finished', { signal: 'S'.repeat(33) })).toBe('signal')
    expect(problem('node.finished', { digest: 'f'.repeat(65) })).toBe('digest')
    expect(problem('job.halted', { reason: 'r'.repeat(MAX_CAUSE + 1) })).toBe('reason')
    expect(problem('job.cancelling', { reason: 'r'.repeat(MAX_CAUSE + 1) })).toBe('reason')
    expect(problem('job.finished', { stopReason: 'r'.repeat(MAX_CAUSE + 1) })).toBe('stopReason')
    expect(problem('job.region', { hive: 'h'.repeat(301) })).toBe('hive')
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

describe('node.finished startedAt', () => {
  it('is a time in whole milliseconds, or absent', () => {
    expect(problem('node.finished', { startedAt: 1_700_000_000_000 })).toBeUndefined()
    for (const startedAt of [-1, 1.5, '1700000000000', null]) expect(problem('node.finished', { startedAt })).toBe('startedAt')
  })
})
