import { hostname } from 'node:os'
import { createNatsBus, NodeId, type OptionTable, parseLabels, parseMsFlag, parseOrThrow, Region, runProgram } from '@apiary/shared'
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

await runProgram({
  program: 'apiary-worker',
  component: 'worker',
  about: `apiary-worker: runs tasks on this node and heartbeats to the queen

usage: apiary-worker --nats URL [--node-id ID] [--region R] [--label k=v ...]`,
  options: OPTIONS,
  check(v) {
    if (!v.nats) throw new Error('--nats (or APIARY_NATS_URL) is required: the worker meets its hive on NATS')
    parseOrThrow(NodeId, v['node-id'] ?? hostname(), '--node-id')
    parseOrThrow(Region, v.region, '--region')
    parseLabels(v.label, '--label')
    parseMsFlag(v.heartbeat ?? '5000', '--heartbeat')
  },
  async start(v, log) {
    const nodeId = v['node-id'] ?? hostname()
    const labels = parseLabels(v.label, '--label')
    const region = v.region ?? 'default'
    const bus = await createNatsBus({ url: v.nats!, name: `apiary-worker:${nodeId}`, log })
    const worker = startWorker({ bus, log, nodeId, region, labels, heartbeatMs: parseMsFlag(v.heartbeat ?? '5000', '--heartbeat') })
    log.info({ node: nodeId, region, labels }, 'worker ready')
    return {
      async close() {
        await worker.close()
        await bus.close()
      },
    }
  },
})
