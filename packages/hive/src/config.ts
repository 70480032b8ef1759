import { hostname } from 'node:os'
import { NodeId, parseOrThrow, Region } from '@apiary/shared'
import {
  DAEMON_OPTIONS,
  NATS_CONNECT_OPTIONS,
  type NatsConnectFlags,
  natsConnectOptionsFrom,
  OPS_OPTIONS,
  type OpsFlags,
  opsOptionsFrom,
  type OptionTable,
  type OptionValues,
  requiredNatsUrl,
  requiredQueenKey,
} from '@apiary/shared/runtime'

export const HIVE_OPTIONS = {
  nats: DAEMON_OPTIONS.nats,
  ...NATS_CONNECT_OPTIONS,
  'queen-key': DAEMON_OPTIONS['queen-key'],
  region: { type: 'string', env: 'APIARY_REGION', default: 'default', value: 'R', help: 'the region this hive rolls jobs out to' },
  id: { type: 'string', env: 'APIARY_HIVE_ID', value: 'ID', help: 'this hive’s id, as its NATS credential was issued (default: hive-<region>-<host>-<pid>)' },
  heartbeat: DAEMON_OPTIONS.heartbeat,
  ...OPS_OPTIONS,
  'log-level': DAEMON_OPTIONS['log-level'],
  help: DAEMON_OPTIONS.help,
} as const satisfies OptionTable

/** apiary-hive's settings, every default filled in. */
export interface HiveDaemonConfig {
  readonly natsUrl: string
  /** How the NATS connection authenticates, and whether over TLS. */
  readonly nats: Readonly<NatsConnectFlags>
  /** `--queen-key` as given: the key itself or the file holding it (read at start). */
  readonly queenKey: string
  readonly region: string
  readonly hiveId: string
  readonly heartbeatMs: number
  /** Its metrics port (if any) and drain grace. */
  readonly ops: Readonly<OpsFlags>
}

/**
 * @example parseHiveConfig(values, process.env).hiveId // 'hive-eu-box-4242'
 * @param self what the default id is made of
 */
export function parseHiveConfig(
  v: OptionValues<typeof HIVE_OPTIONS>,
  _env: NodeJS.ProcessEnv,
  self: { host: string; pid: number } = { host: hostname(), pid: process.pid },
): HiveDaemonConfig {
  const natsUrl = requiredNatsUrl(v.nats, 'the hive meets the queen and workers on NATS')
  const region = parseOrThrow(Region, v.region, '--region')
  const hiveId = parseOrThrow(NodeId, v.id ?? `hive-${region}-${self.host.split('.')[0]}-${self.pid}`, '--id')
  const nats = natsConnectOptionsFrom(v)
  const ops = opsOptionsFrom(v)
  return Object.freeze({ natsUrl, nats, queenKey: requiredQueenKey(v['queen-key']), region, hiveId, heartbeatMs: v.heartbeat, ops })
}
