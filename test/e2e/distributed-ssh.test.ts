import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readSecretFile } from '@apiary/shared/runtime'
import { createJobClient } from '@apiary/shared/client'
import { type NatsServer, type Proc, runBin, type Sshd, startBin, startNats, startSshd, type TempDir, tempDir, waitUntil } from '../harness/index.ts'

/** Agentless nodes with every role its own process: queen --inventory, a hive, apiary-worker --ssh. */
describe('distributed: an SSH worker process reaching inventory nodes', () => {
  let nats: NatsServer
  let sshd: Sshd
  let dir: TempDir
  let queenUrl = ''
  const procs: Proc[] = []

  beforeAll(async () => {
    ;[nats, sshd, dir] = await Promise.all([startNats(), startSshd({ nodes: 4 }), tempDir('e2e-ssh')])
    const inventory = join(dir.path, 'fleet.yaml')
    const port = sshd.nodes[0]!.port
    await writeFile(inventory, `defaults: { user: ${sshd.user}, region: eu, port: ${port}, identityFile: ${sshd.keyFile} }\nhosts: [ "127.0.10.[1-4]" ]\n`)
    const queen = startBin('apiary-queen', ['--nats', nats.url, '--port', '0', '--state-dir', dir.path, '--inventory', inventory])
    procs.push(queen)
    queenUrl = (JSON.parse(await queen.waitFor(/queen listening/)) as { url: string }).url
    procs.push(startBin('apiary-hive', ['--nats', nats.url, '--region', 'eu', '--heartbeat', '200ms']))
    procs.push(startBin('apiary-worker', ['--nats', nats.url, '--ssh', '--region', 'eu', '--inventory', inventory, '--known-hosts', sshd.knownHosts, '--heartbeat', '200ms']))
    await Promise.all(procs.slice(1).map((p) => p.waitFor(/ready/)))
    const client = createJobClient({ url: queenUrl, token: await readSecretFile(join(dir.path, 'token'), 'token') })
    await waitUntil(async () => (await client.nodes()).filter((n) => n.online).length === 4, 'four SSH nodes online')
    await client.close()
  })
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()))
    await Promise.all([nats?.stop(), sshd?.stop(), dir?.remove()])
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
