import { afterEach, describe, expect, it } from 'vitest'
import type { Bus, DurableConfig } from '@apiary/shared'
import { createMemoryBus } from '@apiary/shared/memory-bus'
import { silentLogger } from '@apiary/shared/runtime'
import { type Verdict, VerdictOutbox } from './verdicts.ts'

const streams: DurableConfig = { replicas: 1, eventsMaxAgeMs: 60_000, logMaxAgeMs: 60_000, eventsMaxBytes: 1 << 20, logMaxBytes: 1 << 20, claimsMaxBytes: 1 << 20, leaseTtlMs: 1000, dedupeWindowMs: 60_000 }
const verdict = (o: Partial<Verdict> = {}): Verdict => ({ jobId: 'jverdict01', region: 'eu', node: 'n1', attempt: 0, state: 'skipped', cause: 'not dispatched: halted', deadline: Date.now() + 60_000, ...o })

describe('VerdictOutbox', () => {
  let bus: Bus
  afterEach(async () => {
    await bus.close()
  })

  it('stores a verdict once however often it is sent, apart per attempt, and apart from another hive’s', async () => {
    bus = createMemoryBus(silentLogger())
    await bus.durable.ensure(streams)
    const seen: unknown[] = []
    bus.subscribe('apiary.hev.>', (m) => void seen.push(m.data))
    const out = new VerdictOutbox(bus, silentLogger())
    out.send(verdict())
    out.send(verdict())
    out.send(verdict({ attempt: 1 }))
    await out.drain(5000)
    expect(await bus.durable.lastSeq('events')).toBe(2)
    // Another process's ids differ: nobody can guess this hive's and have its verdict dropped.
    const other = new VerdictOutbox(bus, silentLogger())
    other.send(verdict())
    await other.drain(5000)
    expect(await bus.durable.lastSeq('events')).toBe(3)
    await bus.flush()
    expect(seen).toHaveLength(3)
    expect(seen[0]).toMatchObject({ kind: 'node.finished', node: 'n1', state: 'skipped', cause: 'not dispatched: halted' })
  })

  it('gives up what is still on its way once the drain grace has passed', async () => {
    bus = createMemoryBus(silentLogger())
    // No streams yet: the publish waits for them until its deadline, an hour away.
    const out = new VerdictOutbox(bus, silentLogger())
    out.send(verdict({ deadline: Date.now() + 3600_000 }))
    await out.drain(20)
    await bus.durable.ensure(streams)
    expect(await bus.durable.lastSeq('events')).toBe(0)
  })
})
