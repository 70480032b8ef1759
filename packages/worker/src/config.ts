import { hostname } from 'node:os'
import { ApiaryError, NodeId, parseOrThrow, Region } from '@apiary/shared'
import {
  DAEMON_OPTIONS,
  defaultStateDir,
  NATS_CONNECT_OPTIONS,
  type NatsConnectFlags,
  natsConnectOptionsFrom,
  OPS_OPTIONS,
  type OpsFlags,
  opsOptionsFrom,
  type OptionTable,
  type OptionValues,
  parseLabels,
  requiredNatsUrl,
  requiredQueenKey,
  SSH_POOL_OPTIONS,
  type SshPoolFlags,
  sshPoolOptionsFrom,
  withHelpPrefix,
} from '@apiary/shared/runtime'
import { DEFAULT_JOURNAL_ENTRIES, journalDir } from './journal.ts'

export const WORKER_OPTIONS = {
  nats: DAEMON_OPTIONS.nats,
  ...NATS_CONNECT_OPTIONS,
  'queen-key': DAEMON_OPTIONS['queen-key'],
  region: { type: 'string', env: 'APIARY_REGION', default: 'default', value: 'R', help: 'the region whose hive sends this worker tasks' },
  heartbeat: DAEMON_OPTIONS.heartbeat,
  'state-dir': {
    type: 'string',
    env: 'APIARY_STATE_DIR',
    value: 'DIR',
    help: 'where the worker keeps its journal of the tasks it took, in worker-<node-id> or ssh-worker-<id> (mode 0700), so that a restart runs none twice (default $XDG_STATE_HOME/apiary)',
  },
  'journal-entries': {
    type: 'int',
    env: 'APIARY_JOURNAL_ENTRIES',
    min: 1,
    max: 10_000_000,
    default: String(DEFAULT_JOURNAL_ENTRIES),
    value: 'N',
    help: 'the most tasks the journal remembers; past it the oldest are forgotten, with a warning (a re-offer of one would run it again)',
  },
  'node-id': { type: 'string', env: 'APIARY_NODE_ID', value: 'ID', help: 'agent mode: this node’s id, as its NATS credential was issued (default: the host name)' },
  label: { type: 'string', multiple: true, env: 'APIARY_LABELS', value: 'K=V', help: 'agent mode: a label for targeting, repeatable (env: comma-separated)' },
  'run-as': {
    type: 'string',
    env: 'APIARY_RUN_AS',
    value: 'USER',
    help: 'agent mode: run commands as this user (its uid and primary group, HOME, USER, LOGNAME), not as the worker, so that they cannot read its credentials or journal; the worker must run as root or hold CAP_SETUID and CAP_SETGID',
  },
  ssh: { type: 'boolean', help: 'SSH mode: reach the region’s inventory nodes over SSH instead of running tasks here' },
  inventory: { type: 'string', env: 'APIARY_INVENTORY', value: 'FILE', help: 'SSH mode: the inventory (YAML or JSON); re-read on change and on SIGHUP' },
  id: {
    type: 'string',
    env: 'APIARY_WORKER_ID',
    value: 'ID',
    help: 'SSH mode: this worker’s id, as its NATS credential was issued; its journal goes by it, so give one that outlives a restart (default ssh-<region>-<host>-<pid>)',
  },
  ...withHelpPrefix('SSH mode: ', SSH_POOL_OPTIONS),
  ...OPS_OPTIONS,
  'log-level': DAEMON_OPTIONS['log-level'],
  help: DAEMON_OPTIONS.help,
} as const satisfies OptionTable

/** apiary-worker's settings, every default filled in: an agent, or an SSH worker with its pool. */
export type WorkerDaemonConfig = Readonly<
  {
    natsUrl: string
    /** How the NATS connection authenticates, and whether over TLS. */
    nats: Readonly<NatsConnectFlags>
    /** `--queen-key` as given: the key itself or the file holding it (read at start). */
    queenKey: string
    region: string
    heartbeatMs: number
    /** `--state-dir`: 0700 and the worker's own, checked at start. */
    stateDir: string
    /** This worker's journal: its directory (`journalDir` of `--state-dir` and its id) and bound. */
    journal: Readonly<{ dir: string; maxEntries: number }>
    /** Its metrics port (if any) and drain grace. */
    ops: Readonly<OpsFlags>
  } & WorkerMode
>

/** An agent for this node, or an SSH worker with its pool. */
type WorkerMode =
  /** `runAs`: the user of `--run-as`, looked up at start (`resolveRunAs`). */
  | { mode: 'agent'; nodeId: string; labels: Readonly<Record<string, string>>; runAs: string | undefined }
  | { mode: 'ssh'; id: string; inventoryFile: string; pool: Readonly<SshPoolFlags> }

/**
 * @example parseWorkerConfig(values, process.env).mode // 'agent'
 * @param self what the default ids are made of
 */
export function parseWorkerConfig(
  v: OptionValues<typeof WORKER_OPTIONS>,
  env: NodeJS.ProcessEnv,
  self: { host: string; pid: number } = { host: hostname(), pid: process.pid },
): WorkerDaemonConfig {
  const natsUrl = requiredNatsUrl(v.nats, 'the worker meets its hive on NATS')
  const region = parseOrThrow(Region, v.region, '--region')
  let mode: WorkerMode
  if (!v.ssh) {
    const runAs = v['run-as']?.trim()
    if (runAs === '') throw new ApiaryError('invalid_input', '--run-as: give a user name or uid', '--run-as')
    mode = { mode: 'agent', nodeId: parseOrThrow(NodeId, v['node-id'] ?? self.host, '--node-id'), labels: Object.freeze(parseLabels(v.label, '--label')), runAs }
  } else {
    // An SSH worker's commands run on other machines, as the inventory's users.
    if (v['run-as'] !== undefined) throw new ApiaryError('invalid_input', '--run-as is for agent mode; with --ssh commands run as the inventory’s users', '--run-as')
    if (!v.inventory) throw new ApiaryError('invalid_input', '--inventory (or APIARY_INVENTORY) is required with --ssh', '--inventory')
    mode = {
      mode: 'ssh',
      id: parseOrThrow(NodeId, v.id ?? `ssh-${region}-${self.host.split('.')[0]}-${self.pid}`, '--id'),
      inventoryFile: v.inventory,
      pool: sshPoolOptionsFrom(v, env),
    }
  }
  const nats = natsConnectOptionsFrom(v)
  const ops = opsOptionsFrom(v)
  const stateDir = v['state-dir'] ?? defaultStateDir(env)
  const journal = Object.freeze({
    dir: mode.mode === 'agent' ? journalDir(stateDir, 'worker', mode.nodeId) : journalDir(stateDir, 'ssh-worker', mode.id),
    maxEntries: v['journal-entries'],
  })
  // Last, so that a mistake in any other flag is named first.
  return Object.freeze({ natsUrl, nats, queenKey: requiredQueenKey(v['queen-key']), region, heartbeatMs: v.heartbeat, stateDir, journal, ops, ...mode })
}
