import { type Logger, type Verifier } from '@apiary/shared'
import { createNatsBus } from '@apiary/shared/nats'
import { watchInventory } from '@apiary/shared/inventory'
import type { WorkerDaemonConfig } from './config.ts'
import { createSshPool } from './executors/ssh/pool.ts'
import { openJournal } from './journal.ts'
import { startSshWorker } from './ssh-worker.ts'

/**
 * The worker's SSH mode, loaded only when asked for: an agent on a node never loads ssh2, the
 * pool or the inventory's YAML parser.
 */
export async function startSshMode(c: Extract<WorkerDaemonConfig, { mode: 'ssh' }>, queenKey: Verifier, log: Logger): Promise<{ close(): Promise<void> }> {
  const { region, heartbeatMs } = c
  const inventory = await watchInventory(c.inventoryFile, log)
  process.on('SIGHUP', () => void inventory.reload())
  const pool = createSshPool({ ...c.pool, log })
  let journal, bus
  try {
    journal = await openJournal({ ...c.journal, log })
    bus = await createNatsBus({ url: c.natsUrl, name: `apiary-worker:${c.id}`, log, identity: { role: 'ssh-worker', id: c.id, region }, ...c.nats })
  } catch (err) {
    await journal?.close()
    await pool.close()
    inventory.close()
    throw err
  }
  const worker = startSshWorker({ bus, log, id: c.id, region, heartbeatMs, inventory: () => inventory.nodes(), pool, queenKey, journal })
  log.info({ id: c.id, region, nodes: [...inventory.nodes().values()].filter((n) => n.region === region).length, journal: c.journal.dir }, 'ssh worker ready')
  return {
    async close() {
      await worker.close()
      inventory.close()
      await pool.close()
      await bus.close()
    },
  }
}
