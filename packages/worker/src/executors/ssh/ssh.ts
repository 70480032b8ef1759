import { errorMessage, type ExecOperation, isApiaryError } from '@apiary/shared'
import type { ClientChannel } from 'ssh2'
import { OutputCap } from '../../output-cap.ts'
import { type ExecHooks, type ExecResult, stoppedResult } from '../executor.ts'
import { type Preamble, PreambleReader, type RemoteCommand, remoteCommand } from './command.ts'
import type { RemoteExit, SshLease, SshPool, SshTarget } from './pool.ts'

export interface SshExecOptions {
  pool: SshPool
  target: SshTarget
  op: ExecOperation
  capBytes: number
  /** Aborted with a `StopRequest` (or `'timeout'`; any other reason is a cancel with that cause). */
  signal: AbortSignal
  /** Time between SIGTERM and SIGKILL to the remote process group. */
  killGraceMs?: number
  /** How long to wait for the channel after the program exited (a background child may hold it). */
  drainMs?: number
}

/** Channel-open failures: the command was certainly not started, so another connection may try. */
const NOT_STARTED = /^\(SSH\) Channel open failure|^No response from server|^Not connected|^No free channels/
/** Attempts to get a channel when pooled connections turn out dead. */
const CHANNEL_ATTEMPTS = 3

/**
 * Runs a command on a node over a pooled SSH connection; the contract of `runLocal`. The
 * command runs in the session's own process group on the server; a timeout or cancel signals
 * that group (SIGTERM, then SIGKILL) from a second channel, so nothing it started survives.
 *
 * Failures before the command starts are `error` with a cause: `unreachable: …`, `auth: …`,
 * `host key mismatch`, `host key unknown`, `breaker open`. A connection lost while the
 * command ran is `lost`: it may or may not have finished, and it is not run again.
 *
 * @example await runSsh({ pool, target, op: { type: 'exec', argv: ['uptime'], shell: false }, capBytes: 1 << 20, signal }, hooks)
 */
export async function runSsh(opts: SshExecOptions, hooks: ExecHooks): Promise<ExecResult> {
  const { signal } = opts
  if (signal.aborted) return stoppedResult(signal, NO_OUTPUT, null, null)
  let cmd: RemoteCommand
  try {
    cmd = remoteCommand(opts.op)
  } catch (err) {
    return failure('error', `invalid operation: ${errorMessage(err)}`)
  }
  for (let attempt = 1; ; attempt++) {
    let lease: SshLease
    try {
      lease = await opts.pool.acquire(opts.target, signal)
    } catch (err) {
      if (signal.aborted) return stoppedResult(signal, NO_OUTPUT, null, null)
      return failure('error', isApiaryError(err) ? err.message : `worker error: ${errorMessage(err)}`)
    }
    let channel: ClientChannel
    const ended: { exit?: RemoteExit; onExit?: (e: RemoteExit) => void } = {}
    try {
      channel = await lease.exec(cmd.line, (e) => {
        ended.exit = e
        ended.onExit?.(e)
      })
    } catch (err) {
      const message = errorMessage(err)
      const alive = lease.alive
      // Whatever went wrong, this connection has shown it cannot be trusted with the next task.
      lease.release({ retire: true })
      if (NOT_STARTED.test(message)) {
        if (signal.aborted) return stoppedResult(signal, NO_OUTPUT, null, null)
        if (attempt < CHANNEL_ATTEMPTS) continue
        return failure('error', `unreachable: cannot open a session: ${message}`)
      }
      // The exec request got no yes: refused, or the connection went while it was on its way.
      return alive ? failure('error', `cannot start the command: ${message}`) : failure('lost', 'connection lost while starting the command; outcome unknown')
    }
    hooks.onStart()
    return runChannel(opts, hooks, cmd, lease, channel, ended)
  }
}

function runChannel(
  opts: SshExecOptions,
  hooks: ExecHooks,
  cmd: RemoteCommand,
  lease: SshLease,
  channel: ClientChannel,
  ended: { exit?: RemoteExit; onExit?: (e: RemoteExit) => void },
): Promise<ExecResult> {
  const { signal, op } = opts
  const cap = new OutputCap({ capBytes: opts.capBytes, emit: hooks.onOutput })
  const preamble = new PreambleReader(cmd.marker)
  return new Promise<ExecResult>((resolve) => {
    let said: Preamble | undefined
    let stopping = false
    let killed = false
    let killTimer: NodeJS.Timeout | undefined
    let drainTimer: NodeJS.Timeout | undefined
    let giveUpTimer: NodeJS.Timeout | undefined
    let finishing = false
    /** Kill commands in flight, in order; each resolves whatever happens. */
    let kills: Promise<void> = Promise.resolve()

    const pgid = () => (said?.kind === 'pgid' ? said.pgid : null)
    /** Signals the command's process group; before the wrapper named it, the preamble handler does. */
    const kill = (sig: 'TERM' | 'KILL') => {
      const group = pgid()
      if (group === null) return
      if (sig === 'KILL') killed = true
      // "No such process" once the group is gone is the good outcome, not an error.
      kills = kills.then(() => lease.control(`kill -s ${sig} -- -${group} 2>/dev/null || :`))
    }
    const onAbort = () => {
      stopping = true
      kill('TERM')
      killTimer = setTimeout(() => {
        kill('KILL')
        // A wrapper that never named its group (not a POSIX login shell): closing the channel
        // is all that is left; sshd then closes the command's pipes.
        if (pgid() === null) channel.close()
        // A connection that no longer answers would hold the result until keepalives give up.
        giveUpTimer = setTimeout(() => {
          channel.close()
          run(finish(true))
        }, opts.drainMs ?? 2000)
      }, opts.killGraceMs ?? 2000)
    }

    channel.on('data', (b: Buffer) => {
      if (finishing) return
      const r = preamble.push(b)
      if (r.preamble) {
        said = r.preamble
        // A stop that came before the group was known goes out now.
        if (stopping && said.kind === 'pgid') kill('TERM')
      }
      if (r.output.length > 0) cap.push('stdout', r.output)
    })
    channel.stderr.on('data', (b: Buffer) => {
      if (!finishing) cap.push('stderr', b)
    })
    channel.on('error', () => undefined)
    channel.stderr.on('error', () => undefined)
    // sshd keeps the channel until every holder of the output pipes is gone.
    const onExit = () => (drainTimer = setTimeout(() => channel.close(), opts.drainMs ?? 2000))
    if (ended.exit) onExit()
    else ended.onExit = onExit
    // Let output the channel pushed before it closed reach the cap first.
    channel.once('close', () => setImmediate(() => run(finish(false))))
    channel.end(op.stdin ?? '')

    if (signal.aborted) onAbort()
    else signal.addEventListener('abort', onAbort, { once: true })

    function run(p: Promise<void>): void {
      p.catch((err: unknown) => resolve(failure('error', `worker error: ${errorMessage(err)}`)))
    }

    /** Settles once; `gaveUp`: the channel never closed, so its connection is not trusted again. */
    async function finish(gaveUp: boolean): Promise<void> {
      if (finishing) return
      finishing = true
      signal.removeEventListener('abort', onAbort)
      clearTimeout(killTimer)
      clearTimeout(drainTimer)
      clearTimeout(giveUpTimer)
      const alive = lease.alive
      // Whatever the stopped command left in its group goes with it.
      if (signal.aborted && !killed && pgid() !== null && alive) kill('KILL')
      await kills
      const tail = preamble.done ? Buffer.alloc(0) : preamble.flush()
      if (tail.length > 0) cap.push('stdout', tail)
      const total = cap.finish()
      const exit = ended.exit
      const out = { bytes: total.bytes, truncated: total.truncated, digest: total.digest }
      lease.release({ retire: gaveUp })
      if (signal.aborted) return resolve(stoppedResult(signal, out, exit?.code ?? null, exit?.signal ?? null))
      if (said?.kind === 'notfound') return resolve({ ...failure('error', `program not found: ${op.argv?.[0] ?? ''}`), ...out })
      if (said?.kind === 'nocwd') return resolve({ ...failure('error', `cannot change to directory ${op.cwd ?? ''}`), ...out })
      if (!exit) {
        return resolve(
          alive
            ? { ...failure('error', 'the session ended without an exit status'), ...out }
            : { ...failure('lost', 'connection lost while the command ran; outcome unknown'), ...out },
        )
      }
      resolve({
        state: exit.code === 0 ? 'ok' : 'failed',
        exitCode: exit.code,
        signal: exit.signal,
        cause: exit.signal ? `killed by ${exit.signal}` : null,
        ...out,
      })
    }
  })
}

const NO_OUTPUT = { bytes: 0, truncated: false, digest: null }

function failure(state: 'error' | 'lost', cause: string): ExecResult {
  return { state, exitCode: null, signal: null, cause, ...NO_OUTPUT }
}
