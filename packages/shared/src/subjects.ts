/**
 * Every NATS subject apiary uses. This is the only place the `apiary.` prefix is spelled.
 *
 * Ids are validated by their schemas (see schema/ids.ts) before they get here; node ids may
 * hold dots (host names), which NATS reads as token separators, so tokens are escaped:
 * `%` → `%25`, `.` → `%2E`. Anything else a subject cannot hold is rejected.
 */
import { ApiaryError } from './errors.ts'

const PREFIX = 'apiary'

function token(value: string, what: string): string {
  if (value.length === 0 || /[\s*>]/.test(value)) {
    throw new ApiaryError('invalid_input', `${what} "${value}" cannot be used in a subject`, what)
  }
  return value.replaceAll('%', '%25').replaceAll('.', '%2E')
}

export const subjects = {
  /** queen → the hives of one region (queue group `hiveQueue(region)`), request/ack. */
  hiveJobs: (region: string) => `${PREFIX}.hive.${token(region, 'region')}.jobs`,
  hiveQueue: (region: string) => `hive.${token(region, 'region')}`,
  /** hive → the agent worker of one node, request/ack. */
  nodeTasks: (nodeId: string) => `${PREFIX}.node.${token(nodeId, 'node id')}.tasks`,
  /** hive → the SSH workers of a region (queue group), request/ack. */
  regionSsh: (region: string) => `${PREFIX}.region.${token(region, 'region')}.ssh`,
  /** workers, hives, queen → queen (and hive): the events of one job. */
  events: (jobId: string) => `${PREFIX}.events.${token(jobId, 'job id')}`,
  eventsAll: `${PREFIX}.events.*`,
  /** queen → hives, workers: cancel. */
  control: (jobId: string) => `${PREFIX}.control.${token(jobId, 'job id')}`,
  controlAll: `${PREFIX}.control.*`,
  /** workers, hives → queen, directly: heartbeat. */
  heartbeat: (role: string, id: string) => `${PREFIX}.hb.${token(role, 'role')}.${token(id, 'id')}`,
  heartbeatAll: `${PREFIX}.hb.>`,
} as const
