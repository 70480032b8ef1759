import type { FinalState } from '@apiary/shared'
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
  result?: unknown
}

export interface ExecHooks {
  onStart(): void
  onOutput(chunk: OutputChunk): void
}
