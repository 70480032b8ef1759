import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { EventOf, FinalState, JobRequestInput } from '@apiary/shared'
import { finished } from '../harness/index.ts'
import { Fleet, type FleetOptions, REGION, TARGETS } from './chaos/fleet.ts'
import { EventTape, measureLeaderFailover, measureShareHandOver } from './chaos/measure.ts'
import { allOk, expectTruth, isFinished, isStarted, startStrikeJob } from './chaos/strike.ts'

/** How long the only queen stays dead before it is started again. */
const OUTAGE_MS = 1000
/** A job that harms nothing, to see a queen accept work. */
const PING: JobRequestInput = { operation: { type: 'ping' }, targets: TARGETS }

const firstStart = [isStarted, 'a first node to start'] as const

/**
 * One fleet for a describe block: started before its tests, every process stopped after them
 * whatever happened; after each test its clients are closed and (with `heal`) whatever the
 * strike killed is started again. A failed test's logs, and the events read and stored of its
 * jobs, are written to a directory it names.
 */
function useFleet(opts: FleetOptions & { heal: boolean }): { readonly fleet: Fleet } {
  const ctx = {} as { fleet: Fleet }
  beforeAll(async () => {
    ctx.fleet = await Fleet.start(opts)
  }, 120_000)
  beforeEach(({ onTestFailed, task }) => {
    ctx.fleet.forgetJobs()
    onTestFailed(async () => console.log(`chaos: logs of "${task.name}" in ${await ctx.fleet.dumpLogs(task.name)}`))
  })
  afterEach(async () => {
    await ctx.fleet?.closeClients()
    if (opts.heal) await ctx.fleet?.heal()
  }, 60_000)
  afterAll(async () => {
    await ctx.fleet?.stop()
  }, 30_000)
  return ctx
}

/** The strike's job; nats-server killed (SIGKILL) once a node started, and started again at once on its port and store. */
async function natsBlink(fleet: Fleet): Promise<void> {
  const job = await startStrikeJob(fleet, fleet.client())
  await job.tape.next(...firstStart)
  await fleet.bus.nats.kill()
  await fleet.bus.nats.restart()
  await expectTruth(fleet, job, allOk(job.targets))
}

/**
 * Strikes on a running job, every role its own OS process on the authenticated JetStream bus,
 * each struck with SIGKILL (docs/failure-model.md, strike by strike). After each: every node's
 * final state is what really happened, nothing ran twice, the states add up, and the stream a
 * client given every queen read across the strike is gapless and ends in job.finished.
 *
 * One queen at first; the strike on the leader starts the standby, which stays for the last.
 */
describe('chaos on one nats-server', () => {
  const ctx = useFleet({ heal: true })

  it('three workers killed: the one running its task ends lost once its deadline passed, the one done stays ok, the one not yet dispatched never runs', async () => {
    const { fleet } = ctx
    // A silent worker may be paused, not gone: its node is judged lost only after its task's deadline (5 s) and the queen's grace.
    const job = await startStrikeJob(fleet, fleet.client(), { timeoutMs: 5000 })
    // One finished, one that started after it (its task has just begun), one not dispatched yet.
    const done = await job.tape.next(isFinished, 'a first node to finish')
    const running = await job.tape.next((ev): ev is EventOf<'node.started'> => isStarted(ev) && ev.seq > done.ev.seq, 'a node to start after the first finished')
    const started = new Set(job.tape.events.filter(isStarted).map((e) => e.node))
    const pending = [...job.targets].reverse().find((n) => !started.has(n))
    expect(pending, 'a node not dispatched yet').toBeDefined()
    const victims = [done.ev.node, running.ev.node, pending!]
    await Promise.all(victims.map((n) => fleet.workers.find((w) => w.name === n)!.kill()))
    const expected: Record<string, FinalState> = { ...allOk(job.targets), [running.ev.node]: 'lost', [pending!]: 'error' }
    const events = await expectTruth(fleet, job, expected)
    expect(events.filter(isFinished).find((e) => e.node === pending)?.cause).toMatch(/unreachable/)
  })

  it('a worker frozen (SIGSTOP) mid-task past three heartbeats and past its task’s timeout, then thawed: its node ends with its real result, not lost', async () => {
    const { fleet } = ctx
    const timeoutMs = 3000
    const job = await startStrikeJob(fleet, fleet.client(), { timeoutMs, sleepS: 1 })
    const start = await job.tape.next(...firstStart)
    const seen = performance.now()
    const worker = fleet.workers.find((w) => w.name === start.ev.node)!
    const leader = await fleet.leader()
    worker.pause()
    try {
      // The leader saw it go silent (no heartbeat for three intervals) while its node ran.
      await leader.waitFor(/workers of running nodes stopped heartbeating/, 15_000)
      // Frozen past the task's timeout too (its command, 1 s, ended long before): time to pass, nothing to await.
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, timeoutMs + 500 - (performance.now() - seen))))
    } finally {
      worker.resume()
    }
    await expectTruth(fleet, job, allOk(job.targets))
  })

  it('the hive holding the share killed with another hive running: that hive takes the share over, nothing skipped', async () => {
    const { fleet } = ctx
    const job = await startStrikeJob(fleet, fleet.client())
    const region = await job.tape.next((ev): ev is EventOf<'job.region'> => ev.kind === 'job.region', 'the share handed to a hive')
    const holder = fleet.hives.find((h) => h.name === region.ev.hive)
    expect(holder, `a hive of the fleet took the share (${region.ev.human})`).toBeDefined()
    await job.tape.next(...firstStart)
    const handOver = await measureShareHandOver(job.tape, () => holder!.kill(), REGION, holder!.name)
    console.log(`chaos: share's hive killed → job.region of ${handOver.hive} in ${handOver.ms} ms`)
    expect(fleet.hives.map((h) => h.name)).toContain(handOver.hive)
    await expectTruth(fleet, job, allOk(job.targets))
  })

  it('nats-server killed and started again on its port and store mid-job, one queen: nothing lost, nothing run twice', async () => {
    expect(ctx.fleet.runningQueens(), 'one queen').toHaveLength(1)
    await natsBlink(ctx.fleet)
  })

  it('the only queen killed and started again on its state dir and port: the job goes on, every node ok once', async () => {
    const { fleet } = ctx
    const [queen, standby] = fleet.queens
    expect(standby!.started, 'no standby yet').toBe(false)
    const job = await startStrikeJob(fleet, fleet.client([queen!]))
    await job.tape.next(...firstStart)
    await queen!.kill()
    await new Promise((resolve) => setTimeout(resolve, OUTAGE_MS))
    await queen!.start()
    await expectTruth(fleet, job, allOk(job.targets))
  })

  it('the leader killed with a standby running: the standby leads within 10 s, the job goes on, it accepts a new job', async () => {
    const { fleet } = ctx
    const standby = fleet.queens[1]!
    if (!standby.started) await fleet.startStandby(standby)
    const leader = await fleet.leader()
    const next = fleet.runningQueens().find((q) => q !== leader)!
    const job = await startStrikeJob(fleet, fleet.client())
    await job.tape.next(...firstStart)
    const [took] = await Promise.all([measureLeaderFailover(() => leader.kill(), [next.url], fleet.token, PING), next.leading(10_000)])
    console.log(`chaos: leader killed → a standby accepted a job in ${took.ms} ms`)
    await expectTruth(fleet, job, allOk(job.targets))
    // And the job it accepted runs on every worker.
    const ping = await EventTape.follow(fleet.client(), took.jobId).done
    expect(finished(ping).counts).toEqual({ ok: fleet.nodes.length })
  })

  it('nats-server killed and started again on its port and store mid-job, a standby running: one queen leads at a time, nothing lost, nothing run twice', async () => {
    const { fleet } = ctx
    expect(fleet.runningQueens(), 'a leader and a standby').toHaveLength(2)
    const leaders = fleet.watchLeaders()
    const failed = await natsBlink(fleet).then(
      () => undefined,
      (err: unknown) => err,
    )
    expect.soft(await leaders.stop(), 'spans of time when two queens said they led').toEqual([])
    if (failed !== undefined) throw failed
  })
})

/** The same fleet on three nats-servers in a JetStream cluster, every stream and the lease bucket R3, every daemon given all three servers. */
describe('chaos on a three-server cluster', () => {
  const ctx = useFleet({ cluster: true, heal: false })

  // The strike that reorders a node's events: a node.finished republished while a
  // node.started is retried through the new stream leader can be stored first. The queen puts
  // them back in their task's order (docs/failure-model.md), so the output is all there.
  it('the server leading the events stream (and the job log, when it leads both) killed mid-job: the others go on, nothing lost, nothing run twice', async () => {
    const { fleet } = ctx
    const job = await startStrikeJob(fleet, fleet.client())
    await job.tape.next(...firstStart)
    // The server every worker's and hive's events are written through: a new stream leader is
    // elected while tasks report. It often leads the job log (the leader's commits) as well:
    // both streams then elect at once.
    const streams = ['APIARY_EVENTS', 'APIARY_LOG', 'KV_APIARY_LEASES']
    const leaders = await Promise.all(streams.map((s) => fleet.streamLeader(s)))
    const server = fleet.bus.servers.find((s) => s.name === leaders[0])
    expect(server, `the events' leader ${leaders[0]} is one of the cluster`).toBeDefined()
    await server!.kill()
    console.log(`chaos: killed ${server!.name}, the leader of ${streams.filter((_, i) => leaders[i] === server!.name).join(', ')}`)
    await expectTruth(fleet, job, allOk(job.targets))
  })
})
