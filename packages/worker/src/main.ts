import { homedir, hostname } from 'node:os'
import { join } from 'node:path'
import {
  ApiaryError,
  createNatsBus,
  NodeId,
  type OptionTable,
  parseIntFlag,
  parseLabels,
  parseMsFlag,
  parseOrThrow,
  Region,
  runProgram,
  watchInventory,
} from '@apiary/shared'
import { createSshPool, startSshWorker, startWorker } from './index.ts'

const OPTIONS = {
  nats: { type: 'string', env: 'APIARY_NATS_URL', value: 'URL', help: 'NATS server of the cluster (required)' },
  region: { type: 'string', env: 'APIARY_REGION', default: 'default', value: 'R', help: 'the region whose hive sends this worker tasks' },
  heartbeat: { type: 'string', env: 'APIARY_HEARTBEAT_MS', default: '5000', value: 'MS', help: 'heartbeat interval (ms, or a duration like 5s)' },
  'node-id': { type: 'string', env: 'APIARY_NODE_ID', value: 'ID', help: 'agent mode: this node’s id (default: the host name)' },
  label: { type: 'string', multiple: true, env: 'APIARY_LABELS', value: 'K=V', help: 'agent mode: a label for targeting, repeatable (env: comma-separated)' },
  ssh: { type: 'boolean', help: 'SSH mode: reach the region’s inventory nodes over SSH instead of running tasks here' },
  inventory: { type: 'string', env: 'APIARY_INVENTORY', value: 'FILE', help: 'SSH mode: the inventory (YAML or JSON); re-read on change and on SIGHUP' },
  id: { type: 'string', env: 'APIARY_WORKER_ID', value: 'ID', help: 'SSH mode: this worker’s id (default ssh-<region>-<host>-<pid>)' },
  'known-hosts': { type: 'string', env: 'APIARY_KNOWN_HOSTS', value: 'FILE', help: 'SSH mode: OpenSSH known_hosts (default ~/.ssh/known_hosts)' },
  'host-key-policy': { type: 'string', default: 'strict', value: 'POLICY', help: 'SSH mode: strict (unknown keys refused) or accept-new (recorded)' },
  identity: { type: 'string', env: 'APIARY_SSH_IDENTITY', value: 'FILE', help: 'SSH mode: private key for nodes whose inventory names none (else SSH_AUTH_SOCK)' },
  'passphrase-file': { type: 'string', value: 'FILE', help: 'SSH mode: file (mode 0600) with that key’s passphrase' },
  'max-per-host': { type: 'string', default: '2', value: 'N', help: 'SSH mode: connections to one host' },
  'max-connections': { type: 'string', default: '1024', value: 'N', help: 'SSH mode: connections in all' },
  'connect-timeout': { type: 'string', default: '10s', value: 'DUR', help: 'SSH mode: TCP connect, handshake and auth deadline' },
  'log-level': { type: 'string', env: 'APIARY_LOG_LEVEL', default: 'info', value: 'LEVEL', help: 'trace, debug, info, warn or error' },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
} satisfies OptionTable

const sshId = (v: { id: string | undefined; region: string | undefined }) => v.id ?? `ssh-${v.region ?? 'default'}-${hostname().split('.')[0]}-${process.pid}`

await runProgram({
  program: 'apiary-worker',
  component: 'worker',
  about: `apiary-worker: runs tasks on this node (agent mode), or reaches a region's nodes over SSH (--ssh)

usage: apiary-worker --nats URL [--node-id ID] [--region R] [--label k=v ...]
       apiary-worker --nats URL --ssh --inventory FILE [--region R] [--known-hosts FILE] [--identity KEY]`,
  options: OPTIONS,
  check(v) {
    if (!v.nats) throw new Error('--nats (or APIARY_NATS_URL) is required: the worker meets its hive on NATS')
    parseOrThrow(Region, v.region, '--region')
    parseMsFlag(v.heartbeat ?? '5000', '--heartbeat')
    if (v.ssh) {
      if (!v.inventory) throw new ApiaryError('invalid_input', '--inventory (or APIARY_INVENTORY) is required with --ssh', '--inventory')
      if (v['host-key-policy'] !== 'strict' && v['host-key-policy'] !== 'accept-new') {
        throw new ApiaryError('invalid_input', `--host-key-policy: "${v['host-key-policy']}" must be strict or accept-new`, '--host-key-policy')
      }
      parseOrThrow(NodeId, sshId(v), '--id')
      parseIntFlag(v['max-per-host'] ?? '2', '--max-per-host', 1, 64)
      parseIntFlag(v['max-connections'] ?? '1024', '--max-connections', 1, 100_000)
      parseMsFlag(v['connect-timeout'] ?? '10s', '--connect-timeout')
    } else {
      parseOrThrow(NodeId, v['node-id'] ?? hostname(), '--node-id')
      parseLabels(v.label, '--label')
    }
  },
  async start(v, log) {
    const region = v.region ?? 'default'
    const heartbeatMs = parseMsFlag(v.heartbeat ?? '5000', '--heartbeat')
    if (!v.ssh) {
      const nodeId = v['node-id'] ?? hostname()
      const labels = parseLabels(v.label, '--label')
      const bus = await createNatsBus({ url: v.nats!, name: `apiary-worker:${nodeId}`, log })
      const worker = startWorker({ bus, log, nodeId, region, labels, heartbeatMs })
      log.info({ node: nodeId, region, labels }, 'worker ready')
      return {
        async close() {
          await worker.close()
          await bus.close()
        },
      }
    }
    const id = sshId(v)
    const inventory = await watchInventory(v.inventory!, log)
    process.on('SIGHUP', () => void inventory.reload())
    const pool = createSshPool({
      knownHosts: v['known-hosts'] ?? join(homedir(), '.ssh', 'known_hosts'),
      hostKeyPolicy: v['host-key-policy'] === 'accept-new' ? 'accept-new' : 'strict',
      ...(v.identity ? { keyFile: v.identity } : {}),
      ...(v['passphrase-file'] ? { passphraseFile: v['passphrase-file'] } : {}),
      ...(process.env.SSH_AUTH_SOCK ? { agent: process.env.SSH_AUTH_SOCK } : {}),
      maxPerHost: parseIntFlag(v['max-per-host'] ?? '2', '--max-per-host', 1, 64),
      maxTotal: parseIntFlag(v['max-connections'] ?? '1024', '--max-connections', 1, 100_000),
      connectTimeoutMs: parseMsFlag(v['connect-timeout'] ?? '10s', '--connect-timeout'),
      log,
    })
    const bus = await createNatsBus({ url: v.nats!, name: `apiary-worker:${id}`, log })
    const worker = startSshWorker({ bus, log, id, region, heartbeatMs, inventory: () => inventory.nodes(), pool })
    log.info({ id, region, nodes: [...inventory.nodes().values()].filter((n) => n.region === region).length }, 'ssh worker ready')
    return {
      async close() {
        await worker.close()
        inventory.close()
        await pool.close()
        await bus.close()
      },
    }
  },
})
