import { type Bus, type Logger, subjects, type Verifier, VERSION } from '@apiary/shared'
import { type DaemonMetrics, Heartbeater } from '@apiary/shared/runtime'
import { collectFacts } from './executors/facts.ts'
import { runLocal } from './executors/local.ts'
import type { RunAs } from './executors/run-as.ts'
import { type Journal, memoryJournal } from './journal.ts'
import { okResult, RUNNER_METRICS, startTaskRunner } from './runner.ts'

export interface WorkerConfig {
  bus: Bus
  log: Logger
  nodeId: string
  region: string
  labels: Record<string, string>
  heartbeatMs: number
  /** The queen's public key: only work it signed runs here. */
  queenKey: Verifier
  /** The most tasks running at once (default 64). */
  maxTasks?: number
  /** SIGTERM → SIGKILL grace for a stopped process group. */
  killGraceMs?: number
  /** How long a task's start is held for its end to carry it (default `START_HOLD_MS`). */
  startHoldMs?: number
  /**
   * What this node took and how each task ended (`openJournal`), closed with the worker. By
   * default one in memory: a task delivered twice runs once, but a restart forgets it all.
   */
  journal?: Journal
  /** Commands run as this user (`resolveRunAs`), not as the worker's: they cannot read its credentials or journal. */
  runAs?: RunAs
  /** Where what it runs is counted (`createMetrics('worker', WORKER_METRICS)`). */
  metrics?: DaemonMetrics<WorkerMetricKey>
}

/** The metrics an agent worker keeps. */
export const WORKER_METRICS = [...RUNNER_METRICS, 'tasksInFlight', 'draining'] as const
export type WorkerMetricKey = (typeof WORKER_METRICS)[number]

/** How many tasks an agent runs at once unless told otherwise. */
export const DEFAULT_MAX_TASKS = 64

export interface Worker {
  nodeId: string
  /** Tasks running now. */
  running(): number
  /** Stops taking tasks, cancels running ones, waits for their final events and closes the journal. */
  close(): Promise<void>
  /**
   * Stops as a SIGTERM asks: refuses new tasks (`draining`), lets running ones finish within
   * `graceMs` and stops those still running then, heartbeating until they have ended; then closes.
   */
  drain(graceMs: number): Promise<void>
  /** Why it would not take a task now (draining, not heartbeating), or null: its /readyz. */
  notReady(): string | null
}

/**
 * An agent worker: takes the tasks of one node, runs them with the local executor and
 * narrates what happens on the job's events subject. Heartbeats straight to the queen.
 *
 * @example const w = startWorker({ bus, log, nodeId: 'web-1', region: 'eu', labels: { role: 'web' }, heartbeatMs: 5000 })
 */
export function startWorker(cfg: WorkerConfig): Worker {
  const { bus, nodeId } = cfg
  const log = cfg.log.child({ node: nodeId })
  const runner = startTaskRunner({
    bus,
    log,
    id: nodeId,
    subject: subjects.task(cfg.region, nodeId),
    region: cfg.region,
    queenKey: cfg.queenKey,
    agentless: false,
    eventSubject: (node, jobId) => subjects.nodeEvents(cfg.region, node, jobId),
    maxRunning: cfg.maxTasks ?? DEFAULT_MAX_TASKS,
    journal: cfg.journal ?? memoryJournal({ log }),
    ...(cfg.metrics ? { metrics: cfg.metrics } : {}),
    ...(cfg.startHoldMs === undefined ? {} : { startHoldMs: cfg.startHoldMs }),
    admit: (task) => (task.node === nodeId ? null : `task is for node ${task.node}`),
    async execute(task, signal, hooks) {
      switch (task.operation.type) {
        case 'ping':
          return okResult({ pong: true })
        case 'facts':
          hooks.onStart()
          return okResult(await collectFacts())
        case 'exec':
          return runLocal(
            {
              op: task.operation,
              capBytes: task.outputCapBytes,
              signal,
              killGraceMs: cfg.killGraceMs ?? 2000,
              baseEnv: { APIARY_JOB_ID: task.jobId, APIARY_NODE_ID: nodeId },
              ...(cfg.runAs ? { runAs: cfg.runAs } : {}),
            },
            hooks,
          )
      }
    },
  })
  const heart = new Heartbeater(bus, log, () => ({
    id: nodeId,
    role: 'worker',
    region: cfg.region,
    labels: cfg.labels,
    executor: 'local',
    status: 'healthy',
    running: runner.running(),
    version: VERSION,
    intervalMs: cfg.heartbeatMs,
    ts: Date.now(),
    refused: runner.refusals(),
    ...(runner.draining() ? { draining: true as const } : {}),
  })).start()
  cfg.metrics?.onScrape(() => {
    cfg.metrics?.m.tasksInFlight.set(runner.running())
    cfg.metrics?.m.draining.set(runner.draining() ? 1 : 0)
  })
  return {
    nodeId,
    running: () => runner.running(),
    async close() {
      heart.stop()
      await runner.close()
    },
    async drain(graceMs) {
      // It heartbeats while its tasks end: a silent worker's running nodes would be judged lost.
      const drained = runner.drain(graceMs)
      // At once, not at the next beat: the queen stops targeting it.
      heart.now()
      await drained
      heart.stop()
    },
    notReady: () => (runner.draining() ? 'draining' : heart.beating ? null : 'not heartbeating'),
  }
}
