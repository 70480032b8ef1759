import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  assembleShare,
  type Bus,
  createSigner,
  type EventOf,
  generateSigningKey,
  HiveJob,
  type JobEvent,
  signControl,
  signShare,
  subjects,
  type Task,
} from '@apiary/shared'
import { type BusKind, expectAccounted, finished, runBin, TestCluster, waitUntil } from '../harness/index.ts'

/** A key that is not the queen's: what an intruder on the bus can sign with. */
const impostor = createSigner(generateSigningKey().privatePem)

const ends = (events: JobEvent[]) => new Map((events.filter((e) => e.kind === 'node.finished') as EventOf<'node.finished'>[]).map((e) => [e.node, e]))

/**
 * What someone on the bus without the queen's key tries, and how each attempt fails safe:
 * work the queen did not sign never runs, and the queen takes from a producer only what that
 * producer may say. (Who may publish and receive what at all is nats-server's part: see
 * test/e2e/secure.test.ts.) Run on both buses.
 */
export function defineForgerySuite(kind: BusKind) {
  describe(`forged work and forged results over the ${kind} bus`, () => {
    let c: TestCluster
    let intruder: Bus
    beforeEach(async () => {
      c = await TestCluster.start(kind)
      await c.addHive('eu')
      for (const i of [1, 2]) await c.addWorker(`web-${i}`, 'eu', { role: 'web' })
      intruder = await c.bus('intruder')
    })
    afterEach(async () => {
      if (kind === 'nats') await intruder?.close()
      await c.stop()
    })

    const share = (over: Partial<HiveJob> = {}) =>
      HiveJob.parse({
        jobId: 'jforged0001',
        phase: 0,
        region: 'eu',
        nodes: ['web-1', 'web-2'],
        operation: { type: 'exec', shell: true, command: `touch ${join(c.dir.path, 'pwned')}` },
        concurrency: 10,
        maxErrors: null,
        errorsSoFar: 0,
        timeoutMs: 5000,
        deliveryTimeoutMs: 2000,
        outputCapBytes: 1024,
        targets: 2,
        ...over,
      })
    const pwned = () => readFile(join(c.dir.path, 'pwned')).then(() => true, () => false)

    it('runs no task without the queen’s signature: none, another key’s, or a real one re-aimed or altered', async () => {
      const ask = (node: string, body: unknown) => intruder.request(subjects.task('eu', node), body, { timeoutMs: 3000 })
      // No grant at all.
      const bare = { jobId: 'jforged0001', node: 'web-1', operation: { type: 'exec', argv: ['id'] }, timeoutMs: 5000, outputCapBytes: 1024 }
      await expect(ask('web-1', bare)).resolves.toMatchObject({ accepted: false, reason: 'malformed task' })
      // A grant the intruder signed itself.
      const { offer, chunks } = signShare(share(), impostor, Date.now())
      const forged = assembleShare(offer, chunks, { publicKey: impostor.publicKey, verify: () => true }, 'eu', Date.now())
      if (typeof forged === 'string') throw new Error(forged)
      const task = (node: string): Task => ({ ...bare, node, operation: forged.share.operation, grant: forged.grant, proof: forged.proof(node) })
      await expect(ask('web-1', task('web-1'))).resolves.toMatchObject({ accepted: false, reason: expect.stringMatching(/not signed by the pinned queen key/) })

      // A real task, caught on its way to web-1.
      const caught: Task[] = []
      intruder.subscribe(subjects.task('eu', 'web-1'), (m) => void caught.push(m.data as Task))
      await intruder.flush()
      const out = join(c.dir.path, 'ran')
      const { jobId } = await c.client.submit({ operation: { type: 'exec', shell: true, command: `echo "$APIARY_NODE_ID" >> ${out}` }, targets: 'web-1' })
      expect(finished(await c.events(jobId)).counts).toEqual({ ok: 1 })
      expect(caught).toHaveLength(1)
      const real = caught[0]!
      await expect(ask('web-1', { ...real, operation: { type: 'exec', shell: true, command: `touch ${join(c.dir.path, 'pwned')}` } })).resolves.toMatchObject({
        accepted: false,
        reason: expect.stringMatching(/operation is not the one the grant covers/),
      })
      await expect(ask('web-2', { ...real, node: 'web-2' })).resolves.toMatchObject({ accepted: false, reason: expect.stringMatching(/web-2 is not a target/) })
      // Replayed as it was: acknowledged, not run again.
      await expect(ask('web-1', real)).resolves.toMatchObject({ accepted: true })
      await intruder.flush()
      expect(await readFile(out, 'utf8')).toBe('web-1\n')
      expect(await pwned()).toBe(false)
      // The operator sees it: the node's heartbeat carries what it refused.
      await waitUntil(async () => {
        const nodes = await c.client.nodes()
        return (nodes.find((n) => n.id === 'web-1')?.refused?.count ?? 0) >= 2 && nodes.find((n) => n.id === 'web-2')?.refused !== undefined
      }, 'web-1 and web-2 to report their refusals')
      const web1 = (await c.client.nodes()).find((n) => n.id === 'web-1')!
      expect(web1.refused?.last).toMatchObject({ subject: subjects.task('eu', 'web-1'), reason: 'the operation is not the one the grant covers' })
      expect((await c.client.nodes()).find((n) => n.id === 'web-2')?.refused?.count).toBe(1)
      const tokenFile = join(c.dir.path, 'keeper-token')
      await writeFile(tokenFile, c.queen.token, { mode: 0o600 })
      const shown = await runBin('keeper', ['nodes', '--queen', c.queen.url, '--token-file', tokenFile])
      expect(shown.code).toBe(0)
      expect(shown.stderr).toMatch(/warning: web-1 refused [2-9]\d* tasks or control messages the queen did not sign \(last .* on "apiary\.task\.eu\.web-1": "the operation is not the one the grant covers"\)/)
    })

    it('fans out no share the queen did not sign', async () => {
      const { offer } = signShare(share(), impostor, Date.now())
      await expect(intruder.request(subjects.hiveJobs('eu'), offer, { timeoutMs: 3000 })).resolves.toMatchObject({
        accepted: false,
        reason: expect.stringMatching(/not signed by the pinned queen key/),
      })
      await expect(intruder.request(subjects.hiveJobs('eu'), { ...offer, grant: { ...offer.grant, sig: undefined } }, { timeoutMs: 3000 })).resolves.toMatchObject({ accepted: false, reason: 'malformed job share' })
      expect(await pwned()).toBe(false)
    })

    it('stops nothing on a forged cancel: the command runs to its end and no attacker’s cause is stored', async () => {
      const { jobId } = await c.client.submit({ operation: { type: 'exec', argv: ['sh', '-c', 'sleep 0.6; echo done'] }, targets: 'web-1' })
      const seen: JobEvent[] = []
      for await (const ev of c.client.stream(jobId)) {
        seen.push(ev)
        if (ev.kind === 'node.started') break
      }
      const order = { jobId, action: 'cancel' as const, reason: 'attacker’s cause', outcome: 'cancelled' as const }
      intruder.publish(subjects.control(jobId), signControl(order, impostor, Date.now()))
      intruder.publish(subjects.control(jobId), order)
      await intruder.flush()
      const events = await c.events(jobId)
      expect(finished(events).counts).toEqual({ ok: 1 })
      expect(JSON.stringify(events)).not.toContain('attacker')
    })

    it('takes no job event from a producer, and no node’s result from another subject or from a hive', async () => {
      const { jobId } = await c.client.submit({ operation: { type: 'exec', argv: ['sh', '-c', 'sleep 0.6; exit 1'] }, targets: 'web-1|web-2' })
      for await (const ev of c.client.stream(jobId)) if (ev.kind === 'node.started') break
      const ok = { jobId, ts: Date.now(), kind: 'node.finished', node: 'web-1', state: 'ok', exitCode: 0, signal: null, cause: null, durationMs: 1, bytes: 0, truncated: false, digest: null, human: 'web-1: ok' }
      // On another node's subject, as a hive's verdict, for another job's subject.
      intruder.publish(subjects.nodeEvents('eu', 'web-2', jobId), ok)
      intruder.publish(subjects.hiveEvents('eu', jobId), ok)
      intruder.publish(subjects.nodeEvents('us', 'web-1', jobId), ok)
      intruder.publish(subjects.sshEvents('eu', 'web-1', jobId), ok)
      // Narration only the queen writes, with terminal escapes in it.
      intruder.publish(subjects.nodeEvents('eu', 'web-1', jobId), { jobId, ts: Date.now(), kind: 'job.region', region: 'eu', nodes: 2, hive: 'evil', human: '\u001b[2Jall good' })
      await intruder.flush()
      const events = await c.events(jobId)
      expectAccounted(events, ['web-1', 'web-2'])
      expect([...ends(events).values()].map((e) => [e.node, e.state, e.exitCode]).sort()).toEqual([
        ['web-1', 'failed', 1],
        ['web-2', 'failed', 1],
      ])
      expect(events.filter((e) => e.kind === 'job.region').map((e) => (e as EventOf<'job.region'>).hive)).toEqual(['hive-eu'])
      expect(JSON.stringify(events)).not.toContain('all good')
    })

    it('takes no heartbeat published on another identity’s subject: no made-up node, no re-homed node', async () => {
      const hb = (id: string, region: string) => ({ id, role: 'worker', region, labels: { role: 'web' }, executor: 'local', status: 'healthy', running: 0, version: 't', intervalMs: 60_000, ts: Date.now() })
      intruder.publish(subjects.heartbeat('worker', 'eu', 'web-1'), hb('ghost-1', 'eu'))
      intruder.publish(subjects.heartbeat('worker', 'eu', 'web-1'), hb('web-1', 'us'))
      intruder.publish(subjects.heartbeat('hive', 'eu', 'ghost-1'), hb('ghost-1', 'eu'))
      await intruder.flush()
      // A sentinel through the same path: once it is listed, the forged ones were handled.
      intruder.publish(subjects.heartbeat('worker', 'eu', 'sentinel-1'), hb('sentinel-1', 'eu'))
      await intruder.flush()
      await waitUntil(async () => (await c.client.nodes()).some((n) => n.id === 'sentinel-1'), 'the sentinel heartbeat')
      const nodes = await c.client.nodes()
      expect(nodes.map((n) => [n.id, n.region])).toEqual([
        ['sentinel-1', 'eu'],
        ['web-1', 'eu'],
        ['web-2', 'eu'],
      ])
    })
  })
}

/** A share larger than one message goes in chunks to the one hive that took its offer. */
export function defineChunkSuite(kind: BusKind) {
  describe(`a share in chunks over the ${kind} bus`, () => {
    let c: TestCluster
    beforeEach(async () => {
      c = await TestCluster.start(kind, { shareChunkNodes: 2 })
      // Two hives in the queue group: every chunk must still reach the one that took the offer.
      await c.addHive('eu', 'hive-eu-1')
      await c.addHive('eu', 'hive-eu-2')
      for (const i of [1, 2, 3, 4, 5]) await c.addWorker(`web-${i}`, 'eu')
    })
    afterEach(async () => {
      await c.stop()
    })

    it('runs every node of a share sent as three chunks, once', async () => {
      const out = join(c.dir.path, 'ran')
      const { jobId, nodes } = await c.client.submit({ operation: { type: 'exec', shell: true, command: `echo "$APIARY_NODE_ID" >> ${out}` }, targets: 'all', rollout: { concurrency: 2 } })
      const events = await c.events(jobId)
      expectAccounted(events, nodes)
      expect(finished(events).counts).toEqual({ ok: 5 })
      expect((await readFile(out, 'utf8')).split('\n').filter(Boolean).sort()).toEqual(nodes)
    })
  })
}
