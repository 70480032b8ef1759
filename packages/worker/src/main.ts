import { busLink, createMetrics, ensureStateDir, healthFromFlags, readQueenKey, runProgram, serveOps } from '@apiary/shared/runtime'
import { createNatsBus } from '@apiary/shared/nats'
import { startWorker, WORKER_METRICS } from './agent.ts'
import { parseWorkerConfig, WORKER_OPTIONS } from './config.ts'
import { resolveRunAs } from './executors/run-as.ts'
import { openJournal } from './journal.ts'

await runProgram({
  program: 'apiary-worker',
  component: 'worker',
  about: `apiary-worker: runs tasks on this node (agent mode), or reaches a region's nodes over SSH (--ssh)

usage: apiary-worker --nats URL --nats-creds FILE --queen-key KEY|FILE [--node-id ID] [--region R] [--label k=v ...] [--state-dir DIR]
       apiary-worker --nats URL --nats-creds FILE --queen-key KEY|FILE --ssh --inventory FILE --id ID [--region R] [--known-hosts FILE] [--identity KEY] [--state-dir DIR]

It authenticates to NATS with one credential file (or runs without, told --insecure-bus) and
runs only work signed by the queen whose public key --queen-key pins. The commands it runs get
its environment without the APIARY_* variables, as the worker's user or, with --run-as USER,
as that user (then they cannot read the worker's credentials or journal). It runs each task at
most once, across re-offers and its own restarts: a journal in --state-dir (mode 0700, its
own) says what it took and how each ended.

With --metrics-port it serves /metrics (Prometheus; with --metrics-token-file only to that
bearer token), /healthz and /readyz (ready: connected, heartbeating, not draining); --health
asks that /readyz. On SIGTERM it takes no new task, lets the running ones finish within
--drain-grace, stops those still running then (they end cancelled), and exits 0.`,
  options: WORKER_OPTIONS,
  config: parseWorkerConfig,
  graceMs: (c) => c.ops.drainGraceMs,
  health: (v) => healthFromFlags(v, 'apiary-worker'),
  async start(c, log) {
    const { region, heartbeatMs } = c
    await ensureStateDir(c.stateDir, '--state-dir')
    const queenKey = await readQueenKey(c.queenKey)
    if (c.mode === 'agent') {
      const { nodeId, labels } = c
      const runAs = c.runAs === undefined ? undefined : await resolveRunAs(c.runAs)
      const journal = await openJournal({ ...c.journal, log })
      const metrics = createMetrics('worker', [...WORKER_METRICS, 'busConnected', 'busReconnects'], { process: true })
      const link = busLink(metrics)
      let bus
      try {
        bus = await createNatsBus({ url: c.natsUrl, name: `apiary-worker:${nodeId}`, log, identity: { role: 'worker', id: nodeId, region }, onStatus: link.onStatus, ...c.nats })
      } catch (err) {
        await journal.close()
        throw err
      }
      const worker = startWorker({ bus, log, nodeId, region, labels, heartbeatMs, queenKey, journal, metrics, ...(runAs ? { runAs } : {}) })
      const ops = await serveOps(c.ops.metrics, { metrics, notReady: () => (link.connected() ? worker.notReady() : 'bus disconnected'), log }).catch(async (err: unknown) => {
        await worker.close()
        await bus.close()
        throw err
      })
      log.info({ node: nodeId, region, labels, journal: c.journal.dir, ...(runAs ? { runAs: runAs.user, uid: runAs.uid } : {}) }, 'worker ready')
      return {
        async close() {
          // /readyz says draining meanwhile; the port closes last.
          await worker.drain(c.ops.drainGraceMs)
          await bus.close()
          await ops?.close()
          log.info('drained')
        },
      }
    }
    // A chunk of its own in the bundle: agents never load the SSH code.
    const { startSshMode } = await import('./ssh-main.ts')
    return startSshMode(c, queenKey, log)
  },
})
