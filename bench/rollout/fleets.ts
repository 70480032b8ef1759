import { type ChildProcess, fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { FleetStats } from '../../test/fleet/agents.ts'
import { ROOT } from '../fanout/roles.ts'
import { type Behaviour, type FromFleet, isFromFleet, type StartFleet, type ToFleet } from './protocol.ts'

const HOST_SCRIPT = fileURLToPath(new URL('./fleet-host.ts', import.meta.url))

export interface FleetHost {
  index: number
  pid: number
  count: number
  ready: Promise<{ ms: number }>
  /** Sets what the nodes do with tasks from now on; resolves with how many of this host's nodes fail. */
  configure(b: Behaviour, timeoutMs: number): Promise<number>
  /** Asks the host to close its connections; kills it if it has not exited after `graceMs`. */
  stop(graceMs: number): Promise<{ maxRssKb: number | null; stats: FleetStats | null }>
  tail(): string
}

/**
 * Forks one fleet host (a child Node process running fleet-host.ts through tsx) and starts its
 * slice of the simulated fleet. `ready` rejects if the host fails, exits or the signal aborts.
 */
export function startFleetHost(index: number, cfg: Omit<StartFleet, 'type'>, env: NodeJS.ProcessEnv, signal: AbortSignal): FleetHost {
  const child: ChildProcess = fork(HOST_SCRIPT, [], {
    cwd: ROOT,
    // The same loader the packages' bin scripts register: TypeScript straight from src/.
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    serialization: 'json',
  })
  if (child.pid === undefined) throw new Error(`fleet host ${index} did not start`)
  let tail = ''
  const onOut = (c: Buffer) => {
    tail = (tail + c.toString()).slice(-16 * 1024)
  }
  child.stdout!.on('data', onOut)
  child.stderr!.on('data', onOut)

  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const waiters = new Set<(m: FromFleet) => void>()
  let configs = 0
  let stopped: { maxRssKb: number; stats: FleetStats } | null = null
  child.on('message', (m: unknown) => {
    if (!isFromFleet(m)) return
    if (m.type === 'stopped') stopped = { maxRssKb: m.maxRssKb, stats: m.stats }
    for (const w of [...waiters]) w(m)
  })

  /** The next message that `pick` accepts (or a `failed`), bounded by `timeoutMs` and the exit. */
  function next<T>(pick: (m: FromFleet) => T | undefined, timeoutMs: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const done = (fn: () => void) => {
        clearTimeout(timer)
        waiters.delete(onMsg)
        signal.removeEventListener('abort', onAbort)
        fn()
      }
      const onMsg = (m: FromFleet) => {
        if (m.type === 'failed') return done(() => reject(new Error(`fleet host ${index}: ${m.error}\n${tail}`)))
        const v = pick(m)
        if (v !== undefined) done(() => resolve(v))
      }
      const onAbort = () => done(() => reject(signal.reason as Error))
      const timer = setTimeout(() => done(() => reject(new Error(`fleet host ${index}: no ${what} within ${timeoutMs} ms\n${tail}`))), timeoutMs)
      waiters.add(onMsg)
      if (signal.aborted) return onAbort()
      signal.addEventListener('abort', onAbort, { once: true })
      void exited.then(() => done(() => reject(new Error(`fleet host ${index} exited (${child.exitCode ?? child.signalCode}) before ${what}\n${tail}`))))
    })
  }

  const send = (m: ToFleet) => {
    if (child.connected) child.send(m)
  }
  const ready = next((m) => (m.type === 'ready' ? { ms: m.ms } : undefined), 120_000, 'ready')
  // Rejections are read by whoever awaits `ready`; this keeps an unawaited one from crashing us.
  ready.catch(() => undefined)
  send({ type: 'start', ...cfg })

  return {
    index,
    pid: child.pid,
    count: cfg.count,
    ready,
    tail: () => tail,
    configure(b, timeoutMs) {
      const id = ++configs
      const done = next((m) => (m.type === 'configured' && m.id === id ? m.failing : undefined), timeoutMs, 'configured')
      send({ type: 'configure', id, ...b })
      return done
    },
    async stop(graceMs) {
      if (child.exitCode === null && child.signalCode === null) {
        if (child.connected) send({ type: 'stop' })
        else child.kill('SIGTERM')
        const t = setTimeout(() => child.kill('SIGKILL'), graceMs)
        await exited
        clearTimeout(t)
      }
      return { maxRssKb: stopped?.maxRssKb ?? null, stats: stopped?.stats ?? null }
    },
  }
}
