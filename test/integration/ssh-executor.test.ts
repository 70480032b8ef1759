import { execFile, spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { copyFile, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ExecOperation } from '@apiary/shared'
import { createSshPool, type ExecResult, poolKey, runSsh, type SshPool, type SshPoolOptions, type SshTarget } from '@apiary/worker'
import { freePort } from '../harness/nats.ts'
import { type Sshd, startSshd } from '../harness/sshd.ts'
import { tempDir, type TempDir } from '../harness/temp.ts'
import { waitUntil } from '../harness/wait.ts'

const run = promisify(execFile)

/** The apiary SSH executor against real OpenSSH servers on loopback. */
describe('ssh executor', () => {
  let sshd: Sshd
  let tmp: TempDir
  const pools: SshPool[] = []

  beforeAll(async () => {
    ;[sshd, tmp] = await Promise.all([startSshd({ nodes: 32 }), tempDir('ssh-test')])
  })
  afterAll(async () => {
    await Promise.all(pools.map((p) => p.close()))
    await sshd?.stop()
    await tmp?.remove()
  })

  /** A pool that the suite closes at the end; quick retries so failures stay quick. */
  const pool = (o: Partial<SshPoolOptions> = {}): SshPool => {
    const p = createSshPool({ knownHosts: sshd.knownHosts, keyFile: sshd.keyFile, attempts: 2, backoff: { baseMs: 20, maxMs: 100 }, ...o })
    pools.push(p)
    return p
  }
  const target = (i = 0, o: Partial<SshTarget> = {}): SshTarget => ({ ...sshd.nodes[i]!, user: sshd.user, ...o })
  let n = 0
  /** A fresh file path in the suite's temp dir. */
  const file = (name: string) => join(tmp.path, `${++n}-${name}`)

  /** Runs `op` on `t`; `abortOn` aborts with its reason once stdout contains its text. */
  const exec = async (p: SshPool, t: SshTarget, op: Partial<ExecOperation>, o: { capBytes?: number; abortOn?: { text: string; reason: string } } = {}) => {
    const chunks: { stream: string; data: string }[] = []
    let started = 0
    const ac = new AbortController()
    const r: ExecResult = await runSsh(
      { pool: p, target: t, op: { type: 'exec', shell: false, ...op } as ExecOperation, capBytes: o.capBytes ?? 1 << 20, signal: ac.signal, killGraceMs: 300, drainMs: 300 },
      {
        onStart: () => started++,
        onOutput: (c) => {
          chunks.push(c)
          if (o.abortOn && chunks.filter((x) => x.stream === 'stdout').map((x) => x.data).join('').includes(o.abortOn.text)) ac.abort(o.abortOn.reason)
        },
      },
    )
    const out = (s: string) => chunks.filter((c) => c.stream === s).map((c) => c.data).join('')
    return { r, started, stdout: out('stdout'), stderr: out('stderr') }
  }

  it('fans out to 32 nodes on two servers at once, and a second run opens no new connection', async () => {
    const p = pool()
    const before = sshd.connectionCount()
    const first = await Promise.all(sshd.nodes.map((_, i) => exec(p, target(i), { shell: true, command: 'echo "$SSH_CONNECTION"' })))
    first.forEach(({ r, started, stdout }, i) => {
      expect(r, stdout).toMatchObject({ state: 'ok', exitCode: 0, cause: null })
      expect(started).toBe(1)
      // Each node is its own address: the server saw the connection arrive on it.
      expect(stdout.split(' ')[2]).toBe(sshd.nodes[i]!.host)
    })
    expect(new Set(sshd.nodes.map((x) => x.port)).size).toBe(2)
    expect(p.stats()).toMatchObject({ connections: 32, channels: 0, opened: 32 })
    expect(sshd.connectionCount() - before).toBe(32)

    const second = await Promise.all(sshd.nodes.map((_, i) => exec(p, target(i), { argv: ['true'] })))
    for (const { r } of second) expect(r.state).toBe('ok')
    expect(p.stats().opened).toBe(32)
    expect(sshd.connectionCount() - before).toBe(32)
    expect(p.hostStatus(poolKey(target(0)))).toMatchObject({ breaker: 'closed', consecutiveFailures: 0, lastContact: expect.any(Number) })
  })

  it('sends argv quoted: spaces, quotes, $, ;, newlines, globs and unicode arrive as they were', async () => {
    const args = ['a b', "it's", '"double"', '$HOME', '; echo pwned', 'line1\nline2', 'ünïcødé ✓ 日本', '', '*', '`id`', '\\', '-n', "'", '$(id)']
    const { r, stdout } = await exec(pool(), target(1), { argv: ['printf', '%s\\0', ...args] })
    expect(r.state).toBe('ok')
    expect(stdout.split('\0').slice(0, -1)).toEqual(args)
  })

  it('runs a shell string with env, cwd and stdin', async () => {
    const { r, stdout, stderr } = await exec(pool(), target(2), {
      shell: true,
      command: 'cat; echo "$GREETING"; pwd; echo oops >&2',
      env: { GREETING: "it's $not expanded; `nor this`" },
      cwd: sshd.dir,
      stdin: 'in\n',
    })
    expect(r).toMatchObject({ state: 'ok', exitCode: 0 })
    expect(stdout).toBe(`in\nit's $not expanded; \`nor this\`\n${sshd.dir}\n`)
    expect(stderr).toBe('oops\n')
  })

  it('reports a non-zero exit as failed with its code, and a missing program or directory as an error', async () => {
    const p = pool()
    const failed = await exec(p, target(3), { shell: true, command: 'echo out; echo err >&2; exit 3' })
    expect(failed).toMatchObject({ r: { state: 'failed', exitCode: 3, signal: null }, stdout: 'out\n', stderr: 'err\n' })
    const missing = await exec(p, target(3), { argv: ['/nonexistent/program', 'x'] })
    expect(missing.r).toMatchObject({ state: 'error', cause: 'program not found: /nonexistent/program' })
    expect(missing.stdout).toBe('')
    const nocwd = await exec(p, target(3), { argv: ['true'], cwd: '/nonexistent/dir' })
    expect(nocwd.r).toMatchObject({ state: 'error', cause: 'cannot change to directory /nonexistent/dir' })
    const killed = await exec(p, target(3), { shell: true, command: 'kill -s KILL $$' })
    expect(killed.r).toMatchObject({ state: 'failed', exitCode: null, signal: 'SIGKILL', cause: 'killed by SIGKILL' })
  })

  it('cuts output at the cap and counts every byte', async () => {
    const { r, stdout } = await exec(pool(), target(4), { shell: true, command: "head -c 100000 /dev/zero | tr '\\0' x" }, { capBytes: 1024 })
    expect(r).toMatchObject({ state: 'ok', bytes: 100_000, truncated: true })
    expect(stdout).toBe('x'.repeat(1024))
  })

  it('reports a node whose port is closed as unreachable, quickly', async () => {
    const t0 = performance.now()
    const { r, started } = await exec(pool(), target(0, { host: '127.0.10.250', port: await freePort() }), { argv: ['true'] })
    expect(r).toMatchObject({ state: 'error', cause: 'unreachable: connection refused' })
    expect(started).toBe(0)
    expect(performance.now() - t0).toBeLessThan(2000)
  })

  it('reports a key the server does not accept as an auth error', async () => {
    const key = file('stranger')
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', '', '-f', key])
    const { r } = await exec(pool(), target(5, { keyFile: key }), { argv: ['true'] })
    expect(r.state).toBe('error')
    expect(r.cause).toMatch(/^auth: /)
  })

  it('refuses a changed host key: host key mismatch, and nothing runs', async () => {
    const marker = file('mismatch-marker')
    const { r, started } = await exec(pool({ knownHosts: sshd.wrongKnownHosts }), target(6), { argv: ['touch', marker] })
    expect(r).toMatchObject({ state: 'error', cause: 'host key mismatch' })
    expect(started).toBe(0)
    expect(existsSync(marker)).toBe(false)
  })

  it('refuses an unknown host key when strict, and nothing runs', async () => {
    const known = file('known_hosts')
    await writeFile(known, '')
    const marker = file('unknown-marker')
    const { r } = await exec(pool({ knownHosts: known }), target(7), { argv: ['touch', marker] })
    expect(r).toMatchObject({ state: 'error', cause: 'host key unknown' })
    expect(existsSync(marker)).toBe(false)
  })

  it('records an unknown host key with accept-new, which a strict pool then accepts', async () => {
    const known = file('known_hosts')
    const t = target(8)
    const first = await exec(pool({ knownHosts: known, hostKeyPolicy: 'accept-new' }), t, { argv: ['true'] })
    expect(first.r.state).toBe('ok')
    const hostPub = (await readFile(`${sshd.hostKeyFile}.pub`, 'utf8')).split(' ').slice(0, 2).join(' ')
    expect(await readFile(known, 'utf8')).toBe(`[${t.host}]:${t.port} ${hostPub}\n`)
    const again = await exec(pool({ knownHosts: known }), t, { argv: ['true'] })
    expect(again.r.state).toBe('ok')
  })

  it('accepts a host listed in a hashed known_hosts', async () => {
    expect(readFileSync(sshd.hashedKnownHosts, 'utf8')).toMatch(/^\|1\|/)
    expect(readFileSync(sshd.hashedKnownHosts, 'utf8')).not.toContain(sshd.nodes[9]!.host)
    const { r } = await exec(pool({ knownHosts: sshd.hashedKnownHosts }), target(9), { argv: ['true'] })
    expect(r.state).toBe('ok')
  })

  it('logs in with a passphrase-protected key (passphrase from a file); a wrong passphrase is an auth error', async () => {
    const p = pool({ keyFile: undefined })
    const ok = await exec(p, target(10, { keyFile: sshd.passKeyFile, passphraseFile: sshd.passphraseFile }), { argv: ['true'] })
    expect(ok.r.state).toBe('ok')
    const wrong = file('wrong-passphrase')
    await writeFile(wrong, 'not it\n', { mode: 0o600 })
    const bad = await exec(pool({ keyFile: undefined }), target(11, { keyFile: sshd.passKeyFile, passphraseFile: wrong }), { argv: ['true'] })
    expect(bad.r.state).toBe('error')
    expect(bad.r.cause).toMatch(/^auth: cannot use key .*id_pass/)
  })

  it('logs in through ssh-agent when no key file is set', async () => {
    const sock = file('agent.sock')
    const agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: ['ignore', 'pipe', 'ignore'] })
    const exited = new Promise<void>((resolve) => agent.once('exit', () => resolve()))
    try {
      // The agent prints its environment once its socket listens.
      await new Promise<void>((resolve, reject) => {
        agent.stdout.once('data', () => resolve())
        agent.once('exit', () => reject(new Error('ssh-agent exited')))
      })
      await run('ssh-add', ['-q', sshd.keyFile], { env: { ...process.env, SSH_AUTH_SOCK: sock } })
      const { r } = await exec(pool({ keyFile: undefined, agent: sock }), target(12), { argv: ['true'] })
      expect(r.state).toBe('ok')
    } finally {
      agent.kill()
      await exited
    }
  })

  /** A command whose shell and a child that ignores SIGTERM write their pids, then say "up". */
  const stubborn = (dir: string) => ({
    shell: true,
    command: `echo $$ > ${dir}-shell.pid; sh -c 'trap "" TERM; echo $$ > ${dir}-child.pid; exec sleep 30' & while [ ! -s ${dir}-child.pid ]; do :; done; echo up; wait`,
  })
  const pidsGone = async (dir: string) => {
    const pids = [`${dir}-shell.pid`, `${dir}-child.pid`].map((f) => Number(readFileSync(f, 'utf8').trim()))
    for (const pid of pids) expect(pid).toBeGreaterThan(1)
    await waitUntil(() => pids.every((pid) => !running(pid)), `remote processes ${pids.join(', ')} to be gone`, 5000)
  }

  it('on timeout stops the remote process group: the shell and a child that ignores SIGTERM are gone', async () => {
    const dir = file('timeout')
    const { r, started } = await exec(pool(), target(13), stubborn(dir), { abortOn: { text: 'up', reason: 'timeout' } })
    expect(started).toBe(1)
    expect(r).toMatchObject({ state: 'timeout', cause: 'execution deadline passed' })
    await pidsGone(dir)
  })

  it('on cancel mid-run stops everything and names the reason', async () => {
    const p = pool()
    const dir = file('cancel')
    const { r } = await exec(p, target(14), stubborn(dir), { abortOn: { text: 'up', reason: 'cancelled by alice' } })
    expect(r).toMatchObject({ state: 'cancelled', cause: 'cancelled by alice' })
    await pidsGone(dir)
    // The connection survives a stopped command and serves the next one.
    expect((await exec(p, target(14), { argv: ['true'] })).r.state).toBe('ok')
    expect(p.stats().opened).toBe(1)
  })

  it("cancels 8 commands multiplexed on one connection at once, within the server's MaxSessions", async () => {
    const p = pool({ maxPerHost: 1, channelsPerConnection: 8 })
    const ac = new AbortController()
    const dirs = Array.from({ length: 8 }, (_, i) => file(`mass-${i}`))
    let up = 0
    let abortedAt = 0
    const runs = await Promise.all(
      dirs.map((dir) =>
        runSsh(
          { pool: p, target: target(17), op: { type: 'exec', ...stubborn(dir) }, capBytes: 1024, signal: ac.signal, killGraceMs: 300, drainMs: 300 },
          {
            onStart: () => undefined,
            onOutput: (c) => {
              if (!c.data.includes('up') || ++up < dirs.length) return
              abortedAt = performance.now()
              ac.abort('cancelled by bob')
            },
          },
        ),
      ),
    )
    for (const r of runs) expect(r).toMatchObject({ state: 'cancelled', cause: 'cancelled by bob' })
    // Kills that the server refused (more sessions than MaxSessions) would leave the commands
    // to run their 30 s.
    expect(performance.now() - abortedAt).toBeLessThan(5000)
    expect(p.stats().opened).toBe(1)
    for (const dir of dirs) await pidsGone(dir)
  })

  it('reports a command whose connection dropped mid-run as lost, not as a failure to retry', async () => {
    const server = await startSshd({ nodes: 1, firstHost: '127.0.22.1', keysFrom: sshd })
    const known = file('known_hosts')
    await copyFile(server.knownHosts, known)
    const p = pool({ knownHosts: known })
    let stopping: Promise<void> | undefined
    try {
      const { r, started } = await runSsh(
        { pool: p, target: { ...server.nodes[0]!, user: sshd.user }, op: { type: 'exec', shell: true, command: 'echo up; sleep 30' }, capBytes: 1024, signal: new AbortController().signal },
        { onStart: () => undefined, onOutput: () => (stopping ??= server.stop()) },
      ).then((r) => ({ r, started: true }))
      expect(started).toBe(true)
      expect(r).toMatchObject({ state: 'lost', cause: 'connection lost while the command ran; outcome unknown' })
    } finally {
      await (stopping ?? server.stop())
    }
  })

  it('multiplexes channels on one connection up to the limit, queueing the rest', async () => {
    const p = pool({ maxPerHost: 1, channelsPerConnection: 4 })
    let peak = 0
    const runs = await Promise.all(
      Array.from({ length: 10 }, () =>
        runSsh(
          { pool: p, target: target(15), op: { type: 'exec', shell: true, command: 'sleep 0.1' }, capBytes: 1024, signal: new AbortController().signal },
          { onStart: () => (peak = Math.max(peak, p.stats().channels)), onOutput: () => undefined },
        ),
      ),
    )
    for (const r of runs) expect(r.state).toBe('ok')
    expect(p.stats().opened).toBe(1)
    expect(peak).toBe(4)
  })

  it('keeps to the total cap: idle connections to other hosts make room, and a waiter leaves when its signal aborts', async () => {
    const p = pool({ maxTotal: 2 })
    let peak = 0
    const onStart = () => (peak = Math.max(peak, p.stats().connections))
    const runs = await Promise.all(
      [18, 19, 20, 21].map((i) =>
        runSsh(
          { pool: p, target: target(i), op: { type: 'exec', shell: false, argv: ['true'] }, capBytes: 1024, signal: new AbortController().signal },
          { onStart, onOutput: () => undefined },
        ),
      ),
    )
    for (const r of runs) expect(r.state).toBe('ok')
    expect(peak).toBeLessThanOrEqual(2)
    expect(p.stats().opened).toBe(4)

    // Both connections busy: a third host waits its turn, until its deadline passes.
    const hold = new AbortController()
    let held = 0
    let bothHeld!: () => void
    const busy = new Promise<void>((resolve) => (bothHeld = resolve))
    const holding = [18, 19].map((i) =>
      runSsh(
        { pool: p, target: target(i), op: { type: 'exec', shell: true, command: 'echo held; sleep 30' }, capBytes: 1024, signal: hold.signal, killGraceMs: 300 },
        { onStart: () => undefined, onOutput: (c) => c.data.includes('held') && ++held === 2 && bothHeld() },
      ),
    )
    await busy
    const opened = p.stats().opened
    const waiter = new AbortController()
    let started = false
    const waiting = runSsh(
      { pool: p, target: target(20), op: { type: 'exec', shell: false, argv: ['true'] }, capBytes: 1024, signal: waiter.signal },
      { onStart: () => (started = true), onOutput: () => undefined },
    )
    waiter.abort('timeout')
    expect(await waiting).toMatchObject({ state: 'timeout', exitCode: null, cause: 'execution deadline passed' })
    expect(started).toBe(false)
    expect(p.stats()).toMatchObject({ connections: 2, channels: 2, opened })
    hold.abort('done holding')
    for (const r of await Promise.all(holding)) expect(r.state).toBe('cancelled')
  })

  it('closes an idle connection after the idle timeout', async () => {
    const p = pool({ idleMs: 100 })
    expect((await exec(p, target(16), { argv: ['true'] })).r.state).toBe('ok')
    await waitUntil(() => p.stats().connections === 0, 'the idle connection to close', 5000)
    expect((await exec(p, target(16), { argv: ['true'] })).r.state).toBe('ok')
    expect(p.stats().opened).toBe(2)
  })

  it('opens a breaker after consecutive connect failures, and closes it once the host answers again', async () => {
    const port = await freePort()
    const t: SshTarget = { id: 'late', host: '127.0.20.1', port, user: sshd.user }
    const known = file('known_hosts')
    await writeFile(known, '')
    const p = pool({ knownHosts: known, attempts: 1, breaker: { failures: 3, cooldownMs: 300 } })
    const key = poolKey(t)
    for (let i = 1; i <= 3; i++) {
      const { r } = await exec(p, t, { argv: ['true'] })
      expect(r.cause).toBe('unreachable: connection refused')
      expect(p.hostStatus(key).consecutiveFailures).toBe(i)
    }
    expect(p.hostStatus(key)).toMatchObject({ breaker: 'open', lastContact: null })
    expect((await exec(p, t, { argv: ['true'] })).r).toMatchObject({ state: 'error', cause: 'breaker open' })

    const late = await startSshd({ nodes: 1, firstHost: t.host, port, keysFrom: sshd })
    try {
      await copyFile(late.knownHosts, known)
      await waitUntil(() => p.hostStatus(key).breaker === 'half-open', 'the breaker to be half-open', 5000)
      expect((await exec(p, t, { argv: ['true'] })).r.state).toBe('ok')
      expect(p.hostStatus(key)).toMatchObject({ breaker: 'closed', consecutiveFailures: 0, lastContact: expect.any(Number) })
    } finally {
      await p.close()
      await late.stop()
    }
  })

  it('replaces a pooled connection whose server went away instead of handing it out', async () => {
    const first = await startSshd({ nodes: 1, firstHost: '127.0.21.1', keysFrom: sshd })
    const t: SshTarget = { ...first.nodes[0]!, user: sshd.user }
    const known = file('known_hosts')
    await copyFile(first.knownHosts, known)
    const p = pool({ knownHosts: known })
    let again: Sshd | undefined
    try {
      expect((await exec(p, t, { argv: ['true'] })).r.state).toBe('ok')
      await first.stop()
      again = await startSshd({ nodes: 1, firstHost: t.host, port: t.port, keysFrom: sshd })
      expect((await exec(p, t, { argv: ['true'] })).r.state).toBe('ok')
      expect(p.stats()).toMatchObject({ connections: 1, opened: 2 })
    } finally {
      await p.close()
      await again?.stop()
    }
  })
})

/** True while the process exists and is not a zombie waiting to be reaped. */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return false
  }
}
