import { type ChildProcess, fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { type FromHost, isFromHost, type StartHost } from './protocol.ts'
import { ROOT } from './roles.ts'

const HOST_SCRIPT = fileURLToPath(new URL('./worker-host.ts', import.meta.url))

export interface Host {
  index: number
  pid: number
  nodeIds: string[]
  /** Connections opened so far (workers + raw), from the last progress report. */
  opened(): number
  ready: Promise<{ ms: number }>
  /** Asks the host to close its connections; kills it if it has not exited after `graceMs`. */
  stop(graceMs: number): Promise<{ maxRssKb: number | null }>
  tail(): string
}

/**
 * Forks one worker host (a child Node process running worker-host.ts through tsx) and starts
 * its share of the fleet. `ready` rejects if the host fails, exits or the signal aborts.
 */
export function startHost(index: number, cfg: Omit<StartHost, 'type'>, env: NodeJS.ProcessEnv, signal: AbortSignal): Host {
  const child: ChildProcess = fork(HOST_SCRIPT, [], {
    cwd: ROOT,
    // The same loader the packages' bin scripts register: TypeScript straight from src/.
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    serialization: 'json',
  })
  if (child.pid === undefined) throw new Error(`worker host ${index} did not start`)
  let tail = ''
  const onOut = (c: Buffer) => {
    tail = (tail + c.toString()).slice(-16 * 1024)
  }
  child.stdout!.on('data', onOut)
  child.stderr!.on('data', onOut)

  let opened = 0
  let maxRssKb: number | null = null
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const ready = new Promise<{ ms: number }>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error)
    signal.addEventListener('abort', onAbort, { once: true })
    child.on('message', (m: unknown) => {
      if (!isFromHost(m)) return
      const msg: FromHost = m
      switch (msg.type) {
        case 'progress':
          opened = msg.workers + msg.raw
          break
        case 'ready':
          opened = msg.workers + msg.raw
          signal.removeEventListener('abort', onAbort)
          resolve({ ms: msg.ms })
          break
        case 'failed':
          signal.removeEventListener('abort', onAbort)
          reject(new Error(`worker host ${index}: ${msg.error}\n${tail}`))
          break
        case 'stopped':
          maxRssKb = msg.maxRssKb
          break
      }
    })
    void exited.then(() => reject(new Error(`worker host ${index} exited (${child.exitCode ?? child.signalCode}) before it was ready\n${tail}`)))
  })
  // Rejections are read by whoever awaits `ready`; this keeps an unawaited one from crashing us.
  ready.catch(() => undefined)
  child.send({ type: 'start', ...cfg } satisfies StartHost)

  return {
    index,
    pid: child.pid,
    nodeIds: cfg.nodeIds,
    opened: () => opened,
    ready,
    tail: () => tail,
    async stop(graceMs) {
      if (child.exitCode === null && child.signalCode === null) {
        if (child.connected) child.send({ type: 'stop' })
        else child.kill('SIGTERM')
        const t = setTimeout(() => child.kill('SIGKILL'), graceMs)
        await exited
        clearTimeout(t)
      }
      return { maxRssKb }
    },
  }
}
