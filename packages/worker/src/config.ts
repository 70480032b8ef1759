import { hostname } from 'node:os'
import { ApiaryError, NodeId, parseOrThrow, Region } from '@apiary/shared'
import {
  DAEMON_OPTIONS,
  type OptionTable,
  type OptionValues,
  parseLabels,
  requiredNatsUrl,
  SSH_POOL_OPTIONS,
  type SshPoolFlags,
  sshPoolOptionsFrom,
  withHelpPrefix,
} from '@apiary/shared/runtime'

export const WORKER_OPTIONS = {
  nats: DAEMON_OPTIONS.nats,
  region: { type: 'string', env: 'APIARY_REGION', default: 'default', value: 'R', help: 'the region whose hive sends this worker tasks' },
  heartbeat: DAEMON_OPTIONS.heartbeat,
  'node-id': { type: 'string', env: 'APIARY_NODE_ID', value: 'ID', help: 'agent mode: this node’s id (default: the host name)' },
  label: { type: 'string', multiple: true, env: 'APIARY_LABELS', value: 'K=V', help: 'agent mode: a label for targeting, repeatable (env: comma-separated)' },
  ssh: { type: 'boolean', help: 'SSH mode: reach the region’s inventory nodes over SSH instead of running tasks here' },
  inventory: { type: 'string', env: 'APIARY_INVENTORY', value: 'FILE', help: 'SSH mode: the inventory (YAML or JSON); re-read on change and on SIGHUP' },
  id: { type: 'string', env: 'APIARY_WORKER_ID', value: 'ID', help: 'SSH mode: this worker’s id (default ssh-<region>-<host>-<pid>)' },
  ...withHelpPrefix('SSH mode: ', SSH_POOL_OPTIONS),
  'log-level': DAEMON_OPTIONS['log-level'],
  help: DAEMON_OPTIONS.help,
} as const satisfies OptionTable

/** apiary-worker's settings, every default filled in: an agent, or an SSH worker with its pool. */
export type WorkerDaemonConfig = Readonly<
  { natsUrl: string; region: string; heartbeatMs: number } & (
    | { mode: 'agent'; nodeId: string; labels: Readonly<Record<string, string>> }
    | { mode: 'ssh'; id: string; inventoryFile: string; pool: Readonly<SshPoolFlags> }
  )
>

/**
 * @example parseWorkerConfig(values, process.env).mode // 'agent'
 * @param self what the default ids are made of
 */
export function parseWorkerConfig(
  v: OptionValues<typeof WORKER_OPTIONS>,
  env: NodeJS.ProcessEnv,
  self: { host: string; pid: number } = { host: hostname(), pid: process.pid },
): WorkerDaemonConfig {
  const common = { natsUrl: requiredNatsUrl(v.nats, 'the worker meets its hive on NATS'), region: parseOrThrow(Region, v.region, '--region'), heartbeatMs: v.heartbeat }
  if (!v.ssh) {
    return Object.freeze({
      ...common,
      mode: 'agent',
      nodeId: parseOrThrow(NodeId, v['node-id'] ?? self.host, '--node-id'),
      labels: Object.freeze(parseLabels(v.label, '--label')),
    })
  }
  if (!v.inventory) throw new ApiaryError('invalid_input', '--inventory (or APIARY_INVENTORY) is required with --ssh', '--inventory')
  return Object.freeze({
    ...common,
    mode: 'ssh',
    id: parseOrThrow(NodeId, v.id ?? `ssh-${common.region}-${self.host.split('.')[0]}-${self.pid}`, '--id'),
    inventoryFile: v.inventory,
    pool: sshPoolOptionsFrom(v, env),
  })
}
