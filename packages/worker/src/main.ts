import { createNatsBus, runProgram, watchInventory } from '@apiary/shared'
import { parseWorkerConfig, WORKER_OPTIONS } from './config.ts'
import { createSshPool, startSshWorker, startWorker } from './index.ts'

await runProgram({
  program: 'apiary-worker',
  component: 'worker',
  about: `apiary-worker: runs tasks on this node (agent mode), or reaches a region's nodes over SSH (--ssh)

usage: apiary-worker --nats URL [--node-id ID] [--region R] [--label k=v ...]
       apiary-worker --nats URL --ssh --inventory FILE [--region R] [--known-hosts FILE] [--identity KEY]`,
  options: WORKER_OPTIONS,
  config: parseWorkerConfig,
  async start(c, log) {
    const { region, heartbeatMs } = c
    if (c.mode === 'agent') {
      const { nodeId, labels } = c
      const bus = await createNatsBus({ url: c.natsUrl, name: `apiary-worker:${nodeId}`, log })
      const worker = startWorker({ bus, log, nodeId, region, labels, heartbeatMs })
      log.info({ node: nodeId, region, labels }, 'worker ready')
      return {
        async close() {
          await worker.close()
          await bus.close()
        },
      }
    }
    const inventory = await watchInventory(c.inventoryFile, log)
    process.on('SIGHUP', () => void inventory.reload())
    const pool = createSshPool({ ...c.pool, log })
    const bus = await createNatsBus({ url: c.natsUrl, name: `apiary-worker:${c.id}`, log })
    const worker = startSshWorker({ bus, log, id: c.id, region, heartbeatMs, inventory: () => inventory.nodes(), pool })
    log.info({ id: c.id, region, nodes: [...inventory.nodes().values()].filter((n) => n.region === region).length }, 'ssh worker ready')
    return {
      async close() {
        await worker.close()
        inventory.close()
        await pool.close()
        await bus.close()
      },
    }
  },
})
