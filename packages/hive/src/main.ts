import { hostname } from 'node:os'
import {
  closeOnSignals,
  createLogger,
  createNatsBus,
  errorMessage,
  isApiaryError,
  type OptionTable,
  optionsHelp,
  parseCommandLine,
  parseDuration,
  parseOrThrow,
  Region,
  NodeId,
} from '@apiary/shared'
import { startHive } from './index.ts'

const OPTIONS = {
  nats: { type: 'string', env: 'APIARY_NATS_URL', value: 'URL', help: 'NATS server of the cluster (required)' },
  region: { type: 'string', env: 'APIARY_REGION', default: 'default', value: 'R', help: 'the region this hive rolls jobs out to' },
  id: { type: 'string', env: 'APIARY_HIVE_ID', value: 'ID', help: 'this hive’s id (default: hive-<region>-<host>-<pid>)' },
  heartbeat: { type: 'string', env: 'APIARY_HEARTBEAT_MS', default: '5000', value: 'MS', help: 'heartbeat interval (ms, or a duration like 5s)' },
  'log-level': { type: 'string', env: 'APIARY_LOG_LEVEL', default: 'info', value: 'LEVEL', help: 'trace, debug, info, warn or error' },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
} satisfies OptionTable

const USAGE = `apiary-hive: rolls out one region's share of each job to its workers

usage: apiary-hive --nats URL --region R [--id ID]

Run several with the same --region for redundancy: each job share goes to one of them.

options:
${optionsHelp(OPTIONS)}
`

async function main(): Promise<number> {
  let values
  let heartbeatMs: number
  try {
    values = parseCommandLine('apiary-hive', OPTIONS, process.argv.slice(2), process.env).values
    if (values.help) {
      process.stdout.write(USAGE)
      return 0
    }
    if (!values.nats) throw new Error('--nats (or APIARY_NATS_URL) is required: the hive meets the queen and workers on NATS')
    parseOrThrow(Region, values.region, '--region')
    const hb = values.heartbeat ?? '5000'
    heartbeatMs = /^\d+$/.test(hb) ? Number(hb) : parseDuration(hb, '--heartbeat')
  } catch (err) {
    process.stderr.write(`apiary-hive: ${errorMessage(err)}\n`)
    return 2
  }
  const region = values.region ?? 'default'
  const hiveId = values.id ?? `hive-${region}-${hostname().split('.')[0]}-${process.pid}`
  const log = createLogger({ component: 'hive', level: values['log-level'] })
  try {
    parseOrThrow(NodeId, hiveId, '--id')
    const bus = await createNatsBus({ url: values.nats, name: `apiary-hive:${hiveId}`, log })
    const hive = startHive({ bus, log, hiveId, region, heartbeatMs })
    log.info({ hiveId, region }, 'hive ready')
    closeOnSignals(log, async () => {
      await hive.close()
      await bus.close()
      log.flush()
    }, (code) => process.exit(code))
    return -1
  } catch (err) {
    process.stderr.write(`apiary-hive: ${errorMessage(err)}\n`)
    log.flush()
    return isApiaryError(err, 'invalid_input') ? 2 : 1
  }
}

const code = await main()
if (code >= 0) process.exitCode = code
