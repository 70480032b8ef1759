import { join } from 'node:path'
import { DAEMON_OPTIONS, defaultStateDir, type OptionTable, type OptionValues } from '@apiary/shared/runtime'

export const QUEEN_OPTIONS = {
  nats: { ...DAEMON_OPTIONS.nats, help: 'NATS server to meet hives and workers on; without it, an in-process bus (no remote hives or workers)' },
  host: { type: 'string', env: 'APIARY_HOST', default: '127.0.0.1', value: 'ADDR', help: 'address the HTTP API listens on' },
  port: { type: 'int', min: 0, max: 65535, env: 'APIARY_PORT', default: '7070', value: 'PORT', help: 'port the HTTP API listens on (0 picks a free one)' },
  'state-dir': { type: 'string', env: 'APIARY_STATE_DIR', value: 'DIR', help: 'where the job database and token live (default $XDG_STATE_HOME/apiary)' },
  'token-file': { type: 'string', env: 'APIARY_TOKEN_FILE', value: 'FILE', help: 'API token file, mode 0600, created on first start (default <state dir>/token)' },
  inventory: { type: 'string', env: 'APIARY_INVENTORY', value: 'FILE', help: 'agentless (SSH) nodes, YAML or JSON; re-read on change and on SIGHUP, a bad version is refused' },
  'log-level': DAEMON_OPTIONS['log-level'],
  help: DAEMON_OPTIONS.help,
} as const satisfies OptionTable

/** apiary-queen's settings, every default filled in. */
export interface QueenDaemonConfig {
  /** Undefined: an in-process bus. */
  readonly natsUrl: string | undefined
  readonly host: string
  readonly port: number
  readonly stateDir: string
  readonly tokenFile: string
  readonly inventoryFile: string | undefined
}

/** @example parseQueenConfig(parseCommandLine('apiary-queen', QUEEN_OPTIONS, argv, env).values, env).port // 7070 */
export function parseQueenConfig(v: OptionValues<typeof QUEEN_OPTIONS>, env: NodeJS.ProcessEnv): QueenDaemonConfig {
  const stateDir = v['state-dir'] ?? defaultStateDir(env)
  return Object.freeze({
    natsUrl: v.nats,
    host: v.host,
    port: v.port,
    stateDir,
    tokenFile: v['token-file'] ?? join(stateDir, 'token'),
    inventoryFile: v.inventory,
  })
}
