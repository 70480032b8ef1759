import { type Logger, type Verifier } from '@apiary/shared'
import { createNatsBus } from '@apiary/shared/nats'
import { busLink, createMetrics, serveOps } from '@apiary/shared/runtime'
import { watchInventory } from '@apiary/shared/inventory'
import type { WorkerDaemonConfig } from './config.ts'
import { createSshPool } from './executors/ssh/pool.ts'
import { openJournal } from './journal.ts'
import { SSH_WORKER_METRICS, startSshWorker } from './ssh-worker.ts'

/**
 * The worker's SSH mode, loaded only when asked for: an agent on a node never loads ssh2, the
 * pool or the inventory's YAML parser.
 */
export async function startSshMode(c: Extract<WorkerDaemonConfig, { mode: 'ssh' }>, queenKey: Verifier, log: Logger): Promise<{ close(): Promise<void> }> {
  const { region, heartbeatMs } = c
  const inventory = await watchInventory(c.inventoryFile, log)
  process.on('SIGHUP', () => void inventory.reload())
  const pool = createSshPool({ ...c.pool, log })
  const metrics = createMetrics('ssh-worker', [...SSH_WORKER_METRICS, 'busConnected', 'busReconnects'], { process: true })
  const link = busLink(metrics)
  let journal, bus
  try {
    journal = await openJournal({ ...c.journal, log })
    bus = await createNatsBus({ url: c.natsUrl, name: `apiary-worker:${c.id}`, log, identity: { role: 'ssh-worker', id: c.id, region }, onStatus: link.onStatus, ...c.nats })
  } catch (err) {
    await journal?.close()
    await pool.close()
    inventory.close()
    throw err
  }
  const worker = startSshWorker({ bus, log, id: c.id, region, heartbeatMs, inventory: () => inventory.nodes(), pool, queenKey, journal, metrics })
  const stop = async () => {
    inventory.close()
    await pool.close()
    await bus.close()
  }
  const ops = await serveOps(c.ops.metrics, { metrics, notReady: () => (link.connected() ? worker.notReady() : 'bus disconnected'), log }).catch(async (err: unknown) => {
    await worker.close()
    await stop()
    throw err
  })
  log.info({ id: c.id, region, nodes: [...inventory.nodes().values()].filter((n) => n.region === region).length, journal: c.journal.dir }, 'ssh worker ready')
  return {
    async close() {
      await worker.drain(c.ops.drainGraceMs)
      await stop()
      await ops?.close()
      log.info('drained')
    },
  }
}
