import { describe, expect, it } from 'vitest'
import { resolvePoolOptions, type SshPoolOptions } from './pool-options.ts'

const resolve = (o: Partial<SshPoolOptions> = {}) => resolvePoolOptions({ knownHosts: '/etc/apiary/known_hosts', ...o })

describe('resolvePoolOptions', () => {
  it('fills in the documented defaults, frozen all the way down', () => {
    const c = resolve()
    expect(c).toMatchObject({
      hostKeyPolicy: 'strict',
      maxPerHost: 2,
      maxTotal: 1024,
      channelsPerConnection: 8,
      idleMs: 60_000,
      keepaliveMs: 15_000,
      keepaliveCountMax: 3,
      connectTimeoutMs: 10_000,
      attempts: 3,
      backoff: { baseMs: 250, maxMs: 5000 },
      breaker: { failures: 5, cooldownMs: 30_000 },
    })
    expect(c.keyFile).toBeUndefined()
    expect(Object.isFrozen(c) && Object.isFrozen(c.backoff) && Object.isFrozen(c.breaker)).toBe(true)
  })

  it('keeps what is given, and defaults the rest of a nested option', () => {
    const c = resolve({ keyFile: '/k', agent: '/agent.sock', hostKeyPolicy: 'accept-new', backoff: { baseMs: 20 }, breaker: { cooldownMs: 0 }, idleMs: 0, keepaliveCountMax: 0 })
    expect(c).toMatchObject({ keyFile: '/k', agent: '/agent.sock', hostKeyPolicy: 'accept-new', idleMs: 0, keepaliveCountMax: 0 })
    expect(c.backoff).toEqual({ baseMs: 20, maxMs: 5000 })
    expect(c.breaker).toEqual({ failures: 5, cooldownMs: 0 })
  })
})
