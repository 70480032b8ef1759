import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runBin, type Sshd, startSshd, type TempDir, tempDir } from '../harness/index.ts'

/** The single-box user: keeper dev fanning out over SSH to an inventory, no NATS at all. */
describe('keeper dev --inventory', () => {
  let sshd: Sshd
  let dir: TempDir
  let inventory = ''

  beforeAll(async () => {
    sshd = await startSshd({ nodes: 6 })
    dir = await tempDir('dev-ssh')
    inventory = join(dir.path, 'fleet.yaml')
    const first = sshd.nodes[0]!
    await writeFile(
      inventory,
      `defaults: { user: ${sshd.user}, port: ${first.port} }\ngroups:\n  box:\n    labels: { role: box }\n    hosts: [ "127.0.10.[1-6]" ]\n`,
    )
  })
  afterAll(async () => {
    await sshd?.stop()
    await dir?.remove()
  })

  const keeper = (args: string[]) =>
    runBin('keeper', ['dev', '--inventory', inventory, '--known-hosts', sshd.knownHosts, '--identity', sshd.keyFile, ...args], { XDG_STATE_HOME: dir.path, APIARY_STATE_DIR: '' })

  it('runs a command on every inventory node and groups the results', async () => {
    const r = await keeper(['run', '--', 'echo', 'hello from ssh'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('all 6 identical\n── 6 nodes ok: 127.0.10.1, 127.0.10.2, 127.0.10.3, 127.0.10.4, 127.0.10.5, 127.0.10.6\n   hello from ssh\n')
  })

  it('collects typed facts over SSH', async () => {
    const r = await keeper(['facts', '--aggregate', 'arch'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/\nARCH\s+NODES\n(x64|arm64)\s+6\n/)
  })

  it('lists the nodes with their executor', async () => {
    const r = await keeper(['nodes'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/127\.0\.10\.1\s+default\s+online\s+ssh\s+never\s+closed\s+role=box/)
  })

  it('refuses a host whose key changed', async () => {
    const r = await runBin('keeper', ['dev', '--inventory', inventory, '--known-hosts', sshd.wrongKnownHosts, '--identity', sshd.keyFile, 'run', '--', 'true'], { XDG_STATE_HOME: dir.path, APIARY_STATE_DIR: '' })
    expect(r.code).toBe(1)
    expect(r.stdout).toMatch(/── 6 nodes error, host key mismatch: 127\.0\.10\.1/)
  })
})
