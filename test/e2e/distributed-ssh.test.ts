import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readSecretFile } from '@apiary/shared/runtime'
import { createJobClient } from '@apiary/shared/client'
import { type Proc, runBin, type SecureBus, type Sshd, startBin, startSecureBus, startSshd, type TempDir, tempDir, waitUntil } from '../harness/index.ts'

/** Agentless nodes with every role its own process: queen --inventory, a hive, apiary-worker --ssh. */
describe('distributed: an SSH worker process reaching inventory nodes', () => {
  let bus: SecureBus
  let sshd: Sshd
  let dir: TempDir
  let queenUrl = ''
  const procs: Proc[] = []

  beforeAll(async () => {
    ;[sshd, dir] = await Promise.all([startSshd({ nodes: 4 }), tempDir('e2e-ssh')])
    // Authentication on: each role its own credential from keeper bus.
    const queenId = { role: 'queen', id: 'queen' } as const
    const hiveId = { role: 'hive', region: 'eu', id: 'hive-eu-1' } as const
    const sshId = { role: 'ssh-worker', region: 'eu', id: 'ssh-eu-1' } as const
    bus = await startSecureBus(dir.path, [queenId, hiveId, sshId])
    const queenKey = join(dir.path, 'signing.pub')
    const inventory = join(dir.path, 'fleet.yaml')
    const port = sshd.nodes[0]!.port
    await writeFile(inventory, `defaults: { user: ${sshd.user}, region: eu, port: ${port}, identityFile: ${sshd.keyFile} }\nhosts: [ "127.0.10.[1-4]" ]\n`)
    const queen = startBin('apiary-queen', ['--nats', bus.url, '--nats-creds', bus.creds(queenId), '--port', '0', '--state-dir', dir.path, '--inventory', inventory])
    procs.push(queen)
    queenUrl = (JSON.parse(await queen.waitFor(/queen listening/)) as { url: string }).url
    procs.push(startBin('apiary-hive', ['--nats', bus.url, '--nats-creds', bus.creds(hiveId), '--queen-key', queenKey, '--region', 'eu', '--id', 'hive-eu-1', '--heartbeat', '200ms']))
    procs.push(startBin('apiary-worker', ['--nats', bus.url, '--nats-creds', bus.creds(sshId), '--queen-key', queenKey, '--ssh', '--id', 'ssh-eu-1', '--region', 'eu', '--inventory', inventory, '--known-hosts', sshd.knownHosts, '--heartbeat', '200ms']))
    await Promise.all(procs.slice(1).map((p) => p.waitFor(/ready/)))
    const client = createJobClient({ url: queenUrl, token: await readSecretFile(join(dir.path, 'token'), 'token') })
    await waitUntil(async () => (await client.nodes()).filter((n) => n.online).length === 4, 'four SSH nodes online')
    await client.close()
  })
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()))
    await Promise.all([bus?.stop(), sshd?.stop()])
    await dir?.remove()
  })

  it('fans a command out through keeper and reports every node', async () => {
    const keeper = (args: string[]) => runBin('keeper', ['--queen', queenUrl, '--token-file', join(dir.path, 'token'), ...args])
    const r = await keeper(['run', '--', 'sh', '-c', 'echo "$APIARY_NODE_ID"'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/job j[0-9a-z]+ ok in .*: 4 ok/)
    const logs = await keeper(['logs', /job (j[0-9a-z]+)/.exec(r.stdout)![1]!])
    expect(logs.stdout.trim().split('\n').sort()).toEqual(['127.0.10.1 | 127.0.10.1', '127.0.10.2 | 127.0.10.2', '127.0.10.3 | 127.0.10.3', '127.0.10.4 | 127.0.10.4'])
    const nodes = await keeper(['nodes'])
    expect(nodes.stdout).toMatch(/127\.0\.10\.1\s+eu\s+online\s+ssh\s+\d+s ago\s+closed/)
  })
})
