/**
 * The IPC messages between the benchmark (parent) and its worker hosts (children). One
 * `start`, progress while connections open, one `ready` (or `failed`), then `stop` → `stopped`.
 */

export interface StartHost {
  type: 'start'
  natsUrl: string
  region: string
  heartbeatMs: number
  /** Node ids this host serves: one apiary worker and one raw responder each. */
  nodeIds: string[]
  /** Raw-baseline subject prefix; a responder listens on `<prefix>.<nodeId>`. */
  rawPrefix: string
  /** How many connections this host opens at once. */
  parallelism: number
}

export interface StopHost {
  type: 'stop'
}

export type ToHost = StartHost | StopHost

export type FromHost =
  | { type: 'progress'; workers: number; raw: number }
  | { type: 'ready'; workers: number; raw: number; ms: number }
  | { type: 'failed'; error: string }
  | { type: 'stopped'; maxRssKb: number }

export function isFromHost(m: unknown): m is FromHost {
  return typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string'
}
