/**
 * The IPC messages between the rollout benchmark (parent) and its fleet hosts (children),
 * beside bench/lib/child-host.ts's: one `start` → `ready` (or `failed`), any number of
 * `configure` → `configured`, then `stop` → `stopped` with the fleet's stats.
 */
import type { FleetStats } from '../../test/fleet/agents.ts'

export interface StartFleet {
  type: 'start'
  natsUrl: string
  region: string
  prefix: string
  /** Global index of this host's first node. */
  first: number
  count: number
  connections: number
  failRate: number
  heartbeatMs: number
  durationMs: number
}

/** What the simulated nodes do with the tasks they take from now on. */
export interface Behaviour {
  failRate: number
  /** Lines each exec task prints. */
  outputLines: number
}

export type ToFleet = StartFleet | ({ type: 'configure'; id: number } & Behaviour)

export type FromFleet =
  /** The behaviour `id` is in force; `failing` nodes of this host fail at its rate. */
  | { type: 'configured'; id: number; failing: number }
  | { type: 'stopped'; maxRssKb: number; stats: FleetStats }
