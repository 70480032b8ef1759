import { type Bus, type BusMessage } from '@apiary/shared'
import { silentLogger } from '@apiary/shared/runtime'
import { createNatsBus } from '@apiary/shared/nats'
import { createMemoryBus } from '@apiary/shared/memory-bus'
import { connect } from '@nats-io/transport-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type NatsServer, startNats } from '../harness/index.ts'
import { defineBusSuite } from './bus-suite.ts'

defineBusSuite('memory', async () => {
  const bus = createMemoryBus(silentLogger())
  return {
    bus,
    // Two createMemoryBus() calls are two unconnected worlds: the in-process bus has no server
    // in between, and the embedded cluster hands one instance to every role. So "another
    // handle on the same bus" is that same instance.
    other: async () => bus,
    teardown: () => bus.close(),
  }
})

defineBusSuite('nats', async () => {
  // A server per test: nothing one test leaves behind (subscriptions, closed connections) can
  // reach the next.
  const server = await startNats()
  const opened: Bus[] = []
  const open = async (name: string) => {
    const b = await createNatsBus({ url: server.url, name, log: silentLogger(), insecure: true })
    opened.push(b)
    return b
  }
  const bus = await open('conformance')
  return {
    bus,
    other: () => open(`conformance-other-${opened.length}`),
    async teardown() {
      await Promise.all(opened.map((b) => b.close()))
      await server.stop()
    },
  }
})

describe('bus: nats only', () => {
  let server: NatsServer
  beforeAll(async () => {
    server = await startNats()
  })
  afterAll(async () => {
    await server?.stop()
  })

  it('drops a body that is not JSON without calling the handler, and keeps delivering', async () => {
    const bus = await createNatsBus({ url: server.url, name: 'nats-only', log: silentLogger(), insecure: true })
    const raw = await connect({ servers: server.url, name: 'raw' })
    try {
      const subject = `conf.raw.${process.pid}.${Date.now()}`
      const seen: BusMessage[] = []
      let resolveValid!: () => void
      const valid = new Promise<void>((r) => (resolveValid = r))
      bus.subscribe(subject, (m) => {
        seen.push(m)
        if ((m.data as { valid?: boolean } | null)?.valid === true) resolveValid()
      })
      await bus.flush()
      const enc = new TextEncoder()
      // One raw connection, so the server delivers these in this order.
      raw.publish(subject, enc.encode('this is {not json'))
      raw.publish(subject, enc.encode('{"truncated": '))
      raw.publish(subject, enc.encode(JSON.stringify({ valid: true })))
      await raw.flush()
      await valid
      expect(seen.map((m) => m.data)).toEqual([{ valid: true }])
    } finally {
      await raw.close()
      await bus.close()
    }
  })

  it('fails to connect to a dead server with unreachable, promptly', async () => {
    // A port nobody listens on: the stopped server's.
    const dead = await startNats()
    await dead.stop()
    const err = await createNatsBus({ url: dead.url, name: 'dead', log: silentLogger(), connectTimeoutMs: 2000, insecure: true }).then(
      (b) => b.close().then(() => new Error('connected to a stopped server')),
      (e: unknown) => e,
    )
    expect((err as { code?: string }).code).toBe('unreachable')
    expect((err as Error).message).toContain(dead.url)
  })
})
