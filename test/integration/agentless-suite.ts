import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createSigner, type EventOf, generateSigningKey, HiveJob, type JobEvent, leafHash, merkleTree, signShare, subjects, type Task } from '@apiary/shared'
import { type BusKind, freePort, type Sshd, startSshd, TestCluster, waitUntil } from '../harness/index.ts'

const ends = (events: JobEvent[]) => new Map(events.filter((e) => e.kind === 'node.finished').map((e) => [(e as EventOf<'node.finished'>).node, e as EventOf<'node.finished'>]))
const fin = (events: JobEvent[]) => events.at(-1) as EventOf<'job.finished'>

/** Agentless nodes through the whole cluster: inventory → queen → hive → SSH worker → real sshd. */
export function defineAgentlessSuite(kind: BusKind) {
  describe(`agentless nodes over the ${kind} bus`, () => {
    let sshd: Sshd
    let c: TestCluster
    let inventoryFile = ''
    let deadPort = 0

    const inventory = (extra = '') => `
defaults:
  user: ${sshd.user}
  identityFile: ${sshd.keyFile}
  region: eu
groups:
  web:
    labels: { role: web }
    nodes:
${sshd.nodes.map((n, i) => `      - { id: ssh-${i + 1}, address: ${n.host}, port: ${n.port} }`).join('\n')}
  gone:
    labels: { role: gone }
    nodes:
      - { id: ssh-down, address: 127.0.10.200, port: ${deadPort} }
${extra}`

    beforeAll(async () => {
      sshd = await startSshd({ nodes: 3 })
      deadPort = await freePort()
      inventoryFile = join(sshd.dir, `inventory-${kind}.yaml`)
      await writeFile(inventoryFile, inventory())
      // Short beats so that reachability shows fast, not so short that a loaded machine reads a live hive as gone.
      c = await TestCluster.start(kind, { inventoryFile, heartbeatMs: 300 })
      await c.addHive('eu')
      await c.addWorker('agent-1', 'eu', { role: 'web' })
      await c.addSshWorker('eu', { inventoryFile, knownHosts: sshd.knownHosts })
    })
    afterAll(async () => {
      await c?.stop()
      await sshd?.stop()
    })

    it('lists inventory nodes beside agents, with their executor', async () => {
      const nodes = await c.client.nodes()
      expect(nodes.map((n) => [n.id, n.executor, n.online])).toEqual([
        ['agent-1', 'local', true],
        ['ssh-1', 'ssh', true],
        ['ssh-2', 'ssh', true],
        ['ssh-3', 'ssh', true],
        ['ssh-down', 'ssh', true],
      ])
    })

    it('mixes agent and agentless nodes in one job; a node that is down is unreachable', async () => {
      const { jobId, nodes } = await c.client.submit({ operation: { type: 'exec', shell: true, command: 'echo "$APIARY_NODE_ID"' }, targets: 'all' })
      expect(nodes).toEqual(['agent-1', 'ssh-1', 'ssh-2', 'ssh-3', 'ssh-down'])
      const events = await c.events(jobId)
      const byNode = ends(events)
      for (const id of ['agent-1', 'ssh-1', 'ssh-2', 'ssh-3']) expect(byNode.get(id)).toMatchObject({ state: 'ok', exitCode: 0 })
      expect(byNode.get('ssh-down')?.state).toBe('error')
      expect(byNode.get('ssh-down')?.cause).toMatch(/^unreachable: /)
      const out = events.filter((e) => e.kind === 'node.output').map((e) => (e as EventOf<'node.output'>).data).sort()
      expect(out).toEqual(['agent-1\n', 'ssh-1\n', 'ssh-2\n', 'ssh-3\n'])
      expect(fin(events).counts).toEqual({ ok: 4, error: 1 })
    })

    it('runs no task over SSH that the queen did not sign for an agentless node', async () => {
      const intruder = await c.bus('intruder')
      const marker = join(sshd.dir, `pwned-${kind}`)
      const operation = { type: 'exec' as const, shell: true, command: `touch ${marker}` }
      // A real job's grant, caught on its way, re-used for another operation; and one signed by the wrong key.
      const caught: Task[] = []
      intruder.subscribe(subjects.ssh('eu'), (m) => void caught.push(m.data as Task), { queue: 'eavesdropper' })
      await intruder.flush()
      const { jobId } = await c.client.submit({ operation: { type: 'ping' }, targets: 'ssh-1' })
      await c.events(jobId)
      const ask = (t: unknown) => intruder.request(subjects.ssh('eu'), t, { timeoutMs: 3000 })
      expect(caught).toHaveLength(1)
      await expect(ask({ ...caught[0], operation })).resolves.toMatchObject({ accepted: false, reason: expect.stringMatching(/operation is not the one/) })
      const impostor = createSigner(generateSigningKey().privatePem)
      const share = HiveJob.parse({ jobId: 'jforged0002', phase: 0, region: 'eu', nodes: ['ssh-1'], agentless: ['ssh-1'], operation, concurrency: 1, maxErrors: null, errorsSoFar: 0, timeoutMs: 5000, deliveryTimeoutMs: 2000, outputCapBytes: 1024, targets: 1 })
      const { offer } = signShare(share, impostor, Date.now())
      const tree = merkleTree([leafHash('ssh-1', true)])
      await expect(ask({ jobId: share.jobId, node: 'ssh-1', operation, timeoutMs: 5000, outputCapBytes: 1024, grant: offer.grant, proof: tree.proof(0) })).resolves.toMatchObject({
        accepted: false,
        reason: expect.stringMatching(/not signed by the pinned queen key/),
      })
      if (kind === 'nats') await intruder.close()
      expect(await readFile(marker).then(() => true, () => false)).toBe(false)
    })

    it('shows last contact and the breaker in the node list', async () => {
      // The pool's breaker opens after two consecutive connect failures.
      const again = await c.client.submit({ operation: { type: 'ping' }, targets: 'role=gone' })
      expect(fin(await c.events(again.jobId)).counts.error).toBe(1)
      await waitUntil(async () => (await c.client.nodes()).find((n) => n.id === 'ssh-down')?.breaker === 'open', 'the breaker of ssh-down to open')
      const nodes = await c.client.nodes()
      const down = nodes.find((n) => n.id === 'ssh-down')!
      expect(down).toMatchObject({ breaker: 'open', lastContact: null, status: 'degraded' })
      const up = nodes.find((n) => n.id === 'ssh-1')!
      expect(up.breaker).toBe('closed')
      expect(up.lastContact).toBeGreaterThan(0)
      const third = await c.client.submit({ operation: { type: 'ping' }, targets: 'ssh-down' })
      expect(ends(await c.events(third.jobId)).get('ssh-down')).toMatchObject({ state: 'error', cause: 'breaker open' })
    })

    it('cancels a job over SSH: every node confirms', async () => {
      const { jobId } = await c.client.submit({ operation: { type: 'exec', shell: true, command: 'echo up; sleep 30' }, targets: 'role=web' })
      let seen = 0
      const events: JobEvent[] = []
      for await (const ev of c.client.stream(jobId, { output: true })) {
        events.push(ev)
        if (ev.kind === 'node.output' && ++seen === 4) await c.client.cancel(jobId)
      }
      expect(fin(events).state).toBe('cancelled')
      expect(fin(events).counts).toEqual({ cancelled: 4 })
    })

    it('keeps the last good inventory when a bad one is written, and takes the next good one', async () => {
      await writeFile(inventoryFile, inventory('nodes:\n  - { id: ssh-1, address: 127.0.0.1 }\n'))
      const bad = await c.queen.reloadInventory()
      expect(bad).toEqual({ ok: false, error: expect.stringMatching(/inventory-.*\.yaml:\d+:\d+: nodes\[0\]: duplicate node id "ssh-1", already at groups\.web\.nodes\[0\]/) })
      expect((await c.client.nodes()).map((n) => n.id)).toContain('ssh-3')
      await writeFile(inventoryFile, inventory('nodes:\n  - { id: ssh-extra, address: 127.0.10.201, port: 22, region: eu }\n'))
      expect(await c.queen.reloadInventory()).toEqual({ ok: true, nodes: 5 })
      expect((await c.client.nodes()).map((n) => n.id)).toContain('ssh-extra')
      await writeFile(inventoryFile, inventory())
      await c.queen.reloadInventory()
    })
  })
}
