import type { FinalState, NodeRunResult } from '@apiary/shared'
import type { OutputChunk } from '../output-cap.ts'

/** What an executor reports when a task is over. */
export interface ExecResult {
  state: FinalState
  exitCode: number | null
  signal: string | null
  cause: string | null
  bytes: number
  truncated: boolean
  digest: string | null
  result?: NodeRunResult
}

export interface ExecHooks {
  onStart(): void
  onOutput(chunk: OutputChunk): void
}

/**
 * Why a running task is being stopped: the abort reason of an executor's signal. A bare string
 * (or anything else) counts as a cancel with that cause.
 */
export interface StopRequest {
  state: 'cancelled' | 'timeout'
  cause: string
}

export const EXECUTION_DEADLINE: StopRequest = { state: 'timeout', cause: 'execution deadline passed' }

export function stopOutcome(reason: unknown): StopRequest {
  if (typeof reason === 'object' && reason !== null && 'state' in reason && 'cause' in reason) return reason as StopRequest
  if (reason === 'timeout') return EXECUTION_DEADLINE
  return { state: 'cancelled', cause: typeof reason === 'string' ? reason : 'cancelled' }
}

/** The result of a task stopped by its signal: `timeout` or `cancelled`, with the cause. */
export function stoppedResult(
  signal: AbortSignal,
  out: { bytes: number; truncated: boolean; digest: string | null },
  exitCode: number | null,
  sig: string | null,
): ExecResult {
  const { state, cause } = stopOutcome(signal.reason)
  return { state, exitCode, signal: sig, cause, ...out }
}
