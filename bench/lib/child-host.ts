import { type ChildProcess, fork } from 'node:child_process'
import { errorMessage } from '@apiary/shared'
import { ROOT } from './roles.ts'
import { nextMatch } from './next-match.ts'

/**
 * Child hosts: processes a benchmark forks to hold a slice of its fleet, so that the benchmark
 * process stays light. Parent and child talk over IPC: one `start` → `ready` (or `failed`),
 * whatever else the benchmark's protocol adds, then `stop` → `stopped` and the child exits.
 */

export interface Message {
  type: string
}

/** What every host reports besides its benchmark's own messages. */
export type HostReport = { type: 'ready'; ms: number } | { type: 'failed'; error: string } | { type: 'stopped'; maxRssKb: number }

export interface StopHost {
  type: 'stop'
}

function isMessage(m: unknown): m is Message {
  return typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string'
}

export interface ChildHost<To extends Message, From extends Message> {
  pid: number
  /** Resolves once the host is ready; rejects if it fails, exits or the signal aborts first. */
  ready: Promise<{ ms: number }>
  /** The last 16 kB it printed. */
  tail(): string
  send(m: To | StopHost): void
  /** Calls `fn` with every message from now on. */
  onMessage(fn: (m: From | HostReport) => void): void
  /** The next message `pick` accepts; rejects on a `failed` one, the host's exit, after `timeoutMs` or when the signal aborts. */
  next<T>(pick: (m: From | HostReport) => T | undefined, what: string, timeoutMs?: number): Promise<T>
  /** Asks the host to stop (SIGTERM once the channel is gone); kills it if it has not exited after `graceMs`. */
  stop(graceMs: number): Promise<void>
}

/**
 * Forks `script` as a child Node process (through tsx, as the packages' bin scripts run from
 * src/) and sends it `start`. `name` names it in errors; `nodeFlags` go to node itself (e.g.
 * `--cpu-prof`).
 *
 * @example const h = forkHost<ToFleet, FromFleet>('fleet host 0', SCRIPT, { type: 'start', … }, {}, signal, 120_000); await h.ready
 */
export function forkHost<To extends Message, From extends Message>(
  name: string,
  script: string,
  start: To,
  env: NodeJS.ProcessEnv,
  signal: AbortSignal,
  readyTimeoutMs?: number,
  nodeFlags: string[] = [],
): ChildHost<To, From> {
  const child: ChildProcess = fork(script, [], {
    cwd: ROOT,
    execArgv: [...nodeFlags, '--import', 'tsx'],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    serialization: 'json',
  })
  if (child.pid === undefined) throw new Error(`${name} did not start`)
  let tail = ''
  const onOut = (c: Buffer) => {
    tail = (tail + c.toString()).slice(-16 * 1024)
  }
  child.stdout!.on('data', onOut)
  child.stderr!.on('data', onOut)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const listeners = new Set<(m: From | HostReport) => void>()
  child.on('message', (m: unknown) => {
    if (isMessage(m)) for (const fn of [...listeners]) fn(m as From | HostReport)
  })

  function next<T>(pick: (m: From | HostReport) => T | undefined, what: string, timeoutMs?: number): Promise<T> {
    return nextMatch(listeners, (m) => (m.type === 'failed' ? new Error(`${name}: ${(m as { error: string }).error}\n${tail}`) : pick(m)), {
      signal,
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
      timeout: () => new Error(`${name}: no ${what} within ${timeoutMs} ms\n${tail}`),
      ended: exited,
      gone: () => new Error(`${name} exited (${child.exitCode ?? child.signalCode}) before ${what}\n${tail}`),
    })
  }

  const send = (m: To | StopHost) => {
    if (child.connected) child.send(m)
  }
  const ready = next((m) => (m.type === 'ready' ? { ms: (m as { ms: number }).ms } : undefined), 'ready', readyTimeoutMs)
  // Rejections are read by whoever awaits `ready`; this keeps an unawaited one from crashing us.
  ready.catch(() => undefined)
  send(start)

  return {
    pid: child.pid,
    ready,
    tail: () => tail,
    send,
    onMessage: (fn) => void listeners.add(fn),
    next,
    async stop(graceMs) {
      if (child.exitCode !== null || child.signalCode !== null) return
      if (child.connected) send({ type: 'stop' })
      else child.kill('SIGTERM')
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs)
      await exited
      clearTimeout(t)
    },
  }
}

/**
 * The child's side of `forkHost`: runs `start` on the first `start` message (reporting
 * `failed` if it throws) and hands other messages to `handle`. On `stop`, or when the parent
 * goes away, it runs `stop` once (the signal given to `start` aborts first), reports `stopped`
 * with its peak RSS and what `stopped()` adds, and exits. Returns the sender.
 */
export function serveParent<To extends Message, From extends Message>(body: {
  start(m: Extract<To, { type: 'start' }>, signal: AbortSignal): Promise<void>
  stop(): Promise<void>
  handle?(m: Exclude<To, { type: 'start' }>): void
  stopped?(): object
}): (m: From | HostReport) => void {
  const send = (m: From | HostReport) => {
    if (process.connected) process.send!(m)
  }
  const stopping = new AbortController()
  let started = false
  let stopped: Promise<void> | undefined
  const stop = () => {
    stopping.abort(new Error('stopping'))
    return (stopped ??= body.stop().catch((err: unknown) => void process.stderr.write(`stopping: ${errorMessage(err)}\n`)))
  }
  process.on('message', (m: unknown) => {
    if (!isMessage(m)) return
    if (m.type === 'start') {
      if (started) return
      started = true
      body.start(m as Extract<To, { type: 'start' }>, stopping.signal).catch((err: unknown) => send({ type: 'failed', error: errorMessage(err) }))
    } else if (m.type === 'stop') {
      void stop().then(() => {
        send({ type: 'stopped', maxRssKb: process.resourceUsage().maxRSS, ...body.stopped?.() })
        process.disconnect()
        process.exit(0)
      })
    } else body.handle?.(m as Exclude<To, { type: 'start' }>)
  })
  // The parent died or cut the channel: nobody is left to tell us to stop.
  process.on('disconnect', () => {
    const t = setTimeout(() => process.exit(1), 5000)
    t.unref()
    void stop().then(() => process.exit(0))
  })
  return send
}
