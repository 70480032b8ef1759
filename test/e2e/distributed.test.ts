import { join } from 'node:path'
import { connect, credsAuthenticator, type NatsConnection } from '@nats-io/transport-node'
import { copyFile, readFile } from 'node:fs/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Identity, subjects } from '@apiary/shared'
import { readSecretFile } from '@apiary/shared/runtime'
import { createJobClient, type JobClient } from '@apiary/shared/client'
import { type Proc, runBin, type SecureBus, startBin, startSecureBus, type TempDir, tempDir, waitUntil } from '../harness/index.ts'
import { fanoutScenario } from './scenario.ts'

const QUEEN: Identity = { role: 'queen', id: 'queen' }
const HIVE: Identity = { role: 'hive', region: 'eu', id: 'hive-eu-1' }
const nodes = ['e2e-1', 'e2e-2', 'e2e-3']
const worker = (id: string): Identity => ({ role: 'worker', region: 'eu', id })

/**
 * nats-server with authentication on, as the README sets it up with `keeper bus`; a queen, a
 * hive and three workers, each its own OS process with its own credential.
 */
describe('distributed: every role its own process on an authenticated bus', () => {
  let bus: SecureBus
  let dir: TempDir
  let queen: Proc
  let queenUrl = ''
  let client: JobClient
  const others: Proc[] = []
  const open: NatsConnection[] = []

  const startQueenProc = async () => {
    queen = startBin('apiary-queen', ['--nats', bus.url, '--nats-creds', bus.creds(QUEEN), '--port', '0', '--state-dir', dir.path])
    const line = await queen.waitFor(/queen listening/)
    queenUrl = (JSON.parse(line) as { url: string }).url
  }
  const startWorker = (id: string) =>
    startBin('apiary-worker', ['--nats', bus.url, '--nats-creds', bus.creds(worker(id)), '--queen-key', join(dir.path, 'signing.pub'), '--region', 'eu', '--node-id', id, '--label', 'role=e2e', '--heartbeat', '200ms'])

  beforeAll(async () => {
    dir = await tempDir('e2e')
    bus = await startSecureBus(dir.path, [QUEEN, HIVE, ...nodes.map(worker), worker('mallory-1')])
    await startQueenProc()
    others.push(startBin('apiary-hive', ['--nats', bus.url, '--nats-creds', bus.creds(HIVE), '--queen-key', join(dir.path, 'signing.pub'), '--region', 'eu', '--id', 'hive-eu-1', '--heartbeat', '200ms']))
    for (const n of nodes) others.push(startWorker(n))
    await Promise.all(others.map((p) => p.waitFor(/ready/)))
    client = createJobClient({ url: queenUrl, token: await readSecretFile(join(dir.path, 'token'), 'token') })
    await waitUntil(async () => (await client.nodes()).filter((n) => n.online).length === 3, 'three workers online')
  })

  afterAll(async () => {
    await Promise.all(open.map((nc) => nc.close()))
    await client?.close()
    await Promise.all([queen?.stop(), ...others.map((p) => p.stop())])
    await bus?.stop()
    await dir?.remove()
  })

  it('fans uname -n out through keeper run and keeps the job across a queen restart', async () => {
    await fanoutScenario({
      queenUrl: () => queenUrl,
      tokenFile: join(dir.path, 'token'),
      env: {},
      nodes,
      async restartQueen() {
        await queen.stop()
        await startQueenProc()
        await client.close()
        client = createJobClient({ url: queenUrl, token: await readSecretFile(join(dir.path, 'token'), 'token') })
      },
    })
  })

  it('lets nobody without a credential onto the bus', async () => {
    await expect(connect({ servers: bus.url, reconnect: false })).rejects.toThrow(/Authorization Violation/i)
  })

  it('keeps a node’s credential to that node: no other node’s tasks, results or heartbeat, no control, no made-up node', async () => {
    const nc = await connect({ servers: bus.url, reconnect: false, authenticator: credsAuthenticator(await readFile(bus.creds(worker('mallory-1')))), inboxPrefix: subjects.inboxPrefix('worker', 'mallory-1', 'eu') })
    open.push(nc)
    const violations: string[] = []
    void (async () => {
      for await (const s of nc.status()) if (s.type === 'error') violations.push(s.error.message)
    })()
    // Reading another node's tasks, or everything.
    const theirs = nc.subscribe(subjects.task('eu', 'e2e-1'))
    const all = nc.subscribe('apiary.>')
    await expect(theirs.closed).resolves.toMatchObject({ name: 'PermissionViolationError' })
    await expect(all.closed).resolves.toMatchObject({ name: 'PermissionViolationError' })
    // Running a task on another node, speaking for it, cancelling a job, making up a node.
    const forged = [subjects.task('eu', 'e2e-1'), subjects.nodeEvents('eu', 'e2e-1', 'jforged0001'), subjects.hiveEvents('eu', 'jforged0001'), subjects.control('jforged0001'), subjects.heartbeat('worker', 'eu', 'ghost-1'), subjects.hiveJobs('eu')]
    for (const s of forged) nc.publish(s, JSON.stringify({ forged: true }))
    await nc.flush()
    await waitUntil(() => forged.every((s) => violations.some((v) => v.includes(`Permissions Violation for Publish to "${s}"`))), 'a refusal of every forged publish')
    // Nor flood a receiver with one huge (or deeply nested) message: the broker refuses a node's message past 512 KiB.
    // (The server announces the identity's own limit, so the client refuses before sending.)
    expect(nc.info?.max_payload).toBe(512 * 1024)
    const huge = `${'['.repeat(300_000)}${']'.repeat(300_000)}`
    expect(() => nc.publish(subjects.nodeEvents('eu', 'mallory-1', 'jforged0001'), huge)).toThrow(/max_payload/)
    // Its own subjects it may use: a heartbeat for another id on its own subject is still dropped by the queen.
    nc.publish(subjects.heartbeat('worker', 'eu', 'mallory-1'), JSON.stringify({ id: 'ghost-1', role: 'worker', region: 'eu', labels: { role: 'e2e' }, executor: 'local', status: 'healthy', running: 0, version: 'x', intervalMs: 60_000, ts: Date.now() }))
    await nc.flush()
    const { jobId, nodes: targets } = await client.submit({ operation: { type: 'ping' }, targets: 'role=e2e' })
    expect(targets).toEqual(nodes)
    for await (const ev of client.stream(jobId)) if (ev.kind === 'job.finished') expect(ev.counts).toEqual({ ok: 3 })
    expect((await client.nodes()).map((n) => n.id)).toEqual(nodes)
  })

  it('refuses a revoked node: it is dropped from the bus and cannot come back', async () => {
    // The node keeps its copy of the credential: the server must refuse it.
    const kept = join(dir.path, 'kept-e2e-3.creds')
    await copyFile(bus.creds(worker('e2e-3')), kept)
    await bus.revoke(worker('e2e-3'))
    await waitUntil(async () => (await client.nodes()).find((n) => n.id === 'e2e-3')?.online === false, 'e2e-3 to go offline')
    const again = await runBin('apiary-worker', ['--nats', bus.url, '--nats-creds', kept, '--queen-key', join(dir.path, 'signing.pub'), '--region', 'eu', '--node-id', 'e2e-3'], {}, 30_000)
    expect(again.code).not.toBe(0)
    expect(again.stderr).toMatch(/refused authentication with --nats-creds .*kept-e2e-3.creds \(Authorization Violation\)/)
    // The others keep working.
    const { jobId } = await client.submit({ operation: { type: 'ping' }, targets: 'e2e-1|e2e-2' })
    for await (const ev of client.stream(jobId)) if (ev.kind === 'job.finished') expect(ev.counts).toEqual({ ok: 2 })
  })
})
