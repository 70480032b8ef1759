export { DEFAULT_MAX_TASKS, startWorker, type Worker, type WorkerConfig, WORKER_METRICS, type WorkerMetricKey } from './agent.ts'
export { SSH_WORKER_METRICS, type SshWorker, type SshWorkerConfig, type SshWorkerMetricKey, startSshWorker } from './ssh-worker.ts'
export { LOST_ON_RESTART, PUBLISH_DRAIN_MS, RUNNER_METRICS, type RunnerMetricKey, startTaskRunner, type TaskRunner, type TaskRunnerConfig } from './runner.ts'
export {
  DEFAULT_JOURNAL_ENTRIES,
  DEFAULT_JOURNAL_KEEP_MS,
  type FinalEvent,
  type Journal,
  type JournalBounds,
  type JournalEntry,
  journalDir,
  type JournalOptions,
  type JournalStats,
  memoryJournal,
  openJournal,
} from './journal.ts'
export { OutputCap } from './output-cap.ts'
export { runLocal } from './executors/local.ts'
export { collectFacts } from './executors/facts.ts'
export { createSshPool, type HostKeyPolicy, type HostStatus, type PoolStats, poolKey, type SshLease, type SshPool, type SshPoolOptions, type SshTarget } from './executors/ssh/pool.ts'
export { runSsh, type SshExecOptions } from './executors/ssh/ssh.ts'
export type { ExecHooks, ExecResult, StopRequest } from './executors/executor.ts'
