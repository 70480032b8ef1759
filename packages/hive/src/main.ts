import { runProgram } from '@apiary/shared/runtime'
import { createNatsBus } from '@apiary/shared/nats'
import { HIVE_OPTIONS, parseHiveConfig } from './config.ts'
import { startHive } from './index.ts'

await runProgram({
  program: 'apiary-hive',
  component: 'hive',
  about: `apiary-hive: rolls out one region's share of each job to its workers

usage: apiary-hive --nats URL --region R [--id ID]

Run several with the same --region for redundancy: each job share goes to one of them.`,
  options: HIVE_OPTIONS,
  config: parseHiveConfig,
  async start(c, log) {
    const bus = await createNatsBus({ url: c.natsUrl, name: `apiary-hive:${c.hiveId}`, log })
    const hive = startHive({ bus, log, hiveId: c.hiveId, region: c.region, heartbeatMs: c.heartbeatMs })
    log.info({ hiveId: c.hiveId, region: c.region }, 'hive ready')
    return {
      async close() {
        await hive.close()
        await bus.close()
      },
    }
  },
})
