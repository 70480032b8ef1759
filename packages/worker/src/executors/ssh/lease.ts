import type { Client, ClientChannel } from 'ssh2'

/** How a remote command ended: an exit code, or the signal that killed it. */
export interface RemoteExit {
  code: number | null
  signal: string | null
}

/** One command's slot on a pooled connection. */
export interface SshLease {
  /** `user@host:port`. */
  readonly key: string
  /** False once the connection died. */
  readonly alive: boolean
  /**
   * Opens an exec channel on the leased connection. `onExit` is attached as
   * the channel opens: ssh2 emits the exit status once, possibly in the same read as the exec
   * reply, before a caller awaiting this promise could listen.
   */
  exec(command: string, onExit?: (exit: RemoteExit) => void): Promise<ClientChannel>
  /**
   * Runs a short command (a kill) on the connection's control channel, beside the leased
   * slots: one control channel at a time per connection, and commands that queue meanwhile go
   * together in the next one, so cancelling every command on a connection at once stays within
   * the server's MaxSessions. Resolves when it ran or could not; never rejects.
   */
  control(command: string): Promise<void>
  /** Hands the slot back, once. `retire`: hand this connection out no more (it misbehaved). */
  release(opts?: { retire?: boolean }): void
}

/** The connection a lease is on, as the lease sees it. */
export interface LeasedConnection {
  readonly key: string
  readonly client: Client
  readonly control: ControlChannel
  /** True while the connection is up. */
  alive(): boolean
  /** Takes the slot back; called once per lease. */
  release(retire: boolean): void
}

/** A slot on `conn`: channels for commands, the shared control channel, one release. */
export function createLease(conn: LeasedConnection): SshLease {
  let released = false
  const { client } = conn
  return {
    key: conn.key,
    get alive() {
      return conn.alive()
    },
    exec: (command, onExit) =>
      openExec(client, command, (channel) => {
        if (onExit) channel.once('exit', (code: number | null, signal?: string) => onExit({ code: code ?? null, signal: signal ?? null }))
      }),
    control: (command) => conn.control.run(command),
    release: (o) => {
      if (released) return
      released = true
      conn.release(o?.retire === true)
    },
  }
}

/**
 * One connection's control channel: at most one open at a time, and commands that arrive while
 * it is busy run together in the next one (joined by newlines). Cancelling every command on a
 * connection at once then needs one channel beside the leased ones, not one per command, which
 * the server's MaxSessions would refuse.
 */
export class ControlChannel {
  #queue: { command: string; done: () => void }[] = []
  #busy = false

  /**
   * `run` runs a command on a fresh channel and resolves when it ended (see `runControl`);
   * `usable` is false once the connection died; `onError` hears of anything `run` threw.
   */
  constructor(
    private readonly deps: { run: (command: string) => Promise<void>; usable: () => boolean; onError: (err: unknown) => void },
  ) {}

  /** Resolves when the command ran or could not; never rejects. */
  run(command: string): Promise<void> {
    return new Promise<void>((done) => {
      if (!this.deps.usable()) return done()
      this.#queue.push({ command, done })
      if (!this.#busy) this.#drain().catch(this.deps.onError)
    })
  }

  async #drain(): Promise<void> {
    // Set before the first await, so commands queued meanwhile wait for this drain.
    this.#busy = true
    try {
      while (this.#queue.length > 0 && this.deps.usable()) {
        const batch = this.#queue.splice(0)
        try {
          await this.deps.run(batch.map((b) => b.command).join('\n'))
        } finally {
          for (const b of batch) b.done()
        }
      }
    } finally {
      this.#busy = false
      // The connection died with commands waiting: there is nothing to run them on.
      for (const b of this.#queue.splice(0)) b.done()
    }
  }
}

/** Longest wait for a control command's channel. */
const CONTROL_TIMEOUT_MS = 5000

/** Runs a command on a fresh channel and waits for it to close (bounded); never rejects. */
export async function runControl(client: Client, command: string): Promise<void> {
  let ch: ClientChannel
  try {
    ch = await openExec(client, command)
  } catch {
    return
  }
  await new Promise<void>((resolve) => {
    const t = setTimeout(() => {
      ch.close()
      resolve()
    }, CONTROL_TIMEOUT_MS)
    ch.on('error', () => undefined)
    ch.resume()
    ch.stderr.resume()
    ch.once('close', () => {
      clearTimeout(t)
      resolve()
    })
    ch.end()
  })
}

/** Opens an exec channel; `onOpen` sees it before the caller's `await` does. */
function openExec(client: Client, command: string, onOpen?: (channel: ClientChannel) => void): Promise<ClientChannel> {
  return new Promise<ClientChannel>((resolve, reject) => {
    try {
      client.exec(command, (err, channel) => {
        if (err) return reject(err)
        onOpen?.(channel)
        resolve(channel)
      })
    } catch (err) {
      // ssh2 throws "Not connected" at once when the socket is gone.
      reject(err)
    }
  })
}
