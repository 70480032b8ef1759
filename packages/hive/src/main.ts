import { readQueenKey, runProgram } from '@apiary/shared/runtime'
import { createNatsBus } from '@apiary/shared/nats'
import { HIVE_OPTIONS, parseHiveConfig } from './config.ts'
import { startHive } from './index.ts'

await runProgram({
  program: 'apiary-hive',
  component: 'hive',
  about: `apiary-hive: rolls out one region's share of each job to its workers

usage: apiary-hive --nats URL --nats-creds FILE --queen-key KEY|FILE --region R [--id ID]

Run several with the same --region for redundancy: each job share goes to one of them. It
authenticates to NATS with one credential file (or runs without, told --insecure-bus) and takes
only work signed by the queen whose public key --queen-key pins.`,
  options: HIVE_OPTIONS,
  config: parseHiveConfig,
  async start(c, log) {
    const queenKey = await readQueenKey(c.queenKey)
    const bus = await createNatsBus({ url: c.natsUrl, name: `apiary-hive:${c.hiveId}`, log, identity: { role: 'hive', id: c.hiveId, region: c.region }, ...c.nats })
    const hive = startHive({ bus, log, hiveId: c.hiveId, region: c.region, heartbeatMs: c.heartbeatMs, queenKey })
    log.info({ hiveId: c.hiveId, region: c.region, queenKey: queenKey.publicKey }, 'hive ready')
    return {
      async close() {
        await hive.close()
        await bus.close()
      },
    }
  },
})
