import { fileURLToPath } from 'node:url'
import type { FleetStats } from '../../test/fleet/agents.ts'
import { forkHost } from '../lib/child-host.ts'
import type { Behaviour, FromFleet, StartFleet, ToFleet } from './protocol.ts'

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
 * Forks one fleet host (fleet-host.ts) and starts its slice of the simulated fleet. `ready`
 * rejects if the host fails, exits or the signal aborts.
 */
export function startFleetHost(index: number, cfg: Omit<StartFleet, 'type'>, env: NodeJS.ProcessEnv, signal: AbortSignal): FleetHost {
  const host = forkHost<ToFleet, FromFleet>(`fleet host ${index}`, HOST_SCRIPT, { type: 'start', ...cfg }, env, signal, 120_000)
  let configs = 0
  let stopped: { maxRssKb: number; stats: FleetStats } | null = null
  host.onMessage((m) => {
    if (m.type === 'stopped' && 'stats' in m) stopped = { maxRssKb: m.maxRssKb, stats: m.stats }
  })
  return {
    index,
    pid: host.pid,
    count: cfg.count,
    ready: host.ready,
    tail: host.tail,
    configure(b, timeoutMs) {
      const id = ++configs
      const done = host.next((m) => (m.type === 'configured' && m.id === id ? m.failing : undefined), 'configured', timeoutMs)
      host.send({ type: 'configure', id, ...b })
      return done
    },
    async stop(graceMs) {
      await host.stop(graceMs)
      return { maxRssKb: stopped?.maxRssKb ?? null, stats: stopped?.stats ?? null }
    },
  }
}
