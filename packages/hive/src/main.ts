import { hostname } from 'node:os'
import { createNatsBus, NodeId, type OptionTable, parseMsFlag, parseOrThrow, Region, runProgram } from '@apiary/shared'
import { startHive } from './index.ts'

const OPTIONS = {
  nats: { type: 'string', env: 'APIARY_NATS_URL', value: 'URL', help: 'NATS server of the cluster (required)' },
  region: { type: 'string', env: 'APIARY_REGION', default: 'default', value: 'R', help: 'the region this hive rolls jobs out to' },
  id: { type: 'string', env: 'APIARY_HIVE_ID', value: 'ID', help: 'this hive’s id (default: hive-<region>-<host>-<pid>)' },
  heartbeat: { type: 'string', env: 'APIARY_HEARTBEAT_MS', default: '5000', value: 'MS', help: 'heartbeat interval (ms, or a duration like 5s)' },
  'log-level': { type: 'string', env: 'APIARY_LOG_LEVEL', default: 'info', value: 'LEVEL', help: 'trace, debug, info, warn or error' },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
} satisfies OptionTable

const hiveId = (v: { id: string | undefined; region: string | undefined }) => v.id ?? `hive-${v.region ?? 'default'}-${hostname().split('.')[0]}-${process.pid}`

await runProgram({
  program: 'apiary-hive',
  component: 'hive',
  about: `apiary-hive: rolls out one region's share of each job to its workers

usage: apiary-hive --nats URL --region R [--id ID]

Run several with the same --region for redundancy: each job share goes to one of them.`,
  options: OPTIONS,
  check(v) {
    if (!v.nats) throw new Error('--nats (or APIARY_NATS_URL) is required: the hive meets the queen and workers on NATS')
    parseOrThrow(Region, v.region, '--region')
    parseOrThrow(NodeId, hiveId(v), '--id')
    parseMsFlag(v.heartbeat ?? '5000', '--heartbeat')
  },
  async start(v, log) {
    const id = hiveId(v)
    const region = v.region ?? 'default'
    const bus = await createNatsBus({ url: v.nats!, name: `apiary-hive:${id}`, log })
    const hive = startHive({ bus, log, hiveId: id, region, heartbeatMs: parseMsFlag(v.heartbeat ?? '5000', '--heartbeat') })
    log.info({ hiveId: id, region }, 'hive ready')
    return {
      async close() {
        await hive.close()
        await bus.close()
      },
    }
  },
})
