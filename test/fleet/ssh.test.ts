import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ExecOperation } from '@apiary/shared'
import { createSshPool, type ExecResult, runSsh, type SshPool, type SshPoolOptions, type SshTarget } from '@apiary/worker'
import { tempDir, type TempDir } from '../harness/temp.ts'
import { waitUntil } from '../harness/wait.ts'
import { generateClientKey, type SshFleet, startSshFleet } from './ssh.ts'

const N = 200

/** apiary's SSH executor against 200 simulated nodes of the ssh2-based fleet. */
describe('ssh fleet simulator', () => {
  let fleet: SshFleet
  let tmp: TempDir
  let keyFile: string
  const pools: SshPool[] = []

  beforeAll(async () => {
    tmp = await tempDir('ssh-fleet-test')
    const key = await generateClientKey(tmp.path)
    keyFile = key.keyFile
    fleet = await startSshFleet({ count: N, authorizedKeys: key.publicKey })
  })
  afterAll(async () => {
    await Promise.all(pools.map((p) => p.close()))
    await fleet?.close()
    await tmp?.remove()
  })

  const pool = (o: Partial<SshPoolOptions> = {}): SshPool => {
    const p = createSshPool({ knownHosts: fleet.knownHosts, keyFile, attempts: 1, ...o })
    pools.push(p)
    return p
  }
  const target = (i: number): SshTarget => ({ ...fleet.nodes[i]!, user: 'apiary' })

  const exec = async (p: SshPool, i: number, op: Partial<ExecOperation>, o: { capBytes?: number; signal?: AbortSignal; onStart?: () => void } = {}) => {
    let stdout = ''
    let stderr = ''
    let started = 0
    const r: ExecResult = await runSsh(
      { pool: p, target: target(i), op: { type: 'exec', shell: false, ...op } as ExecOperation, capBytes: o.capBytes ?? 1 << 20, signal: o.signal ?? new AbortController().signal, killGraceMs: 2000, drainMs: 500 },
      {
        onStart: () => {
          started++
          o.onStart?.()
        },
        onOutput: (c) => (c.stream === 'stdout' ? (stdout += c.data) : (stderr += c.data)),
      },
    )
    return { r, stdout, stderr, started }
  }

  it('fans hostname out to 200 nodes over one pool, and a second run opens no new connection', async () => {
    const p = pool()
    const before = fleet.stats().connections
    const first = await Promise.all(fleet.nodes.map((_, i) => exec(p, i, { argv: ['hostname'] })))
    first.forEach(({ r, stdout, stderr, started }, i) => {
      expect(r, stderr).toMatchObject({ state: 'ok', exitCode: 0, cause: null })
      expect(stdout).toBe(`${fleet.nodes[i]!.id}\n`)
      expect(started).toBe(1)
    })
    expect(new Set(fleet.nodes.map((n) => n.host)).size).toBe(N)
    expect(fleet.stats().connections - before).toBe(N)
    expect(p.stats()).toMatchObject({ connections: N, opened: N })
    expect(fleet.connectionsTo(fleet.nodes[7]!.id)).toBe(1)

    const second = await Promise.all(fleet.nodes.map((_, i) => exec(p, i, { argv: ['uname', '-n'] })))
    second.forEach(({ r, stdout }, i) => {
      expect(r.state).toBe('ok')
      expect(stdout).toBe(`${fleet.nodes[i]!.id}\n`)
    })
    expect(fleet.stats().connections - before).toBe(N)
    expect(p.stats().opened).toBe(N)
  })

  it('cancels a running sleep 30 fast: the kill on a second channel ends it', async () => {
    const p = pool()
    const ac = new AbortController()
    const t0 = performance.now()
    const killedBefore = fleet.stats().killed
    const done = exec(p, 3, { argv: ['sleep', '30'] }, { signal: ac.signal })
    await waitUntil(() => fleet.stats().running === 1, 'the sleep to run')
    ac.abort('operator cancelled')
    const { r } = await done
    expect(r).toMatchObject({ state: 'cancelled', cause: 'operator cancelled' })
    expect(performance.now() - t0).toBeLessThan(2000)
    expect(fleet.stats()).toMatchObject({ running: 0, killed: killedBefore + 1 })
  })

  it('answers the small command set: exit codes, echo, unknown programs, shell strings, stdin', async () => {
    const p = pool()
    expect((await exec(p, 10, { argv: ['true'] })).r).toMatchObject({ state: 'ok', exitCode: 0 })
    expect((await exec(p, 10, { argv: ['false'] })).r).toMatchObject({ state: 'failed', exitCode: 1 })
    expect((await exec(p, 10, { shell: true, command: 'exit 42' })).r).toMatchObject({ state: 'failed', exitCode: 42 })
    expect(await exec(p, 10, { argv: ['echo', 'a b', "it's", '$HOME', ''] })).toMatchObject({ r: { state: 'ok' }, stdout: "a b it's $HOME \n" })
    // Through the argv wrapper an unknown program is the wrapper's "not found" marker …
    expect((await exec(p, 10, { argv: ['frobnicate', '-x'] })).r).toMatchObject({ state: 'error', cause: 'program not found: frobnicate' })
    // … and in a shell string it is the shell's message and status 127.
    expect(await exec(p, 10, { shell: true, command: 'frobnicate' })).toMatchObject({ r: { state: 'failed', exitCode: 127 }, stderr: 'sh: 1: frobnicate: not found\n' })
    expect(await exec(p, 10, { shell: true, command: 'echo out; echo err >&2; uname -s && false || echo "$$" >/dev/null; exit 3' })).toMatchObject({
      r: { state: 'failed', exitCode: 3 },
      stdout: 'out\nLinux\n',
      stderr: 'err\n',
    })
    expect(await exec(p, 10, { argv: ['cat'], stdin: 'hello\n', env: { GREETING: 'x y' }, cwd: '/tmp' })).toMatchObject({ r: { state: 'ok' }, stdout: 'hello\n' })
    expect((await exec(p, 10, { argv: ['true'], cwd: '/nonexistent' })).r).toMatchObject({ state: 'error', cause: 'cannot change to directory /nonexistent' })
    expect((await exec(p, 10, { shell: true, command: 'kill -s KILL $$; echo never' })).r).toMatchObject({ state: 'failed', signal: 'SIGKILL', exitCode: null })
  })

  it('streams large output under flow control and the cap counts every byte', async () => {
    const p = pool()
    const zeros = await exec(p, 11, { argv: ['head', '-c', '3000000', '/dev/zero'] }, { capBytes: 1024 })
    expect(zeros.r).toMatchObject({ state: 'ok', bytes: 3_000_000, truncated: true })
    const yes = await exec(p, 11, { shell: true, command: 'yes | head -n 50000' })
    expect(yes.r).toMatchObject({ state: 'ok', bytes: 100_000, truncated: false })
    expect(yes.stdout).toBe('y\n'.repeat(50_000))
  })

  it('refuses a key it does not know, and counts the refusal', async () => {
    const stranger = await generateClientKey(tmp.path, 'stranger')
    const before = fleet.stats()
    const { r, started } = await exec(pool({ keyFile: stranger.keyFile }), 12, { argv: ['true'] })
    expect(r.state).toBe('error')
    expect(r.cause).toMatch(/^auth: /)
    expect(started).toBe(0)
    expect(fleet.stats().authFailures).toBeGreaterThan(before.authFailures)
    expect(fleet.stats().authenticated).toBe(before.authenticated)
  })
})
