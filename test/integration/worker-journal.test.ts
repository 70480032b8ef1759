import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { type Ack, type Bus, type Durable, type StreamMessage, subjects, type Task, type WireEvent } from '@apiary/shared'
import { silentLogger } from '@apiary/shared/runtime'
import { createMemoryBus } from '@apiary/shared/memory-bus'
import { type InventoryNode } from '@apiary/shared/inventory'
import { createSshPool, journalDir, LOST_ON_RESTART, openJournal, startSshWorker, startWorker, type Worker } from '@apiary/worker'
import { TEST_CONFIG } from '../conformance/durable-suite.ts'
import { type Sshd, startSshd, type TempDir, tempDir, testQueenKey, waitUntil } from '../harness/index.ts'
import { signedTask } from './signed-task.ts'

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
    await waitUntil(() => ids.includes(finishedId), 'the end to be published')
    expect(ids.filter((id) => id.startsWith('jonce00001/'))).toEqual(['jonce00001/web-1/started', 'jonce00001/web-1/output/1', finishedId])
    // Finished: the answer says how it ended, and the end is published again (the stream keeps one).
    await expect(ask(task)).resolves.toEqual({ accepted: true, by: 'web-1', already: 'ok' })
    await waitUntil(() => ids.filter((id) => id === finishedId).length === 2, 'the end to be published again')
    expect(await lines(out)).toEqual(['ran'])
    expect((await storedEvents(base, 'jonce00001')).map((e) => e.kind)).toEqual(['node.started', 'node.output', 'node.finished'])
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
    await waitUntil(() => ids.filter((id) => id === 'jdone00001/web-2/finished').length === 2, 'the end of the finished task to be published again')
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
