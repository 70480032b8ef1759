/**
 * Every NATS subject apiary uses. This is the only place the `apiary.` prefix is spelled.
 *
 * The region and the node sit in the subject wherever a permission must depend on them, so
 * nats-server can enforce least privilege (see `permissionsFor` in trust/identity.ts): a
 * worker of node N in region R may receive only `task.R.N`, publish only `ev.R.N.*`.
 *
 * Ids are validated by their schemas (see schema/ids.ts) before they get here; node ids may
 * hold dots (host names), which NATS reads as token separators, so tokens are escaped:
 * `%` → `%25`, `.` → `%2E`. Anything else a subject cannot hold is rejected.
 */
import { ApiaryError } from './errors.ts'

const PREFIX = 'apiary'

/** One subject token for an id: escaped so that a dot in a host name stays one token. */
export function subjectToken(value: string, what: string): string {
  if (value.length === 0 || /[\s*>]/.test(value)) {
    throw new ApiaryError('invalid_input', `${what} "${value}" cannot be used in a subject`, what)
  }
  return value.replaceAll('%', '%25').replaceAll('.', '%2E')
}

/** The id a subject token stands for (the inverse of `subjectToken`). */
export function fromSubjectToken(tok: string): string {
  return tok.replaceAll('%2E', '.').replaceAll('%25', '%')
}

const t = subjectToken

export type Role = 'queen' | 'hive' | 'worker' | 'ssh-worker'

export const subjects = {
  prefix: PREFIX,
  /** queen → the hives of one region (queue group `hiveQueue(region)`), request/ack: a share's first chunk. */
  hiveJobs: (region: string) => `${PREFIX}.hive.${t(region, 'region')}.jobs`,
  hiveQueue: (region: string) => `hive.${t(region, 'region')}`,
  /** queen → the one hive that took a share: the share's further chunks, request/ack. */
  hiveChunks: (region: string, hiveId: string) => `${PREFIX}.hive.${t(region, 'region')}.chunk.${t(hiveId, 'hive id')}`,
  /** hive → the agent worker of one node, request/ack. */
  task: (region: string, node: string) => `${PREFIX}.task.${t(region, 'region')}.${t(node, 'node id')}`,
  /** hive → the SSH workers of a region (queue group `sshQueue(region)`), request/ack. */
  ssh: (region: string) => `${PREFIX}.ssh.${t(region, 'region')}`,
  sshQueue: (region: string) => `ssh.${t(region, 'region')}`,
  /** the agent worker of a node → queen and hive: that node's events of one job. */
  nodeEvents: (region: string, node: string, jobId: string) => `${PREFIX}.ev.${t(region, 'region')}.${t(node, 'node id')}.${t(jobId, 'job id')}`,
  /**
   * an SSH worker → queen and hive: an agentless node's events of one job. Apart from the
   * agents' subject so that a region's SSH worker cannot speak for an agent node of its region.
   */
  sshEvents: (region: string, node: string, jobId: string) => `${PREFIX}.sev.${t(region, 'region')}.${t(node, 'node id')}.${t(jobId, 'job id')}`,
  /** hive → queen: what the hive decided about nodes of its region (never dispatched, undelivered, lost). */
  hiveEvents: (region: string, jobId: string) => `${PREFIX}.hev.${t(region, 'region')}.${t(jobId, 'job id')}`,
  /** What a hive hears of one job in its region: the node events, agent and agentless. */
  regionJobEvents: (region: string, jobId: string) => [
    `${PREFIX}.ev.${t(region, 'region')}.*.${t(jobId, 'job id')}`,
    `${PREFIX}.sev.${t(region, 'region')}.*.${t(jobId, 'job id')}`,
  ],
  /** What the queen hears: every node and hive event. */
  nodeEventsAll: `${PREFIX}.ev.*.*.*`,
  sshEventsAll: `${PREFIX}.sev.*.*.*`,
  hiveEventsAll: `${PREFIX}.hev.*.*`,
  /** the leader queen → every queen: the numbered job log (stream APIARY_LOG), one record per group commit. */
  log: `${PREFIX}.log`,
  /** What the stream APIARY_EVENTS stores: every node event (agent and agentless) and hive verdict. */
  eventsStream: [`${PREFIX}.ev.>`, `${PREFIX}.sev.>`, `${PREFIX}.hev.>`],
  /** queen → hives, workers: halt and cancel, signed by the queen. */
  control: (jobId: string) => `${PREFIX}.control.${t(jobId, 'job id')}`,
  controlAll: `${PREFIX}.control.*`,
  /** workers, hives → queen, directly: heartbeat. */
  heartbeat: (role: Exclude<Role, 'queen'>, region: string, id: string) => `${PREFIX}.hb.${t(role, 'role')}.${t(region, 'region')}.${t(id, 'id')}`,
  heartbeatAll: `${PREFIX}.hb.*.*.*`,
  /**
   * The reply inbox prefix of one identity (`_INBOX.<role>.<region>.<id>`, the queen's
   * `_INBOX.queen.<id>`): replies to its requests come only there, never through the shared
   * `_INBOX.>`.
   */
  inboxPrefix: (role: Role, id: string, region?: string) =>
    role === 'queen' ? `_INBOX.queen.${t(id, 'id')}` : `_INBOX.${t(role, 'role')}.${t(region ?? '', 'region')}.${t(id, 'id')}`,
} as const

/** Splits an apiary subject into its tokens after the prefix, unescaped; undefined for another prefix. */
export function parseSubject(subject: string): string[] | undefined {
  const toks = subject.split('.')
  if (toks[0] !== PREFIX) return undefined
  return toks.slice(1).map(fromSubjectToken)
}
