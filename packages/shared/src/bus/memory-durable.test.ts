import { afterEach, describe, expect, it, vi } from 'vitest'
import { silentLogger } from '../runtime/log.ts'
import { CLAIMS_MAX_AGE_MS, type DurableConfig } from './durable.ts'
import { createMemoryBus } from './memory.ts'

const CONFIG: DurableConfig = {
  replicas: 1,
  eventsMaxAgeMs: 60_000,
  logMaxAgeMs: 60_000,
  eventsMaxBytes: 1 << 20,
  logMaxBytes: 1 << 20,
  claimsMaxBytes: 8 * 1024,
  leaseTtlMs: 1000,
  dedupeWindowMs: 60_000,
}

describe('the in-process claims bucket', () => {
  afterEach(() => vi.restoreAllMocks())

  it('makes room again once the claims that filled it aged out, and not before', async () => {
    const bus = createMemoryBus(silentLogger())
    await bus.durable.ensure(CONFIG)
    let t = performance.now()
    vi.spyOn(performance, 'now').mockImplementation(() => t)
    const value = 'x'.repeat(1000)
    let n = 0
    while ((await bus.durable.claims.create(`eu.jfull0001.n${n}`, value).then(() => true, () => false)) && n < 100) n++
    expect(n).toBeGreaterThan(3)
    expect(n).toBeLessThan(100)
    // Full: refused, and nothing it holds was dropped to make room.
    await expect(bus.durable.claims.create('eu.jfull0001.late', value)).rejects.toMatchObject({ code: 'unavailable' })
    expect((await bus.durable.claims.get('eu.jfull0001.n0'))?.value).toBe(value)
    // Past the claims' age every one of them is gone, and a new claim fits.
    t += CLAIMS_MAX_AGE_MS + 1
    expect(await bus.durable.claims.create('eu.jfull0001.late', value)).toBeGreaterThan(0)
    expect(await bus.durable.claims.get('eu.jfull0001.n0')).toBeUndefined()
    await bus.close()
  })
})
