import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { type Ack, type Bus, type Durable, type Identity, type StreamMessage, subjects, type Task, type WireEvent } from '@apiary/shared'
import { silentLogger } from '@apiary/shared/runtime'
import { createMemoryBus } from '@apiary/shared/memory-bus'
import { createNatsBus } from '@apiary/shared/nats'
import { type InventoryNode } from '@apiary/shared/inventory'
import { createSshPool, journalDir, LOST_ON_RESTART, openJournal, startSshWorker, startWorker, type Worker } from '@apiary/worker'
import { TEST_CONFIG } from '../conformance/durable-suite.ts'
import { type Proc, type SecureBus, type Sshd, startBin, startSecureBus, startSshd, type TempDir, tempDir, testQueenKey, testSigner, waitUntil } from '../harness/index.ts'
import { signedTask } from './signed-task.ts'

/** An id without the worker's tag. */
const untag = (id: string) => id.replace(/\/[A-Za-z0-9_-]{22}\//, '/')

/** The bus as a worker sees it, with every durable publish's dedupe id noted, in order. */
function noting(bus: Bus): { bus: Bus; ids: string[] } {
  const ids: string[] = []
  const durable: Durable = { ...bus.durable, publish: (subject, data, opts) => (ids.push(opts.id), bus.durable.publish(subject, data, opts)) }
  return { bus: { ...bus, durable }, ids }
}

/** Every event the events stream holds for one job, in order. */
async function storedEvents(bus: Bus, jobId: string): Promise<WireEvent[]> {
  const seen: StreamMessage[] = []
  const reader = bus.durable.read('events', (m) => void seen.push(m), { afterSeq: 0, follow: false, maxBytes: 1 << 20 })
  await reader.done
  return seen.map((m) => m.data as WireEvent).filter((e) => e.jobId === jobId)
}

/** Resolves with the first `node.finished` of a job heard on `subject`. */
function finishedOn(bus: Bus, subject: string): Promise<WireEvent> {
  return new Promise((resolve) => {
    const sub = bus.subscribe(subject, (m) => {
      const ev = m.data as WireEvent
      if (ev.kind !== 'node.finished') return
      sub.unsubscribe()
      resolve(ev)
    })
  })
}

const lines = async (path: string) => (await readFile(path, 'utf8').catch(() => '')).split('\n').filter(Boolean)

describe('a worker runs a task at most once (in process)', () => {
  const base = createMemoryBus(silentLogger())
  const { bus, ids } = noting(base)
  let dir: TempDir
  let worker: Worker | undefined
  beforeAll(async () => {
    dir = await tempDir('journal')
    await base.durable.ensure(TEST_CONFIG)
  })
  afterEach(async () => {
    await worker?.close()
    worker = undefined
  })
  afterAll(async () => {
    await base.close()
    await dir.remove()
  })
  const ask = (t: Task) => bus.request(subjects.task('eu', t.node), t, { timeoutMs: 5000 }) as Promise<Ack>
  const start = async (nodeId: string) => {
    const journal = await openJournal({ dir: journalDir(dir.path, 'worker', nodeId), log: silentLogger() })
    worker = startWorker({ bus, log: silentLogger(), nodeId, region: 'eu', labels: {}, heartbeatMs: 60_000, queenKey: testQueenKey, journal })
    return journal
  }

  it('stores a task’s start and output without waiting for each other’s acknowledgement, and its end only after both', async () => {
    let release!: () => void
    const held = new Promise<void>((r) => (release = r))
    const order: string[] = []
    const slow: Bus = {
      ...bus,
      durable: {
        ...bus.durable,
        publish: async (subject, data, opts) => {
          const kind = (data as WireEvent).kind
          order.push(`sent ${kind}`)
          if (kind === 'node.started') await held
          const r = await bus.durable.publish(subject, data, opts)
          order.push(`stored ${kind}`)
          return r
        },
      },
    }
    const journal = await openJournal({ dir: journalDir(dir.path, 'worker', 'web-5'), log: silentLogger() })
    worker = startWorker({ bus: slow, log: silentLogger(), nodeId: 'web-5', region: 'eu', labels: {}, heartbeatMs: 60_000, queenKey: testQueenKey, journal })
    await expect(ask(signedTask('jpipe00001', 'web-5', { type: 'exec', argv: ['echo', 'hi'] }))).resolves.toEqual({ accepted: true, by: 'web-5' })
    await waitUntil(() => order.includes('stored node.output'), 'the output to be stored while the start is held')
    // The command has ended: its end waits for the start.
    await waitUntil(() => journal.get('jpipe00001', 'web-5')?.final != null, 'the end to be in the journal')
    expect(order).not.toContain('sent node.finished')
    release()
    await waitUntil(() => order.includes('stored node.finished'), 'the end to be stored')
    expect(order.indexOf('sent node.finished')).toBeGreaterThan(order.indexOf('stored node.started'))
    expect((await storedEvents(base, 'jpipe00001')).map((e) => ('step' in e ? e.step : undefined))).toEqual([2, 1, 3])
  })

  it('stores a task that ends at once as one event carrying its start; a longer one’s start alone, while it runs', async () => {
    // Held long enough that `true` ends within it however loaded the machine.
    const journal = await openJournal({ dir: journalDir(dir.path, 'worker', 'web-6'), log: silentLogger() })
    worker = startWorker({ bus, log: silentLogger(), nodeId: 'web-6', region: 'eu', labels: {}, heartbeatMs: 60_000, queenKey: testQueenKey, journal, startHoldMs: 60_000 })
    await expect(ask(signedTask('jfast00001', 'web-6', { type: 'exec', argv: ['true'] }))).resolves.toEqual({ accepted: true, by: 'web-6' })
    await waitUntil(async () => (await storedEvents(base, 'jfast00001')).length > 0, 'the task to be stored')
    const fast = await storedEvents(base, 'jfast00001')
    expect(fast).toEqual([expect.objectContaining({ kind: 'node.finished', state: 'ok', exitCode: 0, step: 2, startedAt: expect.any(Number) })])
    expect(ids.filter((id) => id.startsWith('jfast00001/')).map(untag)).toEqual(['jfast00001/web-6/finished'])
    // The journal keeps the end as it was sent: a re-offer sends the start with it again.
    expect(journal.get('jfast00001', 'web-6')?.final).toMatchObject({ startedAt: fast[0]!.kind === 'node.finished' ? fast[0]!.startedAt : -1 })
    await worker.close()

    await start('web-6')

    const gate = join(dir.path, 'go-web-6')
    await expect(ask(signedTask('jslow00001', 'web-6', { type: 'exec', shell: true, command: `while [ ! -e ${gate} ]; do sleep 0.02; done` }))).resolves.toEqual({ accepted: true, by: 'web-6' })
    await waitUntil(async () => (await storedEvents(base, 'jslow00001')).length > 0, 'the start to be stored while the task runs')
    expect(await storedEvents(base, 'jslow00001')).toEqual([expect.objectContaining({ kind: 'node.started', step: 1 })])
    await writeFile(gate, '')
    await waitUntil(async () => (await storedEvents(base, 'jslow00001')).length === 2, 'the end to be stored')
    const slow = await storedEvents(base, 'jslow00001')
    expect(slow[1]).toMatchObject({ kind: 'node.finished', state: 'ok', step: 2 })
    expect(slow[1]).not.toHaveProperty('startedAt')
  })

  it('answers a task delivered again with what it did, runs it once, and publishes its end again', async () => {
    await start('web-1')
    const out = join(dir.path, 'ran-web-1')
    const gate = join(dir.path, 'go-web-1')
    const script = `echo ran >> ${out}; echo hello; while [ ! -e ${gate} ]; do sleep 0.02; done`
    const task = signedTask('jonce00001', 'web-1', { type: 'exec', shell: true, command: script })
    const ended = finishedOn(bus, subjects.nodeEvents('eu', 'web-1', 'jonce00001'))
    await expect(ask(task)).resolves.toEqual({ accepted: true, by: 'web-1' })
    // Taken is on disk before the answer.
    const journalFile = join(journalDir(dir.path, 'worker', 'web-1'), 'journal.jsonl')
    expect((await lines(journalFile)).map((l) => JSON.parse(l) as { t: string; jobId: string })).toEqual([expect.objectContaining({ t: 'taken', jobId: 'jonce00001' })])
    // The same task again, and a re-offer under a new grant: it runs.
    await expect(ask(task)).resolves.toEqual({ accepted: true, by: 'web-1', already: 'running' })
    await expect(ask(signedTask('jonce00001', 'web-1', task.operation, { attempt: 1 }))).resolves.toEqual({ accepted: true, by: 'web-1', already: 'running' })
    await writeFile(gate, '')
    expect(await ended).toMatchObject({ state: 'ok', exitCode: 0 })
    const finishedId = 'jonce00001/web-1/finished'
    await waitUntil(() => ids.map(untag).includes(finishedId), 'the end to be published')
    expect(ids.filter((id) => id.startsWith('jonce00001/')).map(untag)).toEqual(['jonce00001/web-1/started', 'jonce00001/web-1/output/1', finishedId])
    // The ids carry a tag keyed by the worker's secret: nobody else can guess them.
    expect(ids.find((id) => id.startsWith('jonce00001/'))).toMatch(/^jonce00001\/web-1\/[A-Za-z0-9_-]{22}\/started$/)
    // Finished: the answer says how it ended, and the end is published again (the stream keeps one).
    await expect(ask(task)).resolves.toEqual({ accepted: true, by: 'web-1', already: 'ok' })
    await waitUntil(() => ids.map(untag).filter((id) => id === finishedId).length === 2, 'the end to be published again')
    expect(await lines(out)).toEqual(['ran'])
    // Numbered in the task's order, the end as the journal keeps it (published again with its step).
    expect((await storedEvents(base, 'jonce00001')).map((e) => [e.kind, 'step' in e ? e.step : undefined])).toEqual([
      ['node.started', 1],
      ['node.output', 2],
      ['node.finished', 3],
    ])
  })

  it('after a restart, a task it took and never finished ends lost and runs nothing; one it finished is answered and published again', async () => {
    const nodeId = 'web-2'
    const marker = join(dir.path, 'ran-web-2')
    const died = signedTask('jdied00001', nodeId, { type: 'exec', argv: ['touch', marker] })
    const done = signedTask('jdone00001', nodeId, { type: 'ping' })
    // The journal a worker leaves when it is killed: one task ended, one taken and never ended.
    const first = await start(nodeId)
    const ended = finishedOn(bus, subjects.nodeEvents('eu', nodeId, 'jdone00001'))
    await expect(ask(done)).resolves.toEqual({ accepted: true, by: nodeId })
    await ended
    await worker!.close()
    worker = undefined
    expect(first.stats().entries).toBe(1)
    const journalFile = join(journalDir(dir.path, 'worker', nodeId), 'journal.jsonl')
    await writeFile(journalFile, `${(await readFile(journalFile, 'utf8'))}${JSON.stringify({ t: 'taken', jobId: 'jdied00001', node: nodeId, at: Date.now(), expiresAt: died.grant.expiresAt })}\n`)

    const lost = finishedOn(bus, subjects.nodeEvents('eu', nodeId, 'jdied00001'))
    await start(nodeId)
    // Ended at once, before anyone asks.
    expect(await lost).toMatchObject({ state: 'lost', cause: LOST_ON_RESTART })
    await expect(ask(died)).resolves.toEqual({ accepted: true, by: nodeId, already: 'lost' })
    await expect(ask(done)).resolves.toEqual({ accepted: true, by: nodeId, already: 'ok' })
    await waitUntil(() => ids.map(untag).filter((id) => id === 'jdone00001/web-2/finished').length === 2, 'the end of the finished task to be published again')
    // Under the same ids as before the restart (the secret is kept beside the journal): stored once.
    expect(new Set(ids.filter((id) => id.startsWith('jdone00001/') && id.endsWith('/finished'))).size).toBe(1)
    await expect(readFile(marker)).rejects.toThrow()
    expect((await storedEvents(base, 'jdied00001')).map((e) => e.kind)).toEqual(['node.finished'])
  })

  it('an SSH worker keeps one journal for its hosts: a task delivered twice runs once on its host', async () => {
    let sshd: Sshd | undefined
    const pool = () => createSshPool({ knownHosts: sshd!.knownHosts, keyFile: sshd!.keyFile, attempts: 1 })
    let closeAll = async () => {}
    try {
      sshd = await startSshd({ nodes: 2 })
      const inventory = new Map<string, InventoryNode>(sshd.nodes.map((n) => [n.id, { id: n.id, address: n.host, port: n.port, user: sshd!.user, region: 'eu', labels: {} }]))
      const p = pool()
      const journal = await openJournal({ dir: journalDir(dir.path, 'ssh-worker', 'ssh-eu-1'), log: silentLogger() })
      const ssh = startSshWorker({ bus, log: silentLogger(), id: 'ssh-eu-1', region: 'eu', heartbeatMs: 60_000, inventory: () => inventory, pool: p, queenKey: testQueenKey, journal })
      closeAll = async () => {
        await ssh.close()
        await p.close()
      }
      const out = join(dir.path, 'ssh-ran')
      const tasks = sshd.nodes.map((n) => signedTask('jssh000001', n.id, { type: 'exec', shell: true, command: `echo ${n.id} >> ${out}` }, { agentless: true }))
      const askSsh = (t: Task) => bus.request(subjects.ssh('eu'), t, { timeoutMs: 5000 }) as Promise<Ack>
      const ends = tasks.map((t) => finishedOn(bus, subjects.sshEvents('eu', t.node, t.jobId)))
      expect(await Promise.all(tasks.map(askSsh))).toEqual(tasks.map(() => ({ accepted: true, by: 'ssh-eu-1' })))
      for (const ev of await Promise.all(ends)) expect(ev).toMatchObject({ state: 'ok' })
      expect(await Promise.all(tasks.map(askSsh))).toEqual(tasks.map(() => ({ accepted: true, by: 'ssh-eu-1', already: 'ok' })))
      expect((await lines(out)).sort()).toEqual(sshd.nodes.map((n) => n.id).sort())
      expect(journal.stats().entries).toBe(2)
    } finally {
      await closeAll()
      await sshd?.stop()
    }
  })

  it('runs a task once even when the journal’s bound forgot it while it ran', async () => {
    const nodeId = 'web-4'
    const journal = await openJournal({ dir: journalDir(dir.path, 'worker', nodeId), log: silentLogger(), maxEntries: 1 })
    worker = startWorker({ bus, log: silentLogger(), nodeId, region: 'eu', labels: {}, heartbeatMs: 60_000, queenKey: testQueenKey, journal })
    const out = join(dir.path, 'ran-web-4')
    const gate = join(dir.path, 'go-web-4')
    const op = { type: 'exec' as const, shell: true, command: `echo ran >> ${out}; while [ ! -e ${gate} ]; do sleep 0.02; done` }
    const [a, b] = [signedTask('jbound0001', nodeId, op), signedTask('jbound0002', nodeId, op)]
    const ends = [a, b].map((t) => finishedOn(bus, subjects.nodeEvents('eu', nodeId, t.jobId)))
    await expect(ask(a)).resolves.toEqual({ accepted: true, by: nodeId })
    await expect(ask(b)).resolves.toEqual({ accepted: true, by: nodeId })
    expect(journal.get(a.jobId, nodeId)).toBeUndefined()
    await expect(ask(a)).resolves.toEqual({ accepted: true, by: nodeId, already: 'running' })
    await writeFile(gate, '')
    await Promise.all(ends)
    expect(await lines(out)).toEqual(['ran', 'ran'])
  })

  it('refuses a task it cannot record, and runs nothing of it', async () => {
    const nodeId = 'web-3'
    const journal = await openJournal({ dir: journalDir(dir.path, 'worker', nodeId), log: silentLogger() })
    worker = startWorker({ bus, log: silentLogger(), nodeId, region: 'eu', labels: {}, heartbeatMs: 60_000, queenKey: testQueenKey, journal })
    // The journal is closed under the worker (as when its file can no longer be written).
    await journal.close()
    const marker = join(dir.path, 'ran-web-3')
    const reply = await ask(signedTask('jnorec0001', nodeId, { type: 'exec', argv: ['touch', marker] }))
    expect(reply).toEqual({ accepted: false, by: nodeId, reason: "the worker's journal could not record the task: the journal is closed" })
    expect(worker.running()).toBe(0)
    await expect(readFile(marker)).rejects.toThrow()
  })
})

const QUEEN: Identity = { role: 'queen', id: 'queen' }
const HIVE: Identity = { role: 'hive', region: 'eu', id: 'hive-eu-1' }
const NODE = 'wj-1'
const WORKER: Identity = { role: 'worker', region: 'eu', id: NODE }

/**
 * A real worker process on an authenticated nats-server with JetStream, killed with SIGKILL and
 * started again on the same state directory. The test plays the queen (it makes the streams)
 * and the hive (it sends the tasks and listens to the node's events).
 */
describe('a worker process runs a task at most once across its own restart', () => {
  let dir: TempDir
  let nats: SecureBus
  let queen: Bus
  let hive: Bus
  let worker: Proc | undefined
  const heard: WireEvent[] = []
  const orphans: number[] = []

  const startWorkerProc = async () => {
    worker = startBin('apiary-worker', ['--nats', nats.url, '--nats-creds', nats.creds(WORKER), '--queen-key', testSigner.publicKey, '--region', 'eu', '--node-id', NODE, '--state-dir', dir.path, '--heartbeat', '200ms'])
    await worker.waitFor(/worker ready/)
  }
  const kill = async () => {
    const w = worker!
    worker = undefined
    w.child.kill('SIGKILL')
    await w.exited
  }
  const ask = (t: Task) => hive.request(subjects.task('eu', NODE), t, { timeoutMs: 10_000 }) as Promise<Ack>
  const finishes = (jobId: string) => heard.filter((e) => e.jobId === jobId && e.kind === 'node.finished')
  /** Hears the job's events as its hive does, live. */
  const listen = async (jobId: string) => {
    for (const s of subjects.regionJobEvents('eu', jobId)) hive.subscribe(s, (m) => void heard.push(m.data as WireEvent))
    await hive.flush()
  }

  beforeAll(async () => {
    dir = await tempDir('worker-journal')
    nats = await startSecureBus(dir.path, [QUEEN, HIVE, WORKER])
    queen = await createNatsBus({ url: nats.url, name: 'test-queen', log: silentLogger(), identity: QUEEN, credsFile: nats.creds(QUEEN) })
    await queen.durable.ensure(TEST_CONFIG)
    hive = await createNatsBus({ url: nats.url, name: 'test-hive', log: silentLogger(), identity: HIVE, credsFile: nats.creds(HIVE) })
    await startWorkerProc()
  })
  afterAll(async () => {
    await worker?.stop()
    for (const pid of orphans) {
      try {
        process.kill(-pid, 'SIGKILL')
      } catch {
        // Gone already.
      }
    }
    await hive?.close()
    await queen?.close()
    await nats?.stop()
    await dir?.remove()
  })

  it('killed mid-task and restarted, it answers the re-offer "lost" and runs nothing again', async () => {
    const out = join(dir.path, 'ran-mid')
    const pidFile = join(dir.path, 'pid-mid')
    // The command outlives the worker (its own process group): the test ends it.
    const task = signedTask('jkill00001', NODE, { type: 'exec', shell: true, command: `echo $$ > ${pidFile}; echo ran >> ${out}; exec sleep 60` }, { timeoutMs: 120_000 })
    await listen(task.jobId)
    await expect(ask(task)).resolves.toEqual({ accepted: true, by: NODE })
    await waitUntil(async () => (await lines(out)).length === 1 && (await lines(pidFile)).length === 1, 'the command to run')
    orphans.push(Number((await lines(pidFile))[0]))
    await expect(ask(task)).resolves.toEqual({ accepted: true, by: NODE, already: 'running' })
    // Killed once its start is stored (a start is held a moment, for a task that ends at once).
    await waitUntil(async () => (await storedEvents(queen, 'jkill00001')).length === 1, 'the start to be stored')
    await kill()

    await startWorkerProc()
    await waitUntil(() => finishes('jkill00001').length === 1, 'the lost end to be published at start')
    expect(finishes('jkill00001')[0]).toMatchObject({ state: 'lost', cause: LOST_ON_RESTART })
    // The re-offer of a new attempt, as a standby hive sends it.
    await expect(ask(signedTask('jkill00001', NODE, task.operation, { timeoutMs: 120_000, attempt: 1 }))).resolves.toEqual({ accepted: true, by: NODE, already: 'lost' })
    expect(await lines(out)).toEqual(['ran'])
    const stored = await storedEvents(queen, 'jkill00001')
    expect(stored.map((e) => e.kind)).toEqual(['node.started', 'node.finished'])
    expect(stored[1]).toMatchObject({ state: 'lost' })
  })

  it('finished before it was killed, it answers the re-offer with the state and publishes the end again', async () => {
    const out = join(dir.path, 'ran-done')
    const task = signedTask('jdone00002', NODE, { type: 'exec', shell: true, command: `echo ran >> ${out}; echo done` })
    await listen(task.jobId)
    await expect(ask(task)).resolves.toEqual({ accepted: true, by: NODE })
    await waitUntil(() => finishes('jdone00002').length === 1, 'the task to end')
    await kill()
    await startWorkerProc()
    await expect(ask(task)).resolves.toEqual({ accepted: true, by: NODE, already: 'ok' })
    // Heard again live; stored once (the same dedupe id).
    await waitUntil(() => finishes('jdone00002').length === 2, 'the end to be published again')
    expect(finishes('jdone00002')[1]).toEqual(finishes('jdone00002')[0])
    expect((await storedEvents(queen, 'jdone00002')).map((e) => e.kind)).toEqual(['node.started', 'node.output', 'node.finished'])
    expect(await lines(out)).toEqual(['ran'])
  })

  it('loses none of a task’s events to a NATS restart while it runs: each is stored once, in order', async () => {
    const gate = join(dir.path, 'go-nats')
    const task = signedTask('jnats00001', NODE, { type: 'exec', shell: true, command: `echo one; while [ ! -e ${gate} ]; do sleep 0.02; done; echo two` })
    await listen(task.jobId)
    await expect(ask(task)).resolves.toEqual({ accepted: true, by: NODE })
    await waitUntil(async () => (await storedEvents(queen, task.jobId)).some((e) => e.kind === 'node.output'), 'the first output to be stored')
    // The rest of the task happens while the server is down.
    await nats.nats.kill()
    await writeFile(gate, '')
    await nats.nats.restart()
    await waitUntil(async () => (await storedEvents(queen, task.jobId)).some((e) => e.kind === 'node.finished'), 'the end to be stored', 30_000)
    const stored = await storedEvents(queen, task.jobId)
    expect(stored.at(0)?.kind).toBe('node.started')
    expect(stored.at(-1)).toMatchObject({ kind: 'node.finished', state: 'ok' })
    expect(stored.filter((e) => e.kind === 'node.output').map((e) => (e as { data: string }).data).join('')).toBe('one\ntwo\n')
    expect(stored.filter((e) => e.kind === 'node.finished')).toHaveLength(1)
  })

  it('keeps its journal to itself: the directory 0700, the file 0600', async () => {
    const d = journalDir(dir.path, 'worker', NODE)
    expect((await stat(d)).mode & 0o777).toBe(0o700)
    expect((await stat(join(d, 'journal.jsonl'))).mode & 0o777).toBe(0o600)
  })
})
