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

  it.each<[Partial<SshPoolOptions>, string]>([
    // A cap of zero would make every acquire wait forever.
    [{ maxPerHost: 0 }, 'maxPerHost'],
    [{ maxTotal: -1 }, 'maxTotal'],
    [{ channelsPerConnection: 0 }, 'channelsPerConnection'],
    [{ attempts: 1.5 }, 'attempts'],
    [{ breaker: { failures: 0 } }, 'breaker.failures'],
    [{ keepaliveCountMax: -1 }, 'keepaliveCountMax'],
    // Node fires a timer of NaN, or of more than 2^31-1 ms, at once.
    [{ idleMs: Number.NaN }, 'idleMs'],
    [{ connectTimeoutMs: Number.POSITIVE_INFINITY }, 'connectTimeoutMs'],
    [{ backoff: { maxMs: 2 ** 31 } }, 'backoff.maxMs'],
    [{ keepaliveMs: -1 }, 'keepaliveMs'],
    [{ hostKeyPolicy: 'accept_new' as 'accept-new' }, 'hostKeyPolicy'],
  ])('refuses %j as invalid_input naming %s', (o, field) => {
    expect(() => resolve(o)).toThrow(expect.objectContaining({ code: 'invalid_input', field, message: expect.stringMatching(new RegExp(`^${field}: `)) }))
  })
})
