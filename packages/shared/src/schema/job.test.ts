import { describe, expect, it } from 'vitest'
import { DEFAULT_OUTPUT_CAP, JobRequest, resolveCount, Rollout } from './job.ts'

describe('JobRequest defaults', () => {
  it('caps output at 1 MiB per node and rolls out 100 at a time with a 30 s timeout unless told otherwise', () => {
    const r = JobRequest.parse({ operation: { type: 'ping' }, targets: 'all' })
    expect(DEFAULT_OUTPUT_CAP).toBe(1024 * 1024)
    expect(r.outputCapBytes).toBe(1024 * 1024)
    expect(r.rollout).toEqual({ concurrency: 100, canary: 0, timeoutMs: 30_000, deliveryTimeoutMs: 5000 })
  })

  it('refuses an output cap outside 1 KiB … 64 MiB, naming the field', () => {
    const low = JobRequest.safeParse({ operation: { type: 'ping' }, targets: 'all', outputCapBytes: 10 })
    expect(low.error?.issues[0]?.path).toEqual(['outputCapBytes'])
  })
})

describe('counts and percentages', () => {
  it('resolves a percentage of the targets, rounding up and never to 0', () => {
    expect(resolveCount('10%', 10_000)).toBe(1000)
    expect(resolveCount('1%', 10_000)).toBe(100)
    expect(resolveCount('0.5%', 10)).toBe(1)
    expect(resolveCount('33%', 10)).toBe(4)
    expect(resolveCount(7, 10)).toBe(7)
  })

  it.each([0, '0%', '101%', '-5%', 'ten', 1.5])('refuses %j as a concurrency', (value) => {
    expect(Rollout.safeParse({ concurrency: value }).success).toBe(false)
  })
})
