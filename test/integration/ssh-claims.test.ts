import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Ack, type Bus, claimKey, type Identity, subjects, type Task, type WireEventOf } from '@apiary/shared'
import { silentLogger } from '@apiary/shared/runtime'
import { createMemoryBus } from '@apiary/shared/memory-bus'
import { createNatsBus } from '@apiary/shared/nats'
import { type InventoryNode } from '@apiary/shared/inventory'
import { createSshPool, memoryJournal, type SshWorker, startSshWorker } from '@apiary/worker'
import { TEST_CONFIG } from '../conformance/durable-suite.ts'
import { type SecureBus, type Sshd, startSecureBus, startSshd, type TempDir, tempDir, testQueenKey, waitUntil } from '../harness/index.ts'
import { signedTask } from './signed-task.ts'

const REGION = 'eu'
const lines = async (path: string) => (await readFile(path, 'utf8').catch(() => '')).split('\n').filter(Boolean)
const ask = (bus: Bus, t: Task) => bus.request(subjects.ssh(REGION), t, { timeoutMs: 5000 }) as Promise<Ack>

/** Every `node.finished` heard for `node` of `jobId` on the SSH workers' subject. */
function endsOf(bus: Bus, node: string, jobId: string) {
  const ends: WireEventOf<'node.finished'>[] = []
  const sub = bus.subscribe(subjects.sshEvents(REGION, node, jobId), (m) => {
    const ev = m.data as WireEventOf<'node.finished'>
    if (ev.kind === 'node.finished') ends.push(ev)
  })
  return { ends, stop: () => sub.unsubscribe() }
}

/**
 * The SSH workers of one region run a (job, node) at most once between them: each claims the
 * task in the region's claims bucket before it runs it, and one that finds it claimed answers
 * with what the claim says.
 */
describe('SSH workers of one region share a claim per task (nats-server with authentication, sshd)', () => {
  let dir: TempDir
  let sshd: Sshd
  let secure: SecureBus
  let hive: Bus
  const closers: Array<() => Promise<unknown>> = []
  const ids = ['ssh-eu-1', 'ssh-eu-2']
  const who = (id: string): Identity => ({ role: 'ssh-worker', region: REGION, id })

  beforeAll(async () => {
    ;[dir, sshd] = await Promise.all([tempDir('ssh-claims'), startSshd({ nodes: 2 })])
    const queenId: Identity = { role: 'queen', id: 'queen' }
    const hiveId: Identity = { role: 'hive', region: REGION, id: 'hive-eu-1' }
    secure = await startSecureBus(dir.path, [queenId, hiveId, ...ids.map(who)])
    const busOf = async (i: Identity) => {
      const b = await createNatsBus({ url: secure.url, name: `apiary-${i.role}:${i.id}`, log: silentLogger(), credsFile: secure.creds(i), identity: i })
      closers.push(() => b.close())
      return b
    }
    const queen = await busOf(queenId)
    await queen.durable.ensure(TEST_CONFIG)
    hive = await busOf(hiveId)
  })
  afterAll(async () => {
    for (const close of closers.reverse()) await close()
    await secure?.stop()
    await sshd?.stop()
    await dir?.remove()
  })

  /** An SSH worker of the region on its own authenticated connection, its journal in memory. */
  const startWorker = async (id: string): Promise<{ worker: SshWorker; bus: Bus }> => {
    const bus = await createNatsBus({ url: secure.url, name: `apiary-worker:${id}`, log: silentLogger(), credsFile: secure.creds(who(id)), identity: who(id) })
    const inventory = new Map<string, InventoryNode>(sshd.nodes.map((n) => [n.id, { id: n.id, address: n.host, port: n.port, user: sshd.user, region: REGION, labels: {} }]))
    const pool = createSshPool({ knownHosts: sshd.knownHosts, keyFile: sshd.keyFile, attempts: 1 })
    const worker = startSshWorker({ bus, log: silentLogger(), id, region: REGION, heartbeatMs: 60_000, inventory: () => inventory, pool, queenKey: testQueenKey, journal: memoryJournal({ log: silentLogger() }) })
    closers.push(async () => {
      await worker.close()
      await pool.close()
      await bus.close()
    })
    await bus.flush()
    return { worker, bus }
  }

  it('a task the other SSH worker took is answered `already` by the one the re-offer reaches (running, then its end, published again), and runs once on its host', async () => {
    const node = sshd.nodes[0]!.id
    const out = join(dir.path, 'ran-once')
    const op = { type: 'exec' as const, shell: true, command: `echo "$APIARY_NODE_ID" >> ${out}; sleep 1.5` }
    const first = signedTask('jclaims001', node, op, { agentless: true })
    const heard = endsOf(hive, node, first.jobId)
    try {
      const one = await startWorker('ssh-eu-1')
      expect(await ask(hive, first)).toEqual({ accepted: true, by: 'ssh-eu-1' })
      // The other joins the queue group and the first leaves it (a drain): the re-offer, under
      // the next attempt's grant (a standby hive's), can only reach the other.
      await startWorker('ssh-eu-2')
      const drained = one.worker.drain(20_000)
      // Its leaving the group is at the server before the re-offer is sent: NATS would otherwise
      // hand the re-offer to it still, and it would go unanswered.
      await one.bus.flush()
      const reoffer = signedTask('jclaims001', node, op, { agentless: true, attempt: 1 })
      expect(await ask(hive, reoffer)).toEqual({ accepted: true, by: 'ssh-eu-2', already: 'running' })
      await drained
      await waitUntil(async () => heard.ends.length === 1, 'the end of the task')
      expect(heard.ends[0]).toMatchObject({ state: 'ok' })
      // Once it ended, the claim says how, and the other publishes that end once more.
      expect(await ask(hive, reoffer)).toEqual({ accepted: true, by: 'ssh-eu-2', already: 'ok' })
      await waitUntil(async () => heard.ends.length === 2, 'the end published again')
      expect(heard.ends[1]).toEqual(heard.ends[0])
      expect(await lines(out)).toEqual([node])
    } finally {
      heard.stop()
    }
  })

  it('delivered to both at once, a task runs on one and the other answers `already`', async () => {
    const node = sshd.nodes[1]!.id
    const out = join(dir.path, 'ran-twice-at-once')
    const op = { type: 'exec' as const, shell: true, command: `echo "$APIARY_NODE_ID" >> ${out}` }
    const tasks = Array.from({ length: 8 }, (_, attempt) => signedTask('jclaims002', node, op, { agentless: true, attempt }))
    const heard = endsOf(hive, node, 'jclaims002')
    try {
      // Whichever of the two (ssh-eu-2, and a fresh ssh-eu-1) each delivery reaches.
      await startWorker('ssh-eu-1')
      const answers = await Promise.all(tasks.map((t) => ask(hive, t)))
      expect(answers.filter((a) => a.already === undefined)).toEqual([{ accepted: true, by: expect.stringMatching(/^ssh-eu-[12]$/) }])
      expect(answers.every((a) => a.accepted && (a.already === undefined || a.already === 'running' || a.already === 'ok'))).toBe(true)
      await waitUntil(async () => heard.ends.some((e) => e.state === 'ok'), 'the end of the task')
      expect(await lines(out)).toEqual([node])
    } finally {
      heard.stop()
    }
  })
})

describe('an SSH worker’s claims in process (the embedded cluster’s memory bus)', () => {
  const node = 'host-1'
  const inventory = new Map<string, InventoryNode>([[node, { id: node, address: '127.0.0.1', port: 1, user: 'nobody', region: REGION, labels: {} }]])
  // Never reached: these tasks must not run.
  const pool = createSshPool({ knownHosts: '/dev/null', attempts: 1 })
  afterAll(() => pool.close())
  const start = (bus: Bus, id: string) => startSshWorker({ bus, log: silentLogger(), id, region: REGION, heartbeatMs: 60_000, inventory: () => inventory, pool, queenKey: testQueenKey })
  const op = { type: 'exec' as const, argv: ['true'] }

  it('refuses a task it cannot claim, saying why, and runs nothing blind', async () => {
    // The queen has not made the bucket yet (no `ensure`): nothing can be claimed.
    const bus = createMemoryBus(silentLogger())
    const worker = start(bus, 'ssh-mem-1')
    try {
      const a = await ask(bus, signedTask('jclaimm001', node, op, { agentless: true }))
      expect(a).toMatchObject({ accepted: false, by: 'ssh-mem-1' })
      expect(a.reason).toMatch(/^cannot claim the task, so it cannot tell whether another worker of its region took it, and runs nothing: .*claims bucket is not made yet/)
      expect(worker.running()).toBe(0)
    } finally {
      await worker.close()
      await bus.close()
    }
  })

  it('answers a task it claimed before a restart that its journal forgot: `lost`, never run again; one another holds with what that claim says', async () => {
    const bus = createMemoryBus(silentLogger())
    await bus.durable.ensure(TEST_CONFIG)
    const worker = start(bus, 'ssh-mem-1')
    const heard = endsOf(bus, node, 'jclaimm002')
    try {
      // Claimed by this worker's id before (its previous process), running when it died.
      await bus.durable.claims.create(claimKey(REGION, 'jclaimm002', node), JSON.stringify({ by: 'ssh-mem-1', at: 1, state: 'running' }))
      expect(await ask(bus, signedTask('jclaimm002', node, op, { agentless: true }))).toEqual({ accepted: true, by: 'ssh-mem-1', already: 'lost' })
      await waitUntil(async () => heard.ends.length === 1, 'the lost end')
      expect(heard.ends[0]).toMatchObject({ state: 'lost', cause: 'the worker restarted while the task ran' })
      // The claim says so too, for whichever worker is asked next.
      await waitUntil(async () => JSON.parse((await bus.durable.claims.get(claimKey(REGION, 'jclaimm002', node)))?.value ?? '{}').state === 'lost', 'the claim to say lost')

      // Held by another, or by something that is not a claim: answered running, not run here.
      await bus.durable.claims.create(claimKey(REGION, 'jclaimm003', node), JSON.stringify({ by: 'ssh-other', at: 1, state: 'running' }))
      await bus.durable.claims.create(claimKey(REGION, 'jclaimm004', node), 'not a claim')
      for (const job of ['jclaimm003', 'jclaimm004']) expect(await ask(bus, signedTask(job, node, op, { agentless: true }))).toEqual({ accepted: true, by: 'ssh-mem-1', already: 'running' })
      expect(worker.running()).toBe(0)
    } finally {
      heard.stop()
      await worker.close()
      await bus.close()
    }
  })
})
