import { homedir } from 'node:os'
import { join } from 'node:path'
import { type Bus, type Logger } from '@apiary/shared'
import { createMemoryBus } from '@apiary/shared/memory-bus'
import { type InventoryHandle, watchInventory } from '@apiary/shared/inventory'
import { type Hive, startHive } from '@apiary/hive'
import { type Queen, startQueen } from '@apiary/queen'
import { createSshPool, type SshPool, type SshWorker, startSshWorker, startWorker, type Worker } from '@apiary/worker'

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
  /** Agentless nodes, reached by an SSH worker in this process. */
  inventoryFile?: string
  ssh?: { knownHosts: string; hostKeyPolicy: 'strict' | 'accept-new'; identity?: string; passphraseFile?: string; agent?: string }
}

export interface Embedded {
  queen: Queen
  bus: Bus
  workers: Worker[]
  hive: Hive
  sshWorker: SshWorker | undefined
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
    // Its workers start with it: nothing to wait for after a restart.
    rememberNodes: false,
    ...(cfg.inventoryFile ? { inventoryFile: cfg.inventoryFile } : {}),
  })
  let ssh: { worker: SshWorker; pool: SshPool; inventory: InventoryHandle } | undefined
  if (cfg.inventoryFile) {
    const log = cfg.log.child({ component: 'ssh-worker' })
    const inventory = await watchInventory(cfg.inventoryFile, log)
    const o = cfg.ssh ?? { knownHosts: join(homedir(), '.ssh', 'known_hosts'), hostKeyPolicy: 'strict' as const }
    const pool = createSshPool({
      knownHosts: o.knownHosts,
      hostKeyPolicy: o.hostKeyPolicy,
      ...(o.identity ? { keyFile: o.identity } : {}),
      ...(o.passphraseFile ? { passphraseFile: o.passphraseFile } : {}),
      ...(o.agent ? { agent: o.agent } : {}),
      log,
    })
    // One SSH worker per region of the inventory would be the distributed shape; one process serves them all here.
    const regions = new Set([...inventory.nodes().values()].map((n) => n.region))
    if (regions.size > 1 || (regions.size === 1 && !regions.has(cfg.region))) {
      log.warn({ regions: [...regions] }, `keeper dev serves region ${cfg.region} only; inventory nodes of other regions end "no hive"`)
    }
    ssh = { worker: startSshWorker({ bus, log, id: `ssh-${cfg.region}-embedded`, region: cfg.region, heartbeatMs: cfg.heartbeatMs, inventory: () => inventory.nodes(), pool }), pool, inventory }
  }
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
    sshWorker: ssh?.worker,
    async close() {
      await Promise.all(workers.map((w) => w.close()))
      if (ssh) {
        await ssh.worker.close()
        ssh.inventory.close()
        await ssh.pool.close()
      }
      await hive.close()
      await queen.close()
      await bus.close()
    },
  }
}
