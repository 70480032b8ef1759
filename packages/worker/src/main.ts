import { ensureStateDir, readQueenKey, runProgram } from '@apiary/shared/runtime'
import { createNatsBus } from '@apiary/shared/nats'
import { startWorker } from './agent.ts'
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
own) says what it took and how each ended.`,
  options: WORKER_OPTIONS,
  config: parseWorkerConfig,
  async start(c, log) {
    const { region, heartbeatMs } = c
    await ensureStateDir(c.stateDir, '--state-dir')
    const queenKey = await readQueenKey(c.queenKey)
    if (c.mode === 'agent') {
      const { nodeId, labels } = c
      const runAs = c.runAs === undefined ? undefined : await resolveRunAs(c.runAs)
      const journal = await openJournal({ ...c.journal, log })
      let bus
      try {
        bus = await createNatsBus({ url: c.natsUrl, name: `apiary-worker:${nodeId}`, log, identity: { role: 'worker', id: nodeId, region }, ...c.nats })
      } catch (err) {
        await journal.close()
        throw err
      }
      const worker = startWorker({ bus, log, nodeId, region, labels, heartbeatMs, queenKey, journal, ...(runAs ? { runAs } : {}) })
      log.info({ node: nodeId, region, labels, journal: c.journal.dir, ...(runAs ? { runAs: runAs.user, uid: runAs.uid } : {}) }, 'worker ready')
      return {
        async close() {
          await worker.close()
          await bus.close()
        },
      }
    }
    // A chunk of its own in the bundle: agents never load the SSH code.
    const { startSshMode } = await import('./ssh-main.ts')
    return startSshMode(c, queenKey, log)
  },
})
