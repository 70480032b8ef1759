import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { EventOf, Identity, JobEvent } from '@apiary/shared'
import { createJobClient, type JobClient } from '@apiary/shared/client'
import { readSecretFile } from '@apiary/shared/runtime'
import { freePort, type Proc, type SecureBus, type Sshd, startBin, startSecureBus, startSshd, type TempDir, tempDir, waitUntil } from '../harness/index.ts'
import { EventTape } from './chaos/measure.ts'
import { isFinished, isStarted } from './chaos/strike.ts'

const REGION = 'eu'
const NODES = 12
const METRICS_TOKEN = 'metrics-token-0123456789abcdef'
const DRAIN_GRACE_MS = 20_000

/**
 * Two SSH workers of one region sharing its queue group, every role its own OS process on the
 * authenticated JetStream bus, reaching real sshd nodes.
 */
describe('two SSH workers of one region', () => {
  let bus: SecureBus
  let sshd: Sshd
  let dir: TempDir
  let client: JobClient
  let queenKey = ''
  let inventory = ''
  const procs: Proc[] = []
  const hives = new Map<string, Proc>()
  const workers = new Map<string, { proc: Proc; metricsPort: number }>()
  const sshIds = ['ssh-eu-1', 'ssh-eu-2'].map((id): Identity => ({ role: 'ssh-worker', region: REGION, id }))

  const startSshWorker = async (id: string) => {
    const state = join(dir.path, id)
    await mkdir(state, { recursive: true, mode: 0o700 })
    const tokenFile = join(state, 'metrics.token')
    await writeFile(tokenFile, METRICS_TOKEN, { mode: 0o600 })
    const metricsPort = workers.get(id)?.metricsPort ?? (await freePort())
    const proc = startBin('apiary-worker', [
      ...['--nats', bus.url, '--nats-creds', bus.creds({ role: 'ssh-worker', region: REGION, id }), '--queen-key', queenKey],
      ...['--ssh', '--id', id, '--region', REGION, '--inventory', inventory, '--known-hosts', sshd.knownHosts, '--heartbeat', '200ms'],
      ...['--state-dir', state, '--drain-grace', `${DRAIN_GRACE_MS}ms`, '--metrics-port', String(metricsPort), '--metrics-token-file', tokenFile],
    ])
    procs.push(proc)
    workers.set(id, { proc, metricsPort })
    await proc.waitFor(/ssh worker ready/)
    return proc
  }
  const inFlight = async (id: string) => {
    const res = await fetch(`http://127.0.0.1:${workers.get(id)!.metricsPort}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` }, signal: AbortSignal.timeout(2000) })
    return Number(/^apiary_tasks_in_flight (\S+)$/m.exec(await res.text())?.[1] ?? NaN)
  }
  const nodeIds = Array.from({ length: NODES }, (_, i) => `127.0.10.${i + 1}`)
  /** A job on every node: each task appends its node to `file` and sleeps, so a second run shows. */
  const submit = async (file: string, o: { concurrency: number; sleepS: number }) => {
    const { jobId, nodes } = await client.submit({
      operation: { type: 'exec', shell: true, command: `echo "$APIARY_NODE_ID" >> ${file}; sleep ${o.sleepS}` },
      targets: `region=${REGION}`,
      rollout: { concurrency: o.concurrency, timeoutMs: 30_000 },
    })
    expect([...nodes].sort()).toEqual([...nodeIds].sort())
    return { jobId, tape: EventTape.follow(client, jobId, 90_000) }
  }
  const linesOf = async (file: string) => (await readFile(file, 'utf8')).trim().split('\n').sort()

  beforeAll(async () => {
    ;[sshd, dir] = await Promise.all([startSshd({ nodes: NODES }), tempDir('e2e-ssh-workers')])
    const queenId = { role: 'queen', id: 'queen' } as const
    const hiveIds = ['hive-eu-1', 'hive-eu-2'].map((id): Identity => ({ role: 'hive', region: REGION, id }))
    bus = await startSecureBus(dir.path, [queenId, ...hiveIds, ...sshIds])
    queenKey = join(dir.path, 'signing.pub')
    inventory = join(dir.path, 'fleet.yaml')
    await writeFile(inventory, `defaults: { user: ${sshd.user}, region: ${REGION}, port: ${sshd.nodes[0]!.port}, identityFile: ${sshd.keyFile} }\nhosts: [ "127.0.10.[1-${NODES}]" ]\n`)
    const queen = startBin('apiary-queen', ['--nats', bus.url, '--nats-creds', bus.creds(queenId), '--port', '0', '--state-dir', dir.path, '--inventory', inventory])
    procs.push(queen)
    const queenUrl = (JSON.parse(await queen.waitFor(/queen listening/)) as { url: string }).url
    // Two hives: one holds a share, the other takes it over when it dies.
    for (const h of hiveIds) {
      const hive = startBin('apiary-hive', ['--nats', bus.url, '--nats-creds', bus.creds(h), '--queen-key', queenKey, '--region', REGION, '--id', h.id, '--heartbeat', '200ms'])
      procs.push(hive)
      hives.set(h.id, hive)
    }
    await Promise.all([...[...hives.values()].map((h) => h.waitFor(/ready/)), ...sshIds.map((w) => startSshWorker(w.id))])
    client = createJobClient({ url: queenUrl, token: await readSecretFile(join(dir.path, 'token'), 'token') })
    await waitUntil(async () => (await client.nodes()).filter((n) => n.online).length === NODES, 'every SSH node online')
  }, 120_000)
  afterEach(async () => {
    // Each test starts with both SSH workers serving.
    for (const w of sshIds) if (workers.get(w.id)?.proc.child.exitCode !== null) await startSshWorker(w.id)
  })
  afterAll(async () => {
    await client?.close()
    await Promise.all(procs.map((p) => p.stop()))
    await Promise.all([bus?.stop(), sshd?.stop()])
    await dir?.remove()
  })

  it('one told to stop mid-job leaves the queue group at once: the other takes every new task, every node ok, none refused as draining, none run twice, and it exits 0', async () => {
    const file = join(dir.path, 'ran-drain')
    const job = await submit(file, { concurrency: 4, sleepS: 2 })
    // Stopped once it runs a task of the job, with most of the job still to dispatch.
    const drainer = workers.get('ssh-eu-1')!.proc
    await waitUntil(async () => (await inFlight('ssh-eu-1')) >= 1, 'ssh-eu-1 to run a task')
    const stoppedAt = Date.now()
    drainer.child.kill('SIGTERM')
    expect(await drainer.exited).toEqual({ code: 0, signal: null })
    expect(drainer.output()).toMatch(/"msg":"draining: left the queue group; new tasks go to its other members"/)
    expect(drainer.output()).toMatch(/"msg":"drained"/)

    const events = await job.tape.done
    const ends = events.filter(isFinished)
    expect(ends.map((e) => [e.node, e.state, e.cause]).sort()).toEqual(nodeIds.map((n) => [n, 'ok', null]).sort())
    // Dispatched after the signal: all of them went to the other SSH worker.
    expect(job.tape.arrivals.filter((a) => isStarted(a.ev) && a.at > stoppedAt).length).toBeGreaterThanOrEqual(4)
    expect(await linesOf(file)).toEqual([...nodeIds].sort())
  })

  it('the hive holding the share killed mid-job, the other re-offers every open node to the queue group: whichever SSH worker each reaches, it runs once (the one that did not take it answers from its claim), every node ok', async () => {
    const file = join(dir.path, 'ran-reoffer')
    // Every node at once, and long enough to be running still when the share is offered again.
    const job = await submit(file, { concurrency: NODES, sleepS: 6 })
    const isRegion = (ev: JobEvent): ev is EventOf<'job.region'> => ev.kind === 'job.region'
    const held = await job.tape.next((ev): ev is EventOf<'job.region'> => isRegion(ev) && ev.hive !== null, 'the share handed to a hive')
    await waitUntil(async () => job.tape.events.filter(isStarted).length === NODES, 'every node to start', 20_000)
    // Both SSH workers run some: a re-offer of a task reaches the other worker about half the time.
    expect([await inFlight('ssh-eu-1'), await inFlight('ssh-eu-2')].every((n) => n > 0)).toBe(true)
    hives.get(held.ev.hive!)!.child.kill('SIGKILL')
    const next = await job.tape.next((ev): ev is EventOf<'job.region'> => isRegion(ev) && ev.hive !== held.ev.hive, 'the share offered again to the other hive', 20_000)
    const events = await job.tape.done
    // Offered again while the tasks still ran.
    expect(next.at).toBeLessThan(job.tape.arrivals.find((a) => isFinished(a.ev))!.at)
    expect(events.filter(isFinished).map((e) => [e.node, e.state]).sort()).toEqual(nodeIds.map((n) => [n, 'ok']).sort())
    expect(await linesOf(file)).toEqual([...nodeIds].sort())
  })
})
