import { type Bus, createMemoryBus, type Logger } from '@apiary/shared'
import { type Hive, startHive } from '@apiary/hive'
import { type Queen, startQueen } from '@apiary/queen'
import { startWorker, type Worker } from '@apiary/worker'

export interface EmbeddedConfig {
  log: Logger
  stateDir: string
  tokenFile: string
  host: string
  port: number
  /** Local agent workers, named `<prefix>-1` … `<prefix>-N`. */
  workers: number
  nodePrefix: string
  region: string
  heartbeatMs: number
}

export interface Embedded {
  queen: Queen
  bus: Bus
  workers: Worker[]
  hive: Hive
  close(): Promise<void>
}

/**
 * The whole cluster in one process over the in-process bus: a queen with its store on disk,
 * one hive and a few local workers. Same code as the distributed roles, another bus.
 */
export async function startEmbedded(cfg: EmbeddedConfig): Promise<Embedded> {
  const bus = createMemoryBus(cfg.log)
  const queen = await startQueen({
    bus,
    log: cfg.log.child({ component: 'queen' }),
    stateDir: cfg.stateDir,
    host: cfg.host,
    port: cfg.port,
    tokenFile: cfg.tokenFile,
  })
  const hive = startHive({ bus, log: cfg.log.child({ component: 'hive' }), hiveId: `hive-${cfg.region}-embedded`, region: cfg.region, heartbeatMs: cfg.heartbeatMs })
  const workers: Worker[] = []
  for (let i = 1; i <= cfg.workers; i++) {
    workers.push(
      startWorker({
        bus,
        log: cfg.log.child({ component: 'worker' }),
        nodeId: `${cfg.nodePrefix}-${i}`,
        region: cfg.region,
        labels: { role: 'dev', index: String(i) },
        heartbeatMs: cfg.heartbeatMs,
      }),
    )
  }
  // The first heartbeats must reach the queen before a job can target these nodes.
  await bus.flush()
  return {
    queen,
    bus,
    workers,
    hive,
    async close() {
      await Promise.all(workers.map((w) => w.close()))
      await hive.close()
      await queen.close()
      await bus.close()
    },
  }
}
