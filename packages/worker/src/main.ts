import { hostname } from 'node:os'
import {
  closeOnSignals,
  createLogger,
  createNatsBus,
  errorMessage,
  isApiaryError,
  NodeId,
  type OptionTable,
  optionsHelp,
  parseCommandLine,
  parseDuration,
  parseLabels,
  parseOrThrow,
  Region,
} from '@apiary/shared'
import { startWorker } from './index.ts'

const OPTIONS = {
  nats: { type: 'string', env: 'APIARY_NATS_URL', value: 'URL', help: 'NATS server of the cluster (required)' },
  'node-id': { type: 'string', env: 'APIARY_NODE_ID', value: 'ID', help: 'this node’s id (default: the host name)' },
  region: { type: 'string', env: 'APIARY_REGION', default: 'default', value: 'R', help: 'the region whose hive sends this node tasks' },
  label: { type: 'string', multiple: true, env: 'APIARY_LABELS', value: 'K=V', help: 'a label for targeting, repeatable (env: comma-separated)' },
  heartbeat: { type: 'string', env: 'APIARY_HEARTBEAT_MS', default: '5000', value: 'MS', help: 'heartbeat interval (ms, or a duration like 5s)' },
  'log-level': { type: 'string', env: 'APIARY_LOG_LEVEL', default: 'info', value: 'LEVEL', help: 'trace, debug, info, warn or error' },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
} satisfies OptionTable

const USAGE = `apiary-worker: runs tasks on this node and heartbeats to the queen

usage: apiary-worker --nats URL [--node-id ID] [--region R] [--label k=v ...]

options:
${optionsHelp(OPTIONS)}
`

async function main(): Promise<number> {
  let values
  try {
    values = parseCommandLine('apiary-worker', OPTIONS, process.argv.slice(2), process.env).values
    if (values.help) {
      process.stdout.write(USAGE)
      return 0
    }
    if (!values.nats) throw new Error('--nats (or APIARY_NATS_URL) is required: the worker meets its hive on NATS')
    parseOrThrow(NodeId, values['node-id'] ?? hostname(), '--node-id')
    parseOrThrow(Region, values.region, '--region')
  } catch (err) {
    process.stderr.write(`apiary-worker: ${errorMessage(err)}\n`)
    return 2
  }
  const nodeId = values['node-id'] ?? hostname()
  const log = createLogger({ component: 'worker', level: values['log-level'], node: nodeId })
  try {
    const labels = parseLabels(values.label, '--label')
    const hb = values.heartbeat ?? '5000'
    const heartbeatMs = /^\d+$/.test(hb) ? Number(hb) : parseDuration(hb, '--heartbeat')
    const bus = await createNatsBus({ url: values.nats, name: `apiary-worker:${nodeId}`, log })
    const worker = startWorker({ bus, log, nodeId, region: values.region ?? 'default', labels, heartbeatMs })
    log.info({ region: values.region, labels }, 'worker ready')
    closeOnSignals(log, async () => {
      await worker.close()
      await bus.close()
      log.flush()
    }, (code) => process.exit(code))
    return -1
  } catch (err) {
    process.stderr.write(`apiary-worker: ${errorMessage(err)}\n`)
    log.flush()
    return isApiaryError(err, 'invalid_input') ? 2 : 1
  }
}

const code = await main()
if (code >= 0) process.exitCode = code
