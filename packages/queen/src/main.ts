import { join } from 'node:path'
import {
  createMemoryBus,
  createNatsBus,
  defaultStateDir,
  type OptionTable,
  parseIntFlag,
  runProgram,
} from '@apiary/shared'
import { startQueen } from './index.ts'

const OPTIONS = {
  nats: { type: 'string', env: 'APIARY_NATS_URL', value: 'URL', help: 'NATS server to meet hives and workers on; without it, an in-process bus (no remote hives or workers)' },
  host: { type: 'string', env: 'APIARY_HOST', default: '127.0.0.1', value: 'ADDR', help: 'address the HTTP API listens on' },
  port: { type: 'string', env: 'APIARY_PORT', default: '7070', value: 'PORT', help: 'port the HTTP API listens on (0 picks a free one)' },
  'state-dir': { type: 'string', env: 'APIARY_STATE_DIR', value: 'DIR', help: 'where the job database and token live (default $XDG_STATE_HOME/apiary)' },
  'token-file': { type: 'string', env: 'APIARY_TOKEN_FILE', value: 'FILE', help: 'API token file, mode 0600, created on first start (default <state dir>/token)' },
  inventory: { type: 'string', env: 'APIARY_INVENTORY', value: 'FILE', help: 'agentless (SSH) nodes, YAML or JSON; re-read on change and on SIGHUP, a bad version is refused' },
  'log-level': { type: 'string', env: 'APIARY_LOG_LEVEL', default: 'info', value: 'LEVEL', help: 'trace, debug, info, warn or error' },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
} satisfies OptionTable

await runProgram({
  program: 'apiary-queen',
  component: 'queen',
  about: `apiary-queen: the HTTP API, job store and event log of an apiary cluster

usage: apiary-queen [--nats URL] [--host ADDR] [--port PORT] [--state-dir DIR]`,
  options: OPTIONS,
  check: (v) => void parseIntFlag(v.port ?? '7070', '--port', 0, 65535),
  async start(v, log) {
    const stateDir = v['state-dir'] ?? defaultStateDir(process.env)
    const bus = v.nats ? await createNatsBus({ url: v.nats, name: 'apiary-queen', log }) : createMemoryBus(log)
    if (!v.nats) log.warn('no --nats given: using an in-process bus, so no hive or worker can reach this queen (use keeper dev for a one-process cluster)')
    const queen = await startQueen({
      bus,
      log,
      stateDir,
      host: v.host ?? '127.0.0.1',
      port: parseIntFlag(v.port ?? '7070', '--port', 0, 65535),
      tokenFile: v['token-file'] ?? join(stateDir, 'token'),
      ...(v.inventory ? { inventoryFile: v.inventory } : {}),
    })
    process.on('SIGHUP', () => void queen.reloadInventory())
    return {
      async close() {
        await queen.close()
        await bus.close()
      },
    }
  },
})
