import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { type EventOf, FINAL_STATES, type JobEvent } from '@apiary/shared'
import { TestCluster } from '../harness/cluster.ts'
import { waitUntil } from '../harness/wait.ts'
import { type AgentFleet, failsAt, fleetNodeId, startAgentFleet } from './agents.ts'

const REGION = 'sim'
const N = 500

function finished(events: JobEvent[]): EventOf<'job.finished'> {
  const fin = events.at(-1)
  if (fin?.kind !== 'job.finished') throw new Error(`stream did not end with job.finished: ${fin?.kind}`)
  return fin as EventOf<'job.finished'>
}

function finalSum(fin: EventOf<'job.finished'>): number {
  return Object.entries(fin.counts)
    .filter(([s]) => (FINAL_STATES as readonly string[]).includes(s))
    .reduce((n, [, c]) => n + c, 0)
}

describe('failsAt', () => {
  it('picks exactly floor(n × rate) nodes, evenly spread, every k-th for rate 1/k', () => {
    const pick = (n: number, rate: number) => Array.from({ length: n }, (_, i) => i).filter((i) => failsAt(i, rate))
    expect(pick(500, 0.1)).toEqual(Array.from({ length: 50 }, (_, k) => 10 * k + 9))
    expect(pick(10_000, 0.005)).toHaveLength(50)
    expect(pick(10_000, 0.05)).toHaveLength(500)
    expect(pick(100, 0.57)).toHaveLength(57)
    expect(pick(100, 0)).toEqual([])
    expect(pick(7, 1)).toHaveLength(7)
    expect(fleetNodeId('sim', 0)).toBe('sim-00001')
  })
})

describe('agent fleet simulator against the real queen and hive over NATS', () => {
  let c: TestCluster
  let fleet: AgentFleet | undefined

  beforeAll(async () => {
    c = await TestCluster.start('nats')
    await c.addHive(REGION)
  })
  afterEach(async () => {
    await fleet?.close()
    fleet = undefined
  })
  afterAll(async () => {
    await c.stop()
  })

  async function start(prefix: string, opts: { failRate: number; durationMs?: number }): Promise<AgentFleet> {
    fleet = await startAgentFleet({ natsUrl: c.natsUrl!, count: N, region: REGION, prefix, heartbeatMs: 1000, labels: { fleet: prefix }, ...opts })
    const ids = new Set(fleet.nodes)
    await waitUntil(async () => (await c.client.nodes()).filter((n) => ids.has(n.id) && n.online && n.region === REGION).length === N, `${N} nodes online`)
    return fleet
  }

  it(`brings ${N} nodes online and fails exactly the expected ones`, async () => {
    const f = await start('okfail', { failRate: 0.1 })
    const nodes = await c.client.nodes()
    const mine = nodes.filter((n) => n.labels.fleet === 'okfail')
    expect(mine).toHaveLength(N)
    expect(mine.every((n) => n.online && n.executor === 'local' && n.status === 'healthy')).toBe(true)

    const { jobId, nodes: targets } = await c.client.submit({
      operation: { type: 'exec', argv: ['true'] },
      targets: 'fleet=okfail',
      rollout: { concurrency: '10%', maxErrors: '20%' },
    })
    expect(targets).toHaveLength(N)
    const events = await c.events(jobId)
    const fin = finished(events)
    const expectedFailing = f.failing()
    expect(expectedFailing).toHaveLength(50)
    expect(fin.counts).toEqual({ ok: 450, failed: 50 })
    expect(finalSum(fin)).toBe(N)
    expect(fin.stopReason).toBeNull()
    expect(fin.state).toBe('failed')

    const failedNodes = (events.filter((e) => e.kind === 'node.finished' && e.state === 'failed') as EventOf<'node.finished'>[]).map((e) => e.node)
    expect(failedNodes.sort()).toEqual([...expectedFailing].sort())
    // Two groups of identical results: the digest is the worker's, so equal output groups.
    expect(fin.groups.map((g) => [g.state, g.exitCode, g.count])).toEqual([
      ['ok', 0, 450],
      ['failed', 1, 50],
    ])
    expect(fin.groups[1]!.nodes.sort()).toEqual([...expectedFailing].sort())
    // Every node started, printed one line and finished once.
    for (const kind of ['node.started', 'node.output', 'node.finished'] as const) {
      const perNode = events.filter((e) => e.kind === kind).map((e) => (e as EventOf<typeof kind>).node)
      expect(new Set(perNode).size, kind).toBe(N)
      expect(perNode, kind).toHaveLength(N)
    }
    expect(f.stats()).toMatchObject({ tasks: N, refused: 0, running: 0 })

    // The stored output of a failing node is what the simulator printed.
    const logs = (await c.client.logsPage(jobId, { node: expectedFailing[0]! })).chunks
    expect(logs).toEqual([expect.objectContaining({ stream: 'stderr', data: 'simulated agent: failing as told (exit 1)\n' })])
  })

  it('stops early once the error budget is spent and ends every node in one state', async () => {
    const f = await start('budget', { failRate: 0.1 })
    f.setFailRate(0.5)
    const { jobId } = await c.client.submit({ operation: { type: 'exec', argv: ['true'] }, targets: 'budget-*', rollout: { concurrency: 20, maxErrors: 10 } })
    const fin = finished(await c.events(jobId, { output: false }))
    expect(fin.stopReason).toMatch(/^max errors reached/)
    expect(fin.counts.skipped ?? 0).toBeGreaterThan(N / 2)
    expect(finalSum(fin)).toBe(N)
  })

  it('ends running tasks cancelled when the job is cancelled', async () => {
    const f = await start('cancel', { failRate: 0, durationMs: 60_000 })
    const { jobId } = await c.client.submit({ operation: { type: 'exec', argv: ['sleep', '60'] }, targets: 'cancel-*', rollout: { concurrency: 100, timeoutMs: 120_000 } })
    const events: JobEvent[] = []
    let started = 0
    for await (const ev of c.client.stream(jobId)) {
      events.push(ev)
      if (ev.kind === 'node.started' && ++started === 100) await c.client.cancel(jobId)
    }
    const fin = finished(events)
    expect(fin.state).toBe('cancelled')
    expect(fin.counts).toEqual({ cancelled: 100, skipped: 400 })
    expect(finalSum(fin)).toBe(N)
    const cancelled = events.filter((e) => e.kind === 'node.finished' && e.state === 'cancelled') as EventOf<'node.finished'>[]
    // The nodes themselves confirmed it (the queen's own fallback would say `lost`).
    expect(cancelled.every((e) => e.signal === 'SIGTERM' && e.cause === 'cancelled by request')).toBe(true)
    expect(f.stats().running).toBe(0)
  })
})
