import { runProgram } from '@apiary/shared/runtime'
import { createNatsBus } from '@apiary/shared/nats'
import { createMemoryBus } from '@apiary/shared/memory-bus'
import { parseQueenConfig, QUEEN_OPTIONS } from './config.ts'
import { startQueen } from './index.ts'

await runProgram({
  program: 'apiary-queen',
  component: 'queen',
  about: `apiary-queen: the HTTP API, job store and event log of an apiary cluster

usage: apiary-queen [--nats URL] [--host ADDR] [--port PORT] [--state-dir DIR]`,
  options: QUEEN_OPTIONS,
  config: parseQueenConfig,
  async start(c, log) {
    const bus = c.natsUrl ? await createNatsBus({ url: c.natsUrl, name: 'apiary-queen', log }) : createMemoryBus(log)
    if (!c.natsUrl) log.warn('no --nats given: using an in-process bus, so no hive or worker can reach this queen (use keeper dev for a one-process cluster)')
    const queen = await startQueen({
      bus,
      log,
      stateDir: c.stateDir,
      host: c.host,
      port: c.port,
      tokenFile: c.tokenFile,
      ...(c.inventoryFile ? { inventoryFile: c.inventoryFile } : {}),
    })
    process.on('SIGHUP', () => void queen.reloadInventory())
    return {
      async close() {
        await queen.close()
        await bus.close()
      },
    }
  },
})
