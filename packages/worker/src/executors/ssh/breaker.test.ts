import { describe, expect, it } from 'vitest'
import { backoffMs } from './backoff.ts'
import { HostBreaker } from './breaker.ts'

describe('HostBreaker', () => {
  const clock = () => {
    let now = 1000
    return { now: () => now, advance: (ms: number) => (now += ms) }
  }

  it('opens after consecutive failures, half-opens after the cool-down, closes on a good trial', () => {
    const c = clock()
    const b = new HostBreaker({ failures: 3, cooldownMs: 500 }, c.now)
    expect(b.failure()).toBe(false)
    expect(b.failure()).toBe(false)
    expect(b.state).toBe('closed')
    expect(b.failure()).toBe(true)
    expect(b.state).toBe('open')
    expect(b.permit()).toBe(false)
    c.advance(500)
    expect(b.state).toBe('half-open')
    expect(b.permit()).toBe(true)
    // One trial at a time.
    expect(b.permit()).toBe(false)
    b.success()
    expect(b.state).toBe('closed')
    expect(b.consecutiveFailures).toBe(0)
  })

  it('re-opens for another cool-down when the trial fails', () => {
    const c = clock()
    const b = new HostBreaker({ failures: 1, cooldownMs: 100 }, c.now)
    b.failure()
    c.advance(100)
    expect(b.permit()).toBe(true)
    expect(b.failure(true)).toBe(false)
    expect(b.state).toBe('open')
    c.advance(99)
    expect(b.state).toBe('open')
    c.advance(1)
    expect(b.permit()).toBe(true)
  })

  it('lets another trial through when one is abandoned', () => {
    const c = clock()
    const b = new HostBreaker({ failures: 1, cooldownMs: 0 }, c.now)
    b.failure()
    expect(b.permit()).toBe(true)
    b.abandon()
    expect(b.permit()).toBe(true)
  })

  it('a success in between resets the count', () => {
    const b = new HostBreaker({ failures: 2, cooldownMs: 100 })
    b.failure()
    b.success()
    b.failure()
    expect(b.state).toBe('closed')
  })
})

describe('backoffMs', () => {
  it('doubles, keeps half fixed and half random, and stops at the maximum', () => {
    const o = { baseMs: 100, maxMs: 1000 }
    expect(backoffMs(0, o, () => 0)).toBe(50)
    expect(backoffMs(0, o, () => 1)).toBe(100)
    expect(backoffMs(2, o, () => 0)).toBe(200)
    expect(backoffMs(2, o, () => 1)).toBe(400)
    expect(backoffMs(10, o, () => 1)).toBe(1000)
  })
})
