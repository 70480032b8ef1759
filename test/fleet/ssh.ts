/**
 * The SSH fleet simulator: thousands of cheap SSH nodes on loopback, built on ssh2's own
 * `Server`, for tests and benchmarks that real sshd processes cannot afford on two cores.
 *
 * Every node is an address:port of its own (by default its own address 127.0.20.x on one
 * shared port; `nodesPerAddress` packs several nodes on consecutive ports of one address), with
 * one listening socket each and an ssh2 `Server` per node (its `injectSocket` takes the
 * accepted sockets, so the fleet holds them and `close()` cannot hang on a silent client).
 * One host key for the fleet, public-key auth against the given authorized keys, and a
 * per-connection session limit like sshd's `MaxSessions` (default 10).
 *
 * An exec request runs in a tiny simulated POSIX shell, never on this machine: the node reads
 * the command line the way `$SHELL -c` would, so apiary's wrapper (see the worker's
 * `remoteCommand`: `export`, `cd --`, `command -v … || { printf …; exit 127; }`, a `printf` of
 * the marker with `"$$"`, then `exec …`) runs as it would on a real node: the marker line carries
 * the session's simulated pid, which is its process group, and `kill -s TERM -- -PGID` from
 * another channel ends it. What the shell understands:
 *
 * - syntax: words with '…', "…" and \ quoting; `$$`, `$?`, `$NAME`, `${NAME}`, `$0`…`$9`
 *   (no field splitting, no globbing, no command substitution); `;`, newlines, `&&`, `||`,
 *   `|`, `!`, `{ …; }`, `#` comments; redirections `>/dev/null`, `2>/dev/null`, `>&2`, `2>&1`
 *   (any other file → "Read-only file system"); `NAME=VALUE` assignments.
 * - shell builtins: `:`, `true`, `false`, `echo [-n]`, `printf`, `exit [N]`, `export`, `unset`,
 *   `cd`, `pwd`, `command [-v]`, `exec`, `kill [-s SIG|-SIG] [--] [-]PID…`, `env`.
 * - programs (also as /bin/X, /usr/bin/X): `hostname` and `uname -n` (the node id), `uname
 *   [-asnrm]`, `sleep N` (fractions too), `head -c N|-n N [FILE]`, `cat [FILE…]`, `yes [WORD]`,
 *   `sh|bash|dash -c SCRIPT`, `true`, `false`. Files: only /dev/null and /dev/zero.
 * - large output: `head -c N /dev/zero` (N zero bytes) or `yes | head -n N` (N lines "y").
 *   Output honours the channel's flow control, so a slow reader slows the node, not memory.
 * - an unknown program: `sh: 1: NAME: not found` on stderr and status 127 (through apiary's
 *   argv wrapper, `command -v` fails first and the wrapper prints its `notfound` marker, as on a
 *   real node). `cd` knows a fixed set of directories (`/`, `/tmp`, `/root`, `/home`, …).
 * - signals: `kill` of a session's pid or group, an SSH `signal` request, or the channel or
 *   connection closing ends the session's command; a killed command reports `exit-signal`
 *   (TERM, KILL, …; a closed channel counts as HUP). There are no traps. Unlike a real node, a
 *   command whose channel closed does not run on.
 *
 * Open files: one listening socket per node, and one socket per connection (two when the
 * client is in the same process). Check `ulimit -n` for thousands of nodes.
 *
 * @example
 * const key = await generateClientKey(dir)
 * const fleet = await startSshFleet({ count: 1000, authorizedKeys: key.publicKey })
 * const pool = createSshPool({ knownHosts: fleet.knownHosts, keyFile: key.keyFile })
 * // … runSsh on fleet.nodes …
 * await fleet.close()
 */
import { timingSafeEqual } from 'node:crypto'
import type { EventEmitter } from 'node:events'
import { writeFile } from 'node:fs/promises'
import { createServer, type Server as NetServer, type Socket } from 'node:net'
import { posix } from 'node:path'
import ssh2, { type Connection, type ParsedKey, type ServerChannel } from 'ssh2'
import { abortable } from '@apiary/shared/runtime'
import { freePort } from '../harness/nats.ts'
import { sshKeyPair } from '../harness/ssh-keys.ts'
import { nthAddress } from '../harness/sshd.ts'
import { tempDir } from '../harness/temp.ts'

const { Server, utils } = ssh2

export interface SshFleetOptions {
  /** Simulated nodes. */
  count: number
  /** Public keys allowed to log in: OpenSSH lines (`ssh-ed25519 AAAA… comment`), one or more. */
  authorizedKeys: string | Buffer
  /** The fleet's host key (a private key, OpenSSH or PEM); default a fresh ed25519 key. */
  hostKey?: string | Buffer
  /** Address of the first node; the others count up from it (default 127.0.20.1). */
  firstHost?: string
  /** Nodes per address, on consecutive ports from `basePort` (default 1: an address each). */
  nodesPerAddress?: number
  /** First port (default a free one; a node whose port is taken then gets any free port). */
  basePort?: number
  /** Node ids are `<prefix>-00001`, … (default `ssh`); `hostname` answers the id. */
  prefix?: string
  /** Only this user may log in (default: any user name). */
  user?: string
  /** Sessions (channels) open at once per connection, like sshd's MaxSessions (default 10). */
  maxSessions?: number
}

export interface SshFleetNode {
  id: string
  host: string
  port: number
}

export interface SshFleetStats {
  /** TCP connections accepted so far. */
  connections: number
  /** Connections open now. */
  open: number
  /** Connections that passed public-key auth. */
  authenticated: number
  /** Auth attempts refused (a key offer, a bad signature, another method). */
  authFailures: number
  /** Sessions (channels) opened; refused ones (over `maxSessions`) are `sessionsRefused`. */
  sessions: number
  sessionsRefused: number
  /** Exec requests run. */
  execs: number
  /** Commands running now. */
  running: number
  /** Commands ended by a signal (kill, SSH signal, channel or connection closed). */
  killed: number
}

export interface SshFleet {
  nodes: SshFleetNode[]
  /** An OpenSSH known_hosts file with every node (`[host]:port key`). */
  knownHosts: string
  /** The lines of that file. */
  knownHostsLines(): string[]
  /** The host key, as `type base64`. */
  hostPublicKey: string
  stats(): SshFleetStats
  /** TCP connections the node accepted so far. */
  connectionsTo(id: string): number
  /** Closes every connection and listener; running commands end as if killed. */
  close(): Promise<void>
}

/**
 * Writes a fresh ed25519 client key pair to `dir` (`id_ed25519`, mode 0600, and `.pub`).
 *
 * @example const { keyFile, publicKey } = await generateClientKey(tmp.path)
 */
export async function generateClientKey(dir: string, name = 'id_ed25519'): Promise<{ keyFile: string; publicKey: string }> {
  const pair = sshKeyPair()
  const keyFile = posix.join(dir, name)
  await writeFile(keyFile, pair.private, { mode: 0o600 })
  await writeFile(`${keyFile}.pub`, `${pair.public}\n`)
  return { keyFile, publicKey: pair.public }
}

/** The id of the node at `index` (0-based). */
export function sshFleetNodeId(prefix: string, index: number): string {
  return `${prefix}-${String(index + 1).padStart(5, '0')}`
}

interface NodeState {
  node: SshFleetNode
  listener: NetServer
  ssh: InstanceType<typeof Server>
  connections: number
  /** Running commands by pid (= process group). */
  procs: Map<number, Proc>
}

/** A running command: the session's shell and everything it runs, one process group. */
interface Proc {
  pid: number
  ctl: AbortController
  /** The signal that ended it, once one did. */
  killedBy: string | undefined
}

/**
 * Starts `count` simulated SSH nodes on loopback. Resolves once every node listens.
 *
 * @example const fleet = await startSshFleet({ count: 200, authorizedKeys: pub })
 */
export async function startSshFleet(opts: SshFleetOptions): Promise<SshFleet> {
  if (!Number.isInteger(opts.count) || opts.count < 1) throw new Error(`count must be a positive integer, not ${opts.count}`)
  const perAddress = opts.nodesPerAddress ?? 1
  if (!Number.isInteger(perAddress) || perAddress < 1) throw new Error(`nodesPerAddress must be a positive integer, not ${perAddress}`)
  const prefix = opts.prefix ?? 'ssh'
  const maxSessions = opts.maxSessions ?? 10
  const first = opts.firstHost ?? '127.0.20.1'

  const hostKey = parsePrivate(opts.hostKey ?? sshKeyPair().private)
  const hostPublicKey = `${hostKey.type} ${hostKey.getPublicSSH().toString('base64')}`
  const allowed = parseAuthorized(opts.authorizedKeys)
  const user = opts.user === undefined ? undefined : Buffer.from(opts.user)

  const stats: SshFleetStats = { connections: 0, open: 0, authenticated: 0, authFailures: 0, sessions: 0, sessionsRefused: 0, execs: 0, running: 0, killed: 0 }
  const nodes: NodeState[] = []
  const byId = new Map<string, NodeState>()
  const sockets = new Set<Socket>()
  let nextPid = 2000
  let closing = false

  const dir = await tempDir('ssh-fleet')
  const explicitPort = opts.basePort !== undefined
  const basePort = opts.basePort ?? (await freePort())

  /** Runs one exec request; the command's process, for signals sent to the session. */
  const exec = (st: NodeState, conn: ConnState, stream: ServerChannel, command: string): Proc => {
    stats.execs++
    stats.running++
    const proc: Proc = { pid: nextPid++, ctl: new AbortController(), killedBy: undefined }
    st.procs.set(proc.pid, proc)
    conn.procs.add(proc)
    const stdin = new Pipe()
    stream.on('data', (b: Buffer) => stdin.push(b))
    stream.once('end', () => stdin.closeWrite())
    stream.on('error', () => undefined)
    stream.stderr.on('error', () => undefined)
    // The client closed the channel: the command loses its terminal-less session.
    stream.once('close', () => kill(proc, 'HUP'))
    const env = new Map<string, string>([
      ['HOME', '/root'],
      ['PATH', '/usr/local/bin:/usr/bin:/bin'],
      ['SHELL', '/bin/sh'],
      ['USER', conn.user],
      ['LOGNAME', conn.user],
      ['SSH_CONNECTION', `${conn.ip} ${conn.port} ${st.node.host} ${st.node.port}`],
    ])
    const shell = new Shell({ node: st.node, pid: proc.pid, signal: proc.ctl.signal, env, cwd: '/root', kill: (pid, sig) => signalProcs(st, pid, sig) })
    const io: Io = { stdin, out: channelWriter(stream, proc.ctl.signal), err: channelWriter(stream.stderr, proc.ctl.signal) }
    const finish = async (): Promise<{ status: number } | { signal: string }> => {
      try {
        return { status: await shell.main(command, io) }
      } catch (err) {
        if (err instanceof Killed) return { signal: err.signal }
        // A bug in the simulator: say so on the channel, as a shell would on an internal error.
        await io.err.write(Buffer.from(`sh: simulator error: ${String((err as Error)?.stack ?? err)}\n`)).catch(() => undefined)
        return { status: 2 }
      }
    }
    void finish().then((end) => {
      st.procs.delete(proc.pid)
      conn.procs.delete(proc)
      stats.running--
      // A signal that arrived while the last command was finishing still ends it as killed.
      const sig = 'signal' in end ? end.signal : proc.killedBy
      if (sig !== undefined) stats.killed++
      if (!stream.writable) return
      if (sig !== undefined) stream.exit(sig, false, '')
      else stream.exit('status' in end ? end.status : 0)
      stream.end()
    })
    return proc
  }

  const kill = (proc: Proc, sig: string) => {
    if (proc.killedBy !== undefined) return
    proc.killedBy = sig
    proc.ctl.abort(new Killed(sig))
  }

  /** `kill` on a node: a pid, or with a negative number a process group (the same here). */
  const signalProcs = (st: NodeState, target: number, sig: string): boolean => {
    const proc = st.procs.get(Math.abs(target))
    if (!proc) return false
    if (sig !== '0') kill(proc, sig)
    return true
  }

  const onConnection = (st: NodeState, client: Connection, info: { ip: string; port: number }) => {
    const conn: ConnState = { user: '', ip: info.ip, port: info.port, procs: new Set(), sessions: 0 }
    client.on('error', () => undefined)
    client.on('authentication', (ctx) => {
      const refuse = () => {
        stats.authFailures++
        ctx.reject(['publickey'])
      }
      if (user && !bytesEqual(Buffer.from(ctx.username), user)) return refuse()
      // Clients ask with `none` first to learn the methods: an answer, not a failure.
      if (ctx.method === 'none') return ctx.reject(['publickey'])
      if (ctx.method !== 'publickey') return refuse()
      const key = allowed.find((k) => bytesEqual(ctx.key.data, k.getPublicSSH()))
      if (!key) return refuse()
      // Without a signature the client only asks whether the key would do.
      if (ctx.signature && (!ctx.blob || key.verify(ctx.blob, ctx.signature, ctx.hashAlgo) !== true)) return refuse()
      if (ctx.signature) {
        conn.user = ctx.username
        stats.authenticated++
      }
      ctx.accept()
    })
    client.on('ready', () => {
      client.on('session', (accept, reject) => {
        if (conn.sessions >= maxSessions) {
          stats.sessionsRefused++
          return reject()
        }
        conn.sessions++
        stats.sessions++
        const session = accept()
        let counted = true
        const uncount = () => {
          if (!counted) return
          counted = false
          conn.sessions--
        }
        session.once('close', uncount)
        let proc: Proc | undefined
        session.on('exec', (acceptExec, _reject, req) => {
          const stream = acceptExec()
          stream.once('close', uncount)
          proc = exec(st, conn, stream, req.command)
        })
        session.on('signal', (acceptSignal, _reject, req) => {
          if (proc) kill(proc, req.name.replace(/^SIG/, ''))
          acceptSignal?.()
        })
        // A simulated node runs commands only: no shell, pty, agent, subsystem or sftp.
        for (const ev of ['env', 'pty', 'x11', 'auth-agent', 'window-change']) session.on(ev, (_a: unknown, reject?: () => void) => reject?.())
        for (const ev of ['shell', 'subsystem', 'sftp']) session.on(ev, (_a: unknown, reject: () => void) => reject())
      })
      // No forwarding of any kind.
      const events: EventEmitter = client
      for (const ev of ['tcpip', 'openssh.streamlocal']) events.on(ev, (_a: unknown, reject: () => void) => reject())
      events.on('request', (_a: unknown, reject?: () => void) => reject?.())
    })
    client.once('close', () => {
      for (const proc of conn.procs) kill(proc, 'HUP')
    })
  }

  const listen = (st: NodeState, port: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err)
      st.listener.once('error', onError)
      st.listener.listen({ host: st.node.host, port, backlog: 511 }, () => {
        st.listener.off('error', onError)
        const addr = st.listener.address()
        if (addr && typeof addr === 'object') st.node.port = addr.port
        resolve()
      })
    })

  try {
    for (let i = 0; i < opts.count; i++) {
      const host = nthAddress(first, Math.floor(i / perAddress))
      const node: SshFleetNode = { id: sshFleetNodeId(prefix, i), host, port: basePort + (i % perAddress) }
      const st: NodeState = {
        node,
        listener: createServer({ noDelay: true }),
        // The key is parsed once: ssh2 takes a parsed key as it is when wrapped in { key }.
        ssh: new Server({ hostKeys: [{ key: hostKey }] }),
        connections: 0,
        procs: new Map(),
      }
      st.ssh.on('connection', (client, info) => onConnection(st, client, info))
      st.ssh.on('error', () => undefined)
      st.listener.on('connection', (sock) => {
        if (closing) return sock.destroy()
        stats.connections++
        stats.open++
        st.connections++
        sockets.add(sock)
        sock.once('close', () => {
          stats.open--
          sockets.delete(sock)
        })
        st.ssh.injectSocket(sock)
      })
      nodes.push(st)
      byId.set(node.id, st)
    }
    // Binding is quick and synchronous in the kernel; a few hundred at once keeps the loop responsive.
    for (let i = 0; i < nodes.length; i += 256) {
      await Promise.all(
        nodes.slice(i, i + 256).map(async (st) => {
          try {
            await listen(st, st.node.port)
          } catch (err) {
            if (explicitPort || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err
            await listen(st, 0)
          }
        }),
      )
    }
  } catch (err) {
    await Promise.all(nodes.map((st) => new Promise<void>((r) => (st.listener.listening ? st.listener.close(() => r()) : r()))))
    await dir.remove()
    throw err
  }

  const lines = nodes.map((st) => `[${st.node.host}]:${st.node.port} ${hostPublicKey}`)
  const knownHosts = posix.join(dir.path, 'known_hosts')
  await writeFile(knownHosts, lines.join('\n') + '\n')

  return {
    nodes: nodes.map((st) => st.node),
    knownHosts,
    knownHostsLines: () => [...lines],
    hostPublicKey,
    stats: () => ({ ...stats }),
    connectionsTo: (id) => byId.get(id)?.connections ?? 0,
    async close() {
      closing = true
      for (const st of nodes) for (const proc of st.procs.values()) kill(proc, 'HUP')
      const closed = nodes.map((st) => new Promise<void>((r) => (st.listener.listening ? st.listener.close(() => r()) : r())))
      for (const sock of sockets) sock.destroy()
      await Promise.all(closed)
      await dir.remove()
    },
  }
}

interface ConnState {
  user: string
  ip: string
  port: number
  procs: Set<Proc>
  sessions: number
}

function parsePrivate(key: string | Buffer): ParsedKey {
  const parsed = utils.parseKey(key)
  const k = Array.isArray(parsed) ? (parsed[0] as ParsedKey | undefined) : parsed
  if (!k || k instanceof Error) throw new Error(`cannot parse the host key: ${k ? k.message : 'no key'}`)
  if (!k.isPrivateKey()) throw new Error('the host key must be a private key')
  return k
}

function parseAuthorized(text: string | Buffer): ParsedKey[] {
  const keys: ParsedKey[] = []
  for (const line of text.toString().split('\n')) {
    const t = line.trim()
    if (t === '' || t.startsWith('#')) continue
    const k = utils.parseKey(t)
    if (k instanceof Error) throw new Error(`cannot parse authorized key "${t.slice(0, 40)}…": ${k.message}`)
    keys.push(Array.isArray(k) ? (k[0] as ParsedKey) : k)
  }
  if (keys.length === 0) throw new Error('authorizedKeys holds no key')
  return keys
}

function bytesEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b)
}

// ─── the simulated shell ──────────────────────────────────────────────────────────────────

/** Thrown through the interpreter when the command's process group got a signal. */
class Killed {
  constructor(readonly signal: string) {}
}
/** `exit N`, or the end of an `exec`: ends the shell with the status. */
class ExitNow {
  constructor(readonly status: number) {}
}
/** A write to a pipe whose reader is gone (a `… | head` that has had enough). */
class BrokenPipe {}
class SyntaxError_ {
  constructor(readonly message: string) {}
}

interface Reader {
  read(signal: AbortSignal): Promise<Buffer | null>
}
interface Writer {
  write(b: Buffer): Promise<void>
}
interface Io {
  stdin: Reader
  out: Writer
  err: Writer
}


/** Writes to a channel (or its stderr), a packet per write, waiting for the peer's window. */
function channelWriter(w: NodeJS.WritableStream & { writable: boolean }, signal: AbortSignal): Writer {
  return {
    write(b) {
      if (signal.aborted) return Promise.reject(signal.reason as unknown)
      // The peer closed the channel: as with a pipe whose reader is gone.
      if (!w.writable) return Promise.reject(new Killed('PIPE'))
      return abortable(new Promise<void>((resolve) => w.write(b, () => resolve())), signal)
    },
  }
}

const NULL_WRITER: Writer = { write: () => Promise.resolve() }
const EMPTY_READER: Reader = { read: () => Promise.resolve(null) }

/** An in-memory pipe with a small buffer: a fast writer waits for its reader. */
class Pipe implements Reader, Writer {
  static readonly HIGH_WATER = 64 * 1024
  #chunks: Buffer[] = []
  #size = 0
  #writeClosed = false
  #readClosed = false
  #wakeReader: (() => void) | undefined
  #wakeWriter: (() => void) | undefined

  /** Adds data without waiting (the channel's stdin: as much as the client sends). */
  push(b: Buffer): void {
    if (this.#readClosed || b.length === 0) return
    this.#chunks.push(b)
    this.#size += b.length
    this.#wake('reader')
  }

  async write(b: Buffer, signal?: AbortSignal): Promise<void> {
    if (this.#readClosed) throw new BrokenPipe()
    if (b.length === 0) return
    this.#chunks.push(b)
    this.#size += b.length
    this.#wake('reader')
    while (this.#size > Pipe.HIGH_WATER && !this.#readClosed) await this.#wait('writer', signal)
  }

  async read(signal: AbortSignal): Promise<Buffer | null> {
    for (;;) {
      const b = this.#chunks.shift()
      if (b) {
        this.#size -= b.length
        this.#wake('writer')
        return b
      }
      if (this.#writeClosed || this.#readClosed) return null
      await this.#wait('reader', signal)
    }
  }

  closeWrite(): void {
    this.#writeClosed = true
    this.#wake('reader')
  }

  closeRead(): void {
    this.#readClosed = true
    this.#chunks = []
    this.#size = 0
    this.#wake('writer')
  }

  #wake(who: 'reader' | 'writer'): void {
    const w = who === 'reader' ? this.#wakeReader : this.#wakeWriter
    if (who === 'reader') this.#wakeReader = undefined
    else this.#wakeWriter = undefined
    w?.()
  }

  #wait(who: 'reader' | 'writer', signal?: AbortSignal): Promise<void> {
    const p = new Promise<void>((resolve) => {
      if (who === 'reader') this.#wakeReader = resolve
      else this.#wakeWriter = resolve
    })
    return signal ? abortable(p, signal) : p
  }
}

// Lexer: words keep which parts may expand `$`.

interface Seg {
  text: string
  /** `$` expansions apply (unquoted or in double quotes). */
  expand: boolean
}
interface Word {
  segs: Seg[]
  /** Entirely unquoted text, for reserved words (`{`, `}`, `!`) and assignments; else undefined. */
  bare: string | undefined
}
type Op = ';' | '\n' | '&&' | '||' | '|' | '&' | '(' | ')'
type Tok = { t: 'word'; w: Word } | { t: 'op'; op: Op } | { t: 'redir'; fd: number | undefined; op: RedirOp; target: Word }
type RedirOp = '>' | '>>' | '<' | '>&' | '<&' | '>|'

const OP_CHARS = new Set([';', '&', '|', '<', '>', '(', ')', '\n'])

function lex(src: string): Tok[] {
  const toks: Tok[] = []
  let i = 0
  const readWord = (): Word => {
    const segs: Seg[] = []
    let bare = ''
    let quoted = false
    const add = (text: string, expand: boolean) => {
      const last = segs.at(-1)
      if (last && last.expand === expand) last.text += text
      else segs.push({ text, expand })
    }
    while (i < src.length) {
      const c = src[i]!
      if (c === ' ' || c === '\t' || OP_CHARS.has(c)) break
      if (c === "'") {
        const end = src.indexOf("'", i + 1)
        if (end === -1) throw new SyntaxError_('Unterminated quoted string')
        add(src.slice(i + 1, end), false)
        quoted = true
        i = end + 1
      } else if (c === '"') {
        i++
        let text = ''
        for (;;) {
          if (i >= src.length) throw new SyntaxError_('Unterminated quoted string')
          const d = src[i]!
          if (d === '"') break
          if (d === '`' || (d === '$' && src[i + 1] === '(')) throw new SyntaxError_('command substitution is not supported by a simulated node')
          if (d === '\\' && i + 1 < src.length && '"\\$`\n'.includes(src[i + 1]!)) {
            const e = src[i + 1]!
            if (e !== '\n') {
              // An escaped `$` must not expand: its own literal segment.
              if (text) add(text, true)
              text = ''
              add(e, false)
            }
            i += 2
            continue
          }
          text += d
          i++
        }
        if (text) add(text, true)
        else if (segs.length === 0) add('', false)
        quoted = true
        i++
      } else if (c === '\\') {
        if (src[i + 1] === '\n') {
          i += 2
          continue
        }
        if (i + 1 < src.length) add(src[i + 1]!, false)
        quoted = true
        i += 2
      } else {
        if (c === '`' || (c === '$' && src[i + 1] === '(')) throw new SyntaxError_('command substitution is not supported by a simulated node')
        add(c, true)
        bare += c
        i++
      }
    }
    return { segs, bare: quoted ? undefined : bare }
  }
  while (i < src.length) {
    const c = src[i]!
    if (c === ' ' || c === '\t') {
      i++
      continue
    }
    if (c === '#') {
      while (i < src.length && src[i] !== '\n') i++
      continue
    }
    if (c === '\\' && src[i + 1] === '\n') {
      i += 2
      continue
    }
    const two = src.slice(i, i + 2)
    if (two === '&&' || two === '||') {
      toks.push({ t: 'op', op: two })
      i += 2
      continue
    }
    if (c === '<' || c === '>') {
      toks.push(readRedir(undefined))
      continue
    }
    if (OP_CHARS.has(c)) {
      toks.push({ t: 'op', op: c as Op })
      i++
      continue
    }
    // A word of digits right before `<` or `>` is the redirected descriptor.
    const m = /^\d+(?=[<>])/.exec(src.slice(i, i + 12))
    if (m) {
      i += m[0].length
      toks.push(readRedir(Number(m[0])))
      continue
    }
    toks.push({ t: 'word', w: readWord() })
  }
  return toks

  function readRedir(fd: number | undefined): Tok {
    const three = src.slice(i, i + 2)
    let op: RedirOp
    if (three === '>>' || three === '>&' || three === '<&' || three === '>|') op = three
    else op = src[i] as '<' | '>'
    i += op.length
    while (src[i] === ' ' || src[i] === '\t') i++
    if (i >= src.length || OP_CHARS.has(src[i]!)) throw new SyntaxError_('redirection without a target')
    return { t: 'redir', fd, op, target: readWord() }
  }
}

// Parser.

interface Redir {
  fd: number | undefined
  op: RedirOp
  target: Word
}
type Command = { k: 'simple'; words: Word[]; redirs: Redir[] } | { k: 'group'; body: AndOr[]; redirs: Redir[] }
interface Pipeline {
  bang: boolean
  cmds: Command[]
}
interface AndOr {
  first: Pipeline
  rest: { op: '&&' | '||'; p: Pipeline }[]
}

function parse(toks: Tok[]): AndOr[] {
  let i = 0
  const peek = () => toks[i]
  const isOp = (op: Op) => {
    const t = peek()
    return t?.t === 'op' && t.op === op
  }
  const isReserved = (w: string) => {
    const t = peek()
    return t?.t === 'word' && t.w.bare === w
  }
  const skipNewlines = () => {
    while (isOp('\n')) i++
  }
  const list = (inGroup: boolean): AndOr[] => {
    const out: AndOr[] = []
    for (;;) {
      while (isOp('\n') || isOp(';')) i++
      const t = peek()
      if (!t || (inGroup && isReserved('}'))) return out
      out.push(andOr())
      const n = peek()
      if (!n) return out
      if (n.t === 'op' && (n.op === ';' || n.op === '\n')) continue
      if (inGroup && isReserved('}')) return out
      if (n.t === 'op' && n.op === '&') throw new SyntaxError_('background jobs (&) are not supported by a simulated node')
      throw new SyntaxError_(`"${n.t === 'op' ? n.op : 'word'}" unexpected`)
    }
  }
  const andOr = (): AndOr => {
    const first = pipeline()
    const rest: AndOr['rest'] = []
    for (;;) {
      const t = peek()
      if (t?.t !== 'op' || (t.op !== '&&' && t.op !== '||')) return { first, rest }
      i++
      skipNewlines()
      rest.push({ op: t.op, p: pipeline() })
    }
  }
  const pipeline = (): Pipeline => {
    let bang = false
    if (isReserved('!')) {
      bang = true
      i++
    }
    const cmds = [command()]
    while (isOp('|')) {
      i++
      skipNewlines()
      cmds.push(command())
    }
    return { bang, cmds }
  }
  const redirs = (): Redir[] => {
    const out: Redir[] = []
    for (let t = peek(); t?.t === 'redir'; t = peek()) {
      out.push({ fd: t.fd, op: t.op, target: t.target })
      i++
    }
    return out
  }
  const command = (): Command => {
    if (isReserved('{')) {
      i++
      const body = list(true)
      if (!isReserved('}')) throw new SyntaxError_('missing }')
      i++
      return { k: 'group', body, redirs: redirs() }
    }
    if (isOp('(')) throw new SyntaxError_('subshells are not supported by a simulated node')
    const words: Word[] = []
    const rs: Redir[] = []
    for (let t = peek(); t && t.t !== 'op'; t = peek()) {
      if (t.t === 'word') words.push(t.w)
      else rs.push({ fd: t.fd, op: t.op, target: t.target })
      i++
    }
    if (words.length === 0 && rs.length === 0) throw new SyntaxError_(`"${peek()?.t === 'op' ? (peek() as { op: string }).op : 'end of file'}" unexpected`)
    return { k: 'simple', words, redirs: rs }
  }
  const out = list(false)
  if (i < toks.length) throw new SyntaxError_('"}" unexpected')
  return out
}

// Interpreter.

interface ShellContext {
  node: SshFleetNode
  pid: number
  signal: AbortSignal
  env: Map<string, string>
  cwd: string
  /** Signals a pid (negative: a group) on this node; false if there is none. */
  kill(target: number, sig: string): boolean
}

type Program = (args: string[], io: Io, sh: Shell) => Promise<number>

const SIGNALS: Record<string, number> = { HUP: 1, INT: 2, QUIT: 3, ABRT: 6, KILL: 9, USR1: 10, SEGV: 11, USR2: 12, PIPE: 13, ALRM: 14, TERM: 15 }
const SIGNAL_BY_NUMBER = new Map(Object.entries(SIGNALS).map(([k, v]) => [v, k]))
const BIN_DIRS = new Set(['/bin', '/usr/bin', '/usr/local/bin', '/sbin', '/usr/sbin'])
/** The directories `cd` finds on a simulated node. */
const DIRS = new Set(['/', '/root', '/home', '/tmp', '/var', '/var/tmp', '/var/log', '/etc', '/dev', '/usr', '/usr/bin', '/bin', '/opt', '/srv'])
const ZEROS = Buffer.alloc(64 * 1024)

const enc = (s: string) => Buffer.from(s)

class Shell {
  status = 0
  args: string[] = []
  constructor(readonly ctx: ShellContext) {}

  /** Runs a command line as `sh -c LINE` would. */
  async main(line: string, io: Io): Promise<number> {
    try {
      return await this.script(line, io)
    } catch (err) {
      if (err instanceof ExitNow) return err.status
      throw err
    }
  }

  async script(src: string, io: Io): Promise<number> {
    let ast: AndOr[]
    try {
      ast = parse(lex(src))
    } catch (err) {
      if (!(err instanceof SyntaxError_)) throw err
      await io.err.write(enc(`sh: 1: Syntax error: ${err.message}\n`))
      throw new ExitNow(2)
    }
    return this.list(ast, io)
  }

  checkpoint(): void {
    if (this.ctx.signal.aborted) throw this.ctx.signal.reason
  }

  async list(l: AndOr[], io: Io): Promise<number> {
    for (const ao of l) {
      this.status = await this.pipeline(ao.first, io)
      for (const { op, p } of ao.rest) {
        if ((op === '&&') === (this.status === 0)) this.status = await this.pipeline(p, io)
      }
    }
    return this.status
  }

  async pipeline(p: Pipeline, io: Io): Promise<number> {
    let status: number
    if (p.cmds.length === 1) {
      status = await this.command(p.cmds[0]!, io)
    } else {
      // Each element runs as in a subshell: `exit` ends only its element; a broken pipe ends
      // the writer as SIGPIPE would (status 141).
      const pipes = p.cmds.slice(1).map(() => new Pipe())
      const statuses = await Promise.all(
        p.cmds.map(async (c, k) => {
          const inPipe = k > 0 ? pipes[k - 1]! : undefined
          const outPipe = k < pipes.length ? pipes[k]! : undefined
          const sub = new Shell(this.ctx)
          sub.args = this.args
          const subIo: Io = { stdin: inPipe ?? io.stdin, out: outPipe ? { write: (b) => outPipe.write(b, this.ctx.signal) } : io.out, err: io.err }
          try {
            return await sub.command(c, subIo)
          } catch (err) {
            if (err instanceof ExitNow) return err.status
            if (err instanceof BrokenPipe) return 141
            throw err
          } finally {
            outPipe?.closeWrite()
            inPipe?.closeRead()
          }
        }),
      )
      status = statuses.at(-1)!
    }
    return p.bang ? (status === 0 ? 1 : 0) : status
  }

  async command(c: Command, io: Io): Promise<number> {
    this.checkpoint()
    const rio = await this.redirect(c.redirs, io)
    if (rio === null) return 2
    if (c.k === 'group') return this.list(c.body, rio)
    const words = c.words.map((w) => ({ w, text: this.expand(w) }))
    // Leading NAME=VALUE words are assignments (for the command only, when one follows; the
    // simulated programs do not read the environment, so they simply set the variable).
    let k = 0
    for (; k < words.length; k++) {
      const bare = words[k]!.w.bare
      const m = bare === undefined ? null : /^([A-Za-z_][A-Za-z0-9_]*)=/.exec(bare)
      if (!m) break
      this.ctx.env.set(m[1]!, words[k]!.text.slice(m[0].length))
    }
    const argv = words.slice(k).map((x) => x.text)
    if (argv.length === 0) return 0
    return this.run(argv, rio)
  }

  /** Runs argv[0] (builtin or program) with the rest as arguments. */
  async run(argv: string[], io: Io): Promise<number> {
    const [name, ...args] = argv as [string, ...string[]]
    const builtin = BUILTINS[name]
    if (builtin) return builtin(args, io, this)
    const prog = this.lookup(name)
    if (!prog) {
      await io.err.write(enc(`sh: 1: ${name}: not found\n`))
      return 127
    }
    return prog(args, io, this)
  }

  lookup(name: string): Program | undefined {
    if (name.includes('/')) {
      const base = posix.basename(name)
      return BIN_DIRS.has(posix.dirname(name)) ? PROGRAMS[base] : undefined
    }
    return PROGRAMS[name]
  }

  expand(w: Word): string {
    let out = ''
    for (const s of w.segs) {
      if (!s.expand || !s.text.includes('$')) {
        out += s.text
        continue
      }
      out += s.text.replace(/\$(\$|\?|#|[0-9]|[A-Za-z_][A-Za-z0-9_]*|\{[A-Za-z_][A-Za-z0-9_]*\})/g, (_m, v: string) => {
        if (v === '$') return String(this.ctx.pid)
        if (v === '?') return String(this.status)
        if (v === '#') return String(this.args.length)
        if (/^[0-9]$/.test(v)) return v === '0' ? 'sh' : (this.args[Number(v) - 1] ?? '')
        return this.ctx.env.get(v.replace(/^\{|\}$/g, '')) ?? ''
      })
    }
    return out
  }

  /** Applies redirections; null (after a message) when one cannot be made. */
  async redirect(rs: Redir[], io: Io): Promise<Io | null> {
    let out = io
    for (const r of rs) {
      const target = this.expand(r.target)
      const fd = r.fd ?? (r.op === '<' || r.op === '<&' ? 0 : 1)
      if (r.op === '>&' || r.op === '<&') {
        const from = target === '1' ? out.out : target === '2' ? out.err : undefined
        if (fd === 0 && target === '0') continue
        if (!from || fd > 2) {
          await io.err.write(enc(`sh: 1: ${target}: Bad file descriptor\n`))
          return null
        }
        out = fd === 1 ? { ...out, out: from } : fd === 2 ? { ...out, err: from } : out
        continue
      }
      if (r.op === '<') {
        if (target === '/dev/null') out = { ...out, stdin: EMPTY_READER }
        else if (target === '/dev/zero') out = { ...out, stdin: zeroReader() }
        else {
          await io.err.write(enc(`sh: 1: cannot open ${target}: No such file\n`))
          return null
        }
        continue
      }
      if (target !== '/dev/null') {
        await io.err.write(enc(`sh: 1: cannot create ${target}: Read-only file system\n`))
        return null
      }
      if (fd === 1) out = { ...out, out: NULL_WRITER }
      else if (fd === 2) out = { ...out, err: NULL_WRITER }
    }
    return out
  }

  /** Writes everything from `from` to `to`, up to `limit` bytes; the count written. */
  async copy(from: Reader, to: Writer, limit = Infinity): Promise<number> {
    let n = 0
    while (n < limit) {
      const b = await from.read(this.ctx.signal)
      if (b === null) break
      const piece = b.length > limit - n ? b.subarray(0, limit - n) : b
      await to.write(piece)
      n += piece.length
    }
    return n
  }
}

function zeroReader(): Reader {
  return { read: () => Promise.resolve(ZEROS) }
}

/** POSIX printf: %s %b %c %d %i %u %o %x %X %%, flags `-0`, width, precision; escapes in the format. */
function printf(format: string, args: string[]): { text: string; bad: boolean } {
  let out = ''
  let bad = false
  let a = 0
  const escapes = (s: string, inB: boolean) =>
    s.replace(/\\(0[0-7]{0,3}|[0-7]{1,3}|.)/gs, (m, e: string) => {
      if (/^[0-7]/.test(e)) {
        if (!inB && e.startsWith('0') && e.length > 1) return String.fromCharCode(parseInt(e.slice(1, 4) || '0', 8))
        return String.fromCharCode(parseInt(e.slice(0, 3), 8))
      }
      const map: Record<string, string> = { n: '\n', t: '\t', r: '\r', a: '\x07', b: '\b', f: '\f', v: '\v', '\\': '\\', '"': '"', "'": "'" }
      return map[e] ?? m
    })
  do {
    const start = a
    out += format.replace(/%([-+ #0]*)(\d*)(?:\.(\d*))?([sbcdiuoxX%])|(\\(?:0[0-7]{0,3}|[0-7]{1,3}|.))/gs, (m, flags: string, width: string, prec: string | undefined, conv: string, esc: string | undefined) => {
      if (esc) return escapes(esc, false)
      if (conv === '%') return '%'
      const arg = args[a++] ?? ''
      let s: string
      if (conv === 's') s = prec === undefined ? arg : arg.slice(0, Number(prec || 0))
      else if (conv === 'b') s = escapes(arg, true)
      else if (conv === 'c') s = arg.slice(0, 1)
      else {
        const n = arg === '' ? 0 : Number(arg)
        if (!Number.isFinite(n)) bad = true
        const v = Math.trunc(Number.isFinite(n) ? n : 0)
        s = conv === 'o' ? v.toString(8) : conv === 'x' ? v.toString(16) : conv === 'X' ? v.toString(16).toUpperCase() : String(v)
      }
      const w = Number(width || 0)
      if (s.length < w) s = flags.includes('-') ? s.padEnd(w) : flags.includes('0') && conv !== 's' ? s.padStart(w, '0') : s.padStart(w)
      void m
      return s
    })
    // The format is reused while arguments remain (and it consumes some).
    if (a === start) break
  } while (a < args.length)
  return { text: out, bad }
}

const BUILTINS: Record<string, Program> = {
  ':': async () => 0,
  true: async () => 0,
  false: async () => 1,
  async echo(args, io) {
    const noNewline = args[0] === '-n'
    await io.out.write(enc(args.slice(noNewline ? 1 : 0).join(' ') + (noNewline ? '' : '\n')))
    return 0
  },
  async printf(args, io) {
    if (args.length === 0) {
      await io.err.write(enc('printf: usage: printf format [arg ...]\n'))
      return 2
    }
    const { text, bad } = printf(args[0]!, args.slice(1))
    if (text) await io.out.write(enc(text))
    return bad ? 1 : 0
  },
  async exit(args, _io, sh) {
    throw new ExitNow(args[0] === undefined ? sh.status : Number(args[0]) & 255)
  },
  async export(args, io, sh) {
    for (const a of args) {
      const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?$/s.exec(a)
      if (!m) {
        await io.err.write(enc(`sh: 1: export: ${a}: bad variable name\n`))
        throw new ExitNow(2)
      }
      if (m[2] !== undefined) sh.ctx.env.set(m[1]!, m[2])
    }
    return 0
  },
  async unset(args, _io, sh) {
    for (const a of args) sh.ctx.env.delete(a)
    return 0
  },
  async env(_args, io, sh) {
    await io.out.write(enc([...sh.ctx.env].map(([k, v]) => `${k}=${v}\n`).join('')))
    return 0
  },
  async cd(args, io, sh) {
    const rest = args[0] === '--' ? args.slice(1) : args
    const to = rest[0] ?? sh.ctx.env.get('HOME') ?? '/'
    const dir = posix.resolve(sh.ctx.cwd, to)
    if (!DIRS.has(dir)) {
      await io.err.write(enc(`sh: 1: cd: can't cd to ${to}\n`))
      return 2
    }
    sh.ctx.cwd = dir
    sh.ctx.env.set('PWD', dir)
    return 0
  },
  async pwd(_args, io, sh) {
    await io.out.write(enc(`${sh.ctx.cwd}\n`))
    return 0
  },
  async command(args, io, sh) {
    if (args[0] === '-v' || args[0] === '-V') {
      let status = 0
      for (const name of args.slice(1)) {
        if (BUILTINS[name]) await io.out.write(enc(`${name}\n`))
        else if (sh.lookup(name)) await io.out.write(enc(`${name.includes('/') ? name : `/usr/bin/${name}`}\n`))
        else status = 127
      }
      return status
    }
    return args.length === 0 ? 0 : sh.run(args, io)
  },
  async exec(args, io, sh) {
    if (args.length === 0) return 0
    throw new ExitNow(await sh.run(args, io))
  },
  async kill(args, io, sh) {
    let sig = 'TERM'
    let k = 0
    if (args[0] === '-l') {
      await io.out.write(enc(`${Object.keys(SIGNALS).join(' ')}\n`))
      return 0
    }
    const signalName = (s: string): string | undefined => {
      const up = s.toUpperCase().replace(/^SIG/, '')
      if (up === '0') return '0'
      if (/^\d+$/.test(up)) return SIGNAL_BY_NUMBER.get(Number(up))
      return SIGNALS[up] === undefined ? undefined : up
    }
    if (args[0] === '-s' || args[0] === '-n') {
      const s = signalName(args[1] ?? '')
      if (!s) {
        await io.err.write(enc(`sh: 1: kill: invalid signal number or name: ${args[1] ?? ''}\n`))
        return 2
      }
      sig = s
      k = 2
    } else if (args[0] !== undefined && /^-[A-Za-z0-9]+$/.test(args[0]) && args.length > 1) {
      // `kill -TERM PID`, `kill -9 PID`; a lone `kill -123` is a process group.
      const s = signalName(args[0].slice(1))
      if (!s) {
        await io.err.write(enc(`sh: 1: kill: invalid signal number or name: ${args[0].slice(1)}\n`))
        return 2
      }
      sig = s
      k = 1
    }
    if (args[k] === '--') k++
    const targets = args.slice(k)
    if (targets.length === 0) {
      await io.err.write(enc('sh: 1: kill: usage: kill [-s sigspec | -signum | -sigspec] pid | job...\n'))
      return 2
    }
    let status = 0
    for (const t of targets) {
      if (!/^-?\d+$/.test(t)) {
        await io.err.write(enc(`sh: 1: kill: illegal number: ${t}\n`))
        status = 2
        continue
      }
      if (!sh.ctx.kill(Number(t), sig)) {
        await io.err.write(enc(`sh: 1: kill: No such process\n`))
        status = 1
      }
    }
    // Killing itself: the signal lands before the next command.
    sh.checkpoint()
    return status
  },
}

async function shellProgram(args: string[], io: Io, sh: Shell): Promise<number> {
  const sub = new Shell(sh.ctx)
  if (args[0] === '-c') {
    if (args[1] === undefined) {
      await io.err.write(enc('sh: 0: -c requires an argument\n'))
      return 2
    }
    sub.args = args.slice(3)
    return sub.main(args[1], io)
  }
  if (args.length > 0) {
    await io.err.write(enc(`sh: 0: cannot open ${args[0]}: No such file\n`))
    return 2
  }
  // A script on stdin.
  const chunks: Buffer[] = []
  for (let b = await io.stdin.read(sh.ctx.signal); b !== null; b = await io.stdin.read(sh.ctx.signal)) chunks.push(b)
  return sub.main(Buffer.concat(chunks).toString(), io)
}

function count(s: string | undefined): number | undefined {
  if (s === undefined || !/^\d+$/.test(s)) return undefined
  return Number(s)
}

const PROGRAMS: Record<string, Program> = {
  true: async () => 0,
  false: async () => 1,
  sh: shellProgram,
  bash: shellProgram,
  dash: shellProgram,
  async hostname(args, io, sh) {
    if (args.length > 0 && !(args.length === 1 && args[0] === '-s')) {
      await io.err.write(enc('hostname: you must be root to change the host name\n'))
      return 1
    }
    await io.out.write(enc(`${sh.ctx.node.id}\n`))
    return 0
  },
  async uname(args, io, sh) {
    const fields: Record<string, string> = { s: 'Linux', n: sh.ctx.node.id, r: '6.1.0-sim', v: '#1 SMP simulated', m: 'x86_64', o: 'GNU/Linux' }
    let flags = args.map((a) => (/^-[a-z]+$/.test(a) ? a.slice(1) : '?')).join('')
    if (flags.includes('?') || [...flags].some((f) => f !== 'a' && !(f in fields))) {
      await io.err.write(enc(`uname: invalid option\n`))
      return 1
    }
    if (flags.includes('a')) flags = 'snrvmo'
    if (flags === '') flags = 's'
    await io.out.write(enc(`${'snrvmo'.split('').filter((f) => flags.includes(f)).map((f) => fields[f]).join(' ')}\n`))
    return 0
  },
  async sleep(args, io, sh) {
    const m = /^(\d+(?:\.\d*)?|\.\d+)([smhd]?)$/.exec(args[0] ?? '')
    if (!m || args.length !== 1) {
      await io.err.write(enc(`sleep: invalid time interval '${args[0] ?? ''}'\n`))
      return 1
    }
    const ms = Number(m[1]) * 1000 * ({ '': 1, s: 1, m: 60, h: 3600, d: 86_400 } as Record<string, number>)[m[2]!]!
    let timer: NodeJS.Timeout | undefined
    try {
      await abortable(new Promise<void>((resolve) => (timer = setTimeout(resolve, ms))), sh.ctx.signal)
    } finally {
      clearTimeout(timer)
    }
    return 0
  },
  async head(args, io, sh) {
    let bytes: number | undefined
    let lines: number | undefined = 10
    const files: string[] = []
    for (let k = 0; k < args.length; k++) {
      const a = args[k]!
      if (a === '-c') bytes = count(args[++k])
      else if (a === '-n') lines = count(args[++k])
      else if (/^-c\d+$/.test(a)) bytes = count(a.slice(2))
      else if (/^-n\d+$/.test(a) || /^-\d+$/.test(a)) lines = count(a.replace(/^-n?/, ''))
      else if (a.startsWith('-') && a !== '-') {
        await io.err.write(enc(`head: invalid option -- '${a}'\n`))
        return 1
      } else files.push(a)
      if ((a === '-c' && bytes === undefined) || (a === '-n' && lines === undefined)) {
        await io.err.write(enc(`head: invalid number: '${args[k] ?? ''}'\n`))
        return 1
      }
    }
    const file = files[0] ?? '-'
    let from: Reader
    if (file === '-') from = io.stdin
    else if (file === '/dev/zero') from = zeroReader()
    else if (file === '/dev/null') from = EMPTY_READER
    else {
      await io.err.write(enc(`head: cannot open '${file}' for reading: No such file or directory\n`))
      return 1
    }
    if (bytes !== undefined) {
      await sh.copy(from, io.out, bytes)
      return 0
    }
    let left = lines ?? 10
    while (left > 0) {
      const b = await from.read(sh.ctx.signal)
      if (b === null) break
      let end = 0
      while (left > 0) {
        const nl = b.indexOf(0x0a, end)
        if (nl === -1) {
          end = b.length
          break
        }
        end = nl + 1
        left--
      }
      await io.out.write(b.subarray(0, end))
    }
    return 0
  },
  async cat(args, io, sh) {
    let status = 0
    for (const file of args.length === 0 ? ['-'] : args) {
      if (file === '-') await sh.copy(io.stdin, io.out)
      else if (file === '/dev/zero') await sh.copy(zeroReader(), io.out)
      else if (file !== '/dev/null') {
        await io.err.write(enc(`cat: ${file}: No such file or directory\n`))
        status = 1
      }
    }
    return status
  },
  async yes(args, io, sh) {
    const line = `${args.length ? args.join(' ') : 'y'}\n`
    const chunk = enc(line.repeat(Math.max(1, Math.floor(8192 / line.length))))
    for (;;) {
      sh.checkpoint()
      await io.out.write(chunk)
    }
  },
}
