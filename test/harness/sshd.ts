import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { appendFileSync, readdirSync, readFileSync } from 'node:fs'
import { chmod, copyFile, mkdir, readFile, writeFile } from 'node:fs/promises'
import { userInfo } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { freePort } from './nats.ts'
import { tempDir } from './temp.ts'

const run = promisify(execFile)
const SSHD = '/usr/sbin/sshd'
/** sshd refuses more ListenAddress lines than this. */
const MAX_LISTEN = 16

export interface SshNode {
  id: string
  host: string
  port: number
}

export interface SshdOptions {
  nodes: number
  /** Address of the first node; the others count up from it (default 127.0.10.1). */
  firstHost?: string
  /** Listen on this port (only with at most 16 nodes); default a free one. */
  port?: number
  /** Reuse the host key, client keys and authorized keys of another server (a restart). */
  keysFrom?: Sshd
}

export interface Sshd {
  nodes: SshNode[]
  /** The user the client keys log in as (whoever runs the tests). */
  user: string
  /** The server's temp dir; tests may put their own files here. */
  dir: string
  keyFile: string
  passKeyFile: string
  passphraseFile: string
  hostKeyFile: string
  knownHosts: string
  hashedKnownHosts: string
  /** The same hosts with another host key, as after a reinstall or an attack. */
  wrongKnownHosts: string
  /** TCP connections the servers accepted so far ("Connection from" lines in their logs). */
  connectionCount(): number
  stop(): Promise<void>
}

/**
 * Runs real OpenSSH servers on loopback, one per 16 nodes, so that every node is its own
 * address (127.0.10.1, 127.0.10.2, …) on its server's port. Generates host and client keys
 * (one of them passphrase-protected), authorized_keys and known_hosts (plain, hashed and a
 * wrong one) in a temp dir. `stop()` ends the servers and everything they started.
 *
 * @example const sshd = await startSshd({ nodes: 32 }); …; await sshd.stop()
 */
export async function startSshd(opts: SshdOptions): Promise<Sshd> {
  if (opts.port !== undefined && opts.nodes > MAX_LISTEN) throw new Error(`a fixed port serves at most ${MAX_LISTEN} nodes`)
  const dir = await tempDir('sshd')
  const user = userInfo().username
  const f = (name: string) => join(dir.path, name)
  const servers: Server[] = []
  try {
    // Privilege separation needs its empty chroot directory.
    await mkdir('/run/sshd', { recursive: true, mode: 0o755 })
    // The same for every server, so a restarted one (keysFrom) shares it too.
    const passphrase = 'correct horse battery staple'
    await writeFile(f('passphrase'), `${passphrase}\n`, { mode: 0o600 })
    if (opts.keysFrom) {
      const from = opts.keysFrom
      await Promise.all([
        copyFile(from.hostKeyFile, f('host_ed25519')),
        copyFile(from.keyFile, f('id_ed25519')),
        copyFile(from.passKeyFile, f('id_pass')),
        copyFile(join(from.dir, 'authorized_keys'), f('authorized_keys')),
        copyFile(join(from.dir, 'host_ed25519.pub'), f('host_ed25519.pub')),
      ])
      await Promise.all(['host_ed25519', 'id_ed25519', 'id_pass'].map((k) => chmod(f(k), 0o600)))
    } else {
      const keygen = (file: string, ...extra: string[]) => run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', '', '-f', f(file), ...extra])
      // -a 4: few KDF rounds keep the passphrase key quick to decrypt in tests.
      await Promise.all([
        keygen('host_ed25519'),
        keygen('other_host_ed25519'),
        keygen('id_ed25519'),
        run('ssh-keygen', ['-q', '-t', 'ed25519', '-a', '4', '-N', passphrase, '-C', '', '-f', f('id_pass')]),
      ])
      const pubs = await Promise.all(['id_ed25519.pub', 'id_pass.pub'].map((p) => readFile(f(p), 'utf8')))
      await writeFile(f('authorized_keys'), pubs.join(''), { mode: 0o600 })
    }

    const nodes: SshNode[] = []
    const groups = Math.ceil(opts.nodes / MAX_LISTEN)
    const first = opts.firstHost ?? '127.0.10.1'
    const started = await Promise.all(
      Array.from({ length: groups }, (_, g) => {
        const hosts = Array.from({ length: Math.min(MAX_LISTEN, opts.nodes - g * MAX_LISTEN) }, (_, i) => nthAddress(first, g * MAX_LISTEN + i))
        return startServer(dir.path, g, hosts, opts)
      }),
    )
    servers.push(...started)
    for (const s of servers) for (const host of s.hosts) nodes.push({ id: `node-${String(nodes.length + 1).padStart(3, '0')}`, host, port: s.port })

    const hostPub = (await readFile(f('host_ed25519.pub'), 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ')
    const lines = (pub: string) => nodes.map((n) => `[${n.host}]:${n.port} ${pub}\n`).join('')
    await writeFile(f('known_hosts'), lines(hostPub))
    await writeFile(f('known_hosts_hashed'), lines(hostPub))
    await run('ssh-keygen', ['-q', '-H', '-f', f('known_hosts_hashed')])
    if (!opts.keysFrom) {
      const otherPub = (await readFile(f('other_host_ed25519.pub'), 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ')
      await writeFile(f('known_hosts_wrong'), lines(otherPub))
    } else {
      await copyFile(opts.keysFrom.wrongKnownHosts, f('known_hosts_wrong'))
    }

    return {
      nodes,
      user,
      dir: dir.path,
      keyFile: f('id_ed25519'),
      passKeyFile: f('id_pass'),
      passphraseFile: f('passphrase'),
      hostKeyFile: f('host_ed25519'),
      knownHosts: f('known_hosts'),
      hashedKnownHosts: f('known_hosts_hashed'),
      wrongKnownHosts: f('known_hosts_wrong'),
      connectionCount: () => servers.reduce((n, s) => n + (readFileSync(s.logFile, 'utf8').match(/^Connection from /gm)?.length ?? 0), 0),
      async stop() {
        await Promise.all(servers.map((s) => s.stop()))
        await dir.remove()
      },
    }
  } catch (err) {
    await Promise.all(servers.map((s) => s.stop()))
    await dir.remove()
    throw err
  }
}

interface Server {
  hosts: string[]
  port: number
  logFile: string
  stop(): Promise<void>
}

async function startServer(dir: string, group: number, hosts: string[], opts: SshdOptions): Promise<Server> {
  for (let attempt = 0; ; attempt++) {
    const port = opts.port ?? (await freePort())
    const config = join(dir, `sshd_config.${group}`)
    const logFile = join(dir, `sshd.${group}.log`)
    await writeFile(
      config,
      [
        `Port ${port}`,
        ...hosts.map((h) => `ListenAddress ${h}`),
        `HostKey ${join(dir, 'host_ed25519')}`,
        `PidFile ${join(dir, `sshd.${group}.pid`)}`,
        `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
        'UsePAM no',
        'StrictModes no',
        'PermitRootLogin prohibit-password',
        'PubkeyAuthentication yes',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'AllowAgentForwarding no',
        'X11Forwarding no',
        'PrintMotd no',
        'UseDNS no',
        // bash sources ~/.bashrc for ssh commands only at shell level 1; this machine's runs pyenv
        // (a quarter second of CPU per command). Nodes under test behave like minimal hosts.
        'SetEnv SHLVL=1',
        // Pools multiplex channels on one connection: room for 8 plus a kill channel.
        'MaxSessions 10',
        // Fan-out tests open many connections at once; the default (10:30:100) drops some.
        'MaxStartups 1000',
        'LoginGraceTime 30',
        'LogLevel VERBOSE',
        '',
      ].join('\n'),
    )
    const child = spawn(SSHD, ['-f', config, '-D', '-e'], { stdio: ['ignore', 'ignore', 'pipe'] })
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    // The log goes to a file as it arrives; connection children inherit the pipe, and each
    // writes its "Connection from" line before it sends its banner, so by the time a client
    // is connected the line is in the file.
    appendFileSync(logFile, '')
    child.stderr!.on('data', (b: Buffer) => appendFileSync(logFile, b))
    try {
      await listening(child, hosts.length, 10_000)
    } catch (err) {
      await stopTree(child, exited)
      if (opts.port === undefined && attempt < 3 && /Address already in use|Cannot bind/.test(readFileSync(logFile, 'utf8'))) continue
      throw new Error(`sshd did not start: ${(err as Error).message}\n${readFileSync(logFile, 'utf8')}`)
    }
    return { hosts, port, logFile, stop: () => stopTree(child, exited) }
  }
}

/** Resolves once sshd logged "Server listening" for each address; rejects on a bind failure. */
function listening(child: ChildProcess, count: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = ''
    let listeningOn = 0
    const onData = (b: Buffer) => {
      seen += b.toString()
      const lines = seen.split('\n')
      seen = lines.pop() ?? ''
      for (const line of lines) {
        if (/^Server listening on /.test(line)) listeningOn++
        else if (/^Bind to port|Cannot bind/.test(line)) return done(new Error(line))
      }
      if (listeningOn >= count) done()
    }
    const onExit = (code: number | null) => done(new Error(`sshd exited (${code})`))
    const timer = setTimeout(() => done(new Error(`not listening within ${timeoutMs} ms`)), timeoutMs)
    const done = (err?: Error) => {
      clearTimeout(timer)
      child.stderr?.off('data', onData)
      child.off('exit', onExit)
      if (err) reject(err)
      else resolve()
    }
    child.stderr?.on('data', onData)
    child.once('exit', onExit)
  })
}

/**
 * Stops a listening sshd and every process below it. Each connection's sshd puts itself in a
 * session of its own, so a process-group kill would miss them: walk /proc instead.
 */
async function stopTree(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.pid === undefined) return
  const tree = descendants(child.pid)
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
  for (const pid of tree) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // Already gone.
    }
  }
  await exited
}

function descendants(root: number): number[] {
  const parent = new Map<number, number>()
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      // The command name may hold spaces and parentheses; the fields after the last ')' do not.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      parent.set(Number(name), ppid)
    } catch {
      // Exited while we looked.
    }
  }
  const out: number[] = []
  const walk = (pid: number) => {
    for (const [p, pp] of parent) {
      if (pp === pid) {
        out.push(p)
        walk(p)
      }
    }
  }
  walk(root)
  return out
}

/** The address `n` places after `first` within 127.0.0.0/8, skipping .0 and .255. */
export function nthAddress(first: string, n: number): string {
  const [a, b, c, d] = first.split('.').map(Number) as [number, number, number, number]
  // Count in /24s of 254 usable addresses each.
  const k = ((b << 8) + c) * 254 + (d - 1) + n
  const net = Math.floor(k / 254)
  return `${a}.${(net >> 8) & 255}.${net & 255}.${(k % 254) + 1}`
}
