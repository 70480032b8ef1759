/**
 * The IPC messages between the benchmark (parent) and its worker hosts (children), beside
 * bench/lib/child-host.ts's: one `start`, progress while connections open, one `ready` (or
 * `failed`), then `stop` → `stopped`.
 */

export interface StartHost {
  type: 'start'
  natsUrl: string
  region: string
  heartbeatMs: number
  /** The queen's public key its workers pin (`ed25519:…`). */
  queenKey: string
  /** Node ids this host serves: one apiary worker and one raw responder each. */
  nodeIds: string[]
  /** Raw-baseline subject prefix; a responder listens on `<prefix>.<nodeId>`. */
  rawPrefix: string
  /** How many connections this host opens at once. */
  parallelism: number
}

export type FromHost = { type: 'progress'; workers: number; raw: number } | { type: 'ready'; workers: number; raw: number; ms: number }
