import { fileURLToPath } from 'node:url'
import { forkHost } from '../lib/child-host.ts'
import type { FromHost, StartHost } from './protocol.ts'

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
 * Forks one worker host (worker-host.ts) and starts its share of the fleet. `ready` rejects
 * if the host fails, exits or the signal aborts.
 */
export function startHost(index: number, cfg: Omit<StartHost, 'type'>, env: NodeJS.ProcessEnv, signal: AbortSignal, nodeFlags: string[] = []): Host {
  const host = forkHost<StartHost, FromHost>(`worker host ${index}`, HOST_SCRIPT, { type: 'start', ...cfg }, env, signal, undefined, nodeFlags)
  let opened = 0
  let maxRssKb: number | null = null
  host.onMessage((m) => {
    if (m.type === 'progress' || (m.type === 'ready' && 'workers' in m)) opened = m.workers + m.raw
    else if (m.type === 'stopped') maxRssKb = m.maxRssKb
  })
  return {
    index,
    pid: host.pid,
    nodeIds: cfg.nodeIds,
    opened: () => opened,
    ready: host.ready,
    tail: host.tail,
    async stop(graceMs) {
      await host.stop(graceMs)
      return { maxRssKb }
    },
  }
}
