import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { EventOf, Identity, JobEvent } from '@apiary/shared'
import { CLOSE_MARGIN_MS } from '@apiary/shared/runtime'
import { freePort, runBin, waitUntil } from '../harness/index.ts'
import { type Daemon, Fleet, REGION } from './chaos/fleet.ts'
import { EventTape } from './chaos/measure.ts'
import { allOk, expectTruth, isFinished, isStarted, type StrikeJob, startStrikeJob } from './chaos/strike.ts'

/** Drain graces, as each daemon is started with them. */
const GRACE_MS = { queen: 10_000, hive: 10_000, worker: 20_000 }
/** The worker whose task is made to outlast its grace. */
const SHORT = 'w-8'
const SHORT_GRACE_MS = 5000
const METRICS_TOKEN = 'metrics-token-0123456789abcdef'

/**
 * SIGTERM on each role mid-job, every daemon its own OS process on the authenticated JetStream
 * bus (the chaos fleet): each drains and exits 0 within its grace (and the close margin past
 * it), and nothing is lost or run twice. And what each daemon's /metrics says of a job.
 */
describe('drain on SIGTERM, and metrics', () => {
  const ports = new Map<string, number>()
  let fleet: Fleet
  beforeAll(async () => {
    fleet = await Fleet.start({
      async extraArgs(who: Identity, dir: string) {
        const grace = who.role === 'worker' && who.id === SHORT ? SHORT_GRACE_MS : GRACE_MS[who.role as keyof typeof GRACE_MS]
        const args = ['--drain-grace', `${grace}ms`]
        if (who.role === 'queen') return args
        const tokenFile = join(dir, 'metrics.token')
        await writeFile(tokenFile, METRICS_TOKEN, { mode: 0o600 })
        const port = await freePort()
        ports.set(who.id, port)
        return [...args, '--metrics-port', String(port), '--metrics-token-file', tokenFile]
      },
    })
  }, 120_000)
  beforeEach(({ onTestFailed, task }) => {
    fleet.forgetJobs()
    onTestFailed(async () => console.log(`drain: logs of "${task.name}" in ${await fleet.dumpLogs(task.name)}`))
  })
  afterEach(async () => {
    await fleet?.closeClients()
    await fleet?.heal()
  }, 60_000)
  afterAll(async () => {
    await fleet?.stop()
  }, 60_000)

  const metricsUrl = (d: Daemon) => `http://127.0.0.1:${ports.get(d.name)}`
  const scrape = async (url: string, token?: string) => {
    const res = await fetch(`${url}/metrics`, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: AbortSignal.timeout(5000) })
    return { status: res.status, text: await res.text() }
  }
  const metricsOf = async (d: Daemon) => {
    const r = await scrape(metricsUrl(d), METRICS_TOKEN)
    expect(r.status, `${d.name}'s /metrics`).toBe(200)
    return r.text
  }
  const readyz = (d: Daemon) =>
    fetch(`${metricsUrl(d)}/readyz`, { signal: AbortSignal.timeout(2000) }).then(
      (r) => r.status,
      () => undefined,
    )
  const worker = (name: string) => fleet.workers.find((w) => w.name === name)!
  /** SIGTERM; resolves with how it exited, SIGKILLed if it took longer than its grace and the close margin. */
  const terminate = (d: Daemon, graceMs: number) => d.terminate(graceMs + CLOSE_MARGIN_MS)

  it('counts a job on every daemon (nodes finished ok by the node count), with no job or node id among the labels; /metrics needs its token', async () => {
    const leader = await fleet.leader()
    const before = { queen: await scrape(leader.url, fleet.token), hives: await Promise.all(fleet.hives.map(metricsOf)), workers: await Promise.all(fleet.workers.map(metricsOf)) }
    expect(before.queen.status).toBe(200)
    const job = await startStrikeJob(fleet, fleet.client())
    await job.tape.next(isStarted, 'a first node to start')
    // The stream this test reads is open on the queen while the job runs.
    expect(sample((await scrape(leader.url, fleet.token)).text, 'apiary_sse_clients')).toBeGreaterThanOrEqual(1)
    await expectTruth(fleet, job, allOk(job.targets))

    const n = job.targets.length
    const queen = (await scrape(leader.url, fleet.token)).text
    const delta = (after: string, was: string, name: string, labels: Record<string, string> = {}) => sample(after, name, labels) - sample(was, name, labels)
    expect(delta(queen, before.queen.text, 'apiary_nodes_finished_total', { state: 'ok' })).toBe(n)
    expect(delta(queen, before.queen.text, 'apiary_jobs_finished_total', { state: 'ok' })).toBe(1)
    expect(delta(queen, before.queen.text, 'apiary_job_duration_seconds_count', { state: 'ok' })).toBe(1)
    expect(delta(queen, before.queen.text, 'apiary_node_duration_seconds_count', { state: 'ok' })).toBe(n)
    expect(delta(queen, before.queen.text, 'apiary_dispatch_latency_seconds_count', { outcome: 'accepted' })).toBe(1)
    expect(delta(queen, before.queen.text, 'apiary_events_ingested_total')).toBeGreaterThanOrEqual(n)
    expect(delta(queen, before.queen.text, 'apiary_store_commit_seconds_count')).toBeGreaterThan(0)
    // A hive counts a node once it hears its end, a moment after the queen may have.
    await expect
      .poll(async () => {
        const hives = await Promise.all(fleet.hives.map(metricsOf))
        const sum = (name: string, labels: Record<string, string>) => hives.reduce((t, h, i) => t + delta(h, before.hives[i]!, name, labels), 0)
        return { finished: sum('apiary_nodes_finished_total', { state: 'ok' }), delivered: sum('apiary_delivery_latency_seconds_count', { outcome: 'accepted' }) }
      }, { timeout: 10_000, interval: 100 })
      .toEqual({ finished: n, delivered: n })
    const workers = await Promise.all(fleet.workers.map(metricsOf))
    workers.forEach((w, i) => {
      expect(delta(w, before.workers[i]!, 'apiary_nodes_finished_total', { state: 'ok' }), fleet.workers[i]!.name).toBe(1)
      expect(delta(w, before.workers[i]!, 'apiary_node_duration_seconds_count', { state: 'ok' }), fleet.workers[i]!.name).toBe(1)
      expect(sample(w, 'apiary_bus_connected')).toBe(1)
    })

    const ids = new Set([job.jobId, ...fleet.daemons.map((d) => d.name)])
    for (const text of [queen, ...workers, ...(await Promise.all(fleet.hives.map(metricsOf)))]) {
      expect(labelValues(text).filter((v) => ids.has(v) || v.includes(job.jobId))).toEqual([])
    }

    // Without the token (or with another), no metrics; the probes need none and say nothing.
    const w = fleet.workers[0]!
    for (const d of [w, fleet.hives[0]!]) {
      expect((await scrape(metricsUrl(d))).status).toBe(401)
      expect((await scrape(metricsUrl(d), 'not-the-token')).status).toBe(401)
      const ready = await fetch(`${metricsUrl(d)}/readyz`)
      expect([ready.status, await ready.text()]).toEqual([200, 'ready\n'])
    }
    expect((await scrape(leader.url)).status).toBe(401)
    // The container's health check: the daemon's own /readyz.
    const health = await runBin('apiary-worker', ['--health'], { APIARY_METRICS_PORT: String(ports.get(w.name)) })
    expect(health.code, health.stderr).toBe(0)
    const none = await runBin('apiary-worker', ['--health'], { APIARY_METRICS_PORT: String(await freePort()) })
    expect(none.code).toBe(1)
    expect(none.stderr).toMatch(/^apiary-worker --health: \/readyz on 127\.0\.0\.1:\d+: /)
  })

  it('a worker told to stop mid-task finishes it and exits 0: every node ok, none run twice', async () => {
    const job = await startStrikeJob(fleet, fleet.client())
    const started = await job.tape.next((ev): ev is EventOf<'node.started'> => isStarted(ev) && ev.node !== SHORT, 'a node to start')
    const exit = await terminate(worker(started.ev.node), GRACE_MS.worker)
    expect(exit).toEqual({ code: 0, signal: null })
    // It left once its task had ended: the end is in the stream before the worker exited.
    const events = await expectTruth(fleet, job, allOk(job.targets))
    expect(events.filter(isFinished).find((e) => e.node === started.ev.node)?.state).toBe('ok')
    expect(worker(started.ev.node).output()).toMatch(/"msg":"drained"/)
  })

  it('a worker whose task outlasts its grace says it drains (the queen plans its node draining and ends a new job there error without sending the task), is not ready, stops the task when the grace ends (cancelled, saying why), and exits 0', async () => {
    const client = fleet.client()
    const file = join(fleet.dir.path, 'ran-long')
    const { jobId, nodes } = await client.submit({
      operation: { type: 'exec', shell: true, command: `echo "$APIARY_NODE_ID" >> ${file}; sleep 60` },
      targets: SHORT,
      rollout: { timeoutMs: 120_000 },
    })
    const job: StrikeJob = { jobId, targets: nodes, file, tape: EventTape.follow(client, jobId, 90_000) }
    fleet.noteJob(jobId, () => job.tape.events)
    await job.tape.next(isStarted, `${SHORT}'s task to start`)
    const w = worker(SHORT)
    expect(await readyz(w)).toBe(200)
    const exited = terminate(w, SHORT_GRACE_MS)
    // Draining: not ready, while it still runs its task.
    await waitUntil(async () => (await readyz(w)) === 503 || !w.running, `${SHORT} to say it is not ready`)
    expect(w.running, `${SHORT} still drains`).toBe(true)
    // Its heartbeat says so at once: the queen lists it draining and plans it as such.
    await waitUntil(async () => (await client.nodes()).find((n) => n.id === SHORT)?.draining === true, `the queen to list ${SHORT} as draining`)
    const plan = await client.plan({ operation: { type: 'ping' }, targets: SHORT })
    expect([plan.online, plan.draining]).toEqual([1, { nodes: 1, ids: [SHORT] }])
    // A new job meanwhile ends it error, saying why, without sending it the task (only this
    // node's worker could run it): the worker refused nothing.
    const refusedBefore = sample(await metricsOf(w), 'apiary_tasks_refused_total', { reason: 'draining' })
    const late = await client.submit({ operation: { type: 'ping' }, targets: SHORT })
    const lateEnds = (await EventTape.follow(client, late.jobId).done).filter(isFinished)
    expect(lateEnds.map((e) => [e.node, e.state, e.cause])).toEqual([[SHORT, 'error', 'draining: its worker was told to stop and takes no new task']])
    expect(sample(await metricsOf(w), 'apiary_tasks_refused_total', { reason: 'draining' })).toBe(refusedBefore)
    expect(await exited).toEqual({ code: 0, signal: null })
    const events = await expectTruth(fleet, job, { [SHORT]: 'cancelled' })
    expect(events.filter(isFinished)[0]?.cause).toMatch(/drain grace \(5 s\) passed while the task ran/)
  })

  it('the hive holding the share told to stop hands it back: the other hive takes it over at once (the queen hears it left), every node ok, none run twice', async () => {
    const job = await startStrikeJob(fleet, fleet.client())
    const region = await job.tape.next((ev): ev is EventOf<'job.region'> => ev.kind === 'job.region', 'the share handed to a hive')
    const holder = fleet.hives.find((h) => h.name === region.ev.hive)!
    expect(holder, `a hive of the fleet took the share (${region.ev.human})`).toBeDefined()
    await job.tape.next(isStarted, 'a first node to start')
    expect(await terminate(holder, GRACE_MS.hive)).toEqual({ code: 0, signal: null })
    const leader = await fleet.leader()
    await leader.waitFor(new RegExp(`"id":"${holder.name}".*"msg":"hive left`), 10_000)
    const next = await job.tape.next((ev): ev is EventOf<'job.region'> => ev.kind === 'job.region' && ev.region === REGION && ev.hive !== holder.name, 'the share handed to the other hive')
    expect(fleet.hives.map((h) => h.name)).toContain(next.ev.hive)
    await expectTruth(fleet, job, allOk(job.targets))
  })

  it('the leading queen told to stop gives its lease up: the standby leads, the job goes on, every node ok once, and the stream a client reads is whole', async () => {
    const standby = fleet.queens[1]!
    if (!standby.started) await fleet.startStandby(standby)
    const leader = await fleet.leader()
    const next = fleet.runningQueens().find((q) => q !== leader)!
    const job = await startStrikeJob(fleet, fleet.client())
    await job.tape.next(isStarted, 'a first node to start')
    const [exit] = await Promise.all([terminate(leader, GRACE_MS.queen), next.leading(20_000)])
    expect(exit).toEqual({ code: 0, signal: null })
    expect(leader.output()).toMatch(/"msg":"stepped down: gave the leader lease up/)
    await expectTruth(fleet, job, allOk(job.targets))
    // The one left accepts work.
    const ping = await fleet.client([next]).submit({ operation: { type: 'ping' }, targets: 'role=chaos' })
    const done = await EventTape.follow(fleet.client([next]), ping.jobId).done
    expect(done.filter((e: JobEvent) => e.kind === 'node.finished')).toHaveLength(fleet.nodes.length)
  })
})

/** The sum of a metric's samples whose labels include `labels` (a counter or gauge; a histogram's `_count`). */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!m || m[1] !== name) continue
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]))
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) total += Number(m[3])
  }
  return total
}

/** Every label value in a scrape. */
function labelValues(text: string): string[] {
  return [...text.matchAll(/\w+="((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!)
}
