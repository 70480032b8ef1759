import { join } from 'node:path'
import {
  ApiaryError,
  closeOnSignals,
  createLogger,
  createMemoryBus,
  createNatsBus,
  defaultStateDir,
  errorMessage,
  type OptionTable,
  optionsHelp,
  parseCommandLine,
  parseIntFlag,
} from '@apiary/shared'
import { startQueen } from './index.ts'

const OPTIONS = {
  nats: { type: 'string', env: 'APIARY_NATS_URL', value: 'URL', help: 'NATS server to meet hives and workers on; without it, an in-process bus (no remote hives or workers)' },
  host: { type: 'string', env: 'APIARY_HOST', default: '127.0.0.1', value: 'ADDR', help: 'address the HTTP API listens on' },
  port: { type: 'string', env: 'APIARY_PORT', default: '7070', value: 'PORT', help: 'port the HTTP API listens on (0 picks a free one)' },
  'state-dir': { type: 'string', env: 'APIARY_STATE_DIR', value: 'DIR', help: 'where the job database and token live (default $XDG_STATE_HOME/apiary)' },
  'token-file': { type: 'string', env: 'APIARY_TOKEN_FILE', value: 'FILE', help: 'API token file, mode 0600, created on first start (default <state dir>/token)' },
  'log-level': { type: 'string', env: 'APIARY_LOG_LEVEL', default: 'info', value: 'LEVEL', help: 'trace, debug, info, warn or error' },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
} satisfies OptionTable

const USAGE = `apiary-queen: the HTTP API, job store and event log of an apiary cluster

usage: apiary-queen [--nats URL] [--host ADDR] [--port PORT] [--state-dir DIR]

options:
${optionsHelp(OPTIONS)}
`

async function main(): Promise<number> {
  let values
  try {
    values = parseCommandLine('apiary-queen', OPTIONS, process.argv.slice(2), process.env).values
  } catch (err) {
    process.stderr.write(`apiary-queen: ${errorMessage(err)}\n`)
    return 2
  }
  if (values.help) {
    process.stdout.write(USAGE)
    return 0
  }
  const log = createLogger({ component: 'queen', level: values['log-level'] })
  try {
    const port = parseIntFlag(values.port ?? '7070', '--port', 0, 65535)
    const stateDir = values['state-dir'] ?? defaultStateDir(process.env)
    const bus = values.nats
      ? await createNatsBus({ url: values.nats, name: 'apiary-queen', log })
      : createMemoryBus(log)
    if (!values.nats) log.warn('no --nats given: using an in-process bus, so no hive or worker can reach this queen (use keeper dev for a one-process cluster)')
    const queen = await startQueen({
      bus,
      log,
      stateDir,
      host: values.host ?? '127.0.0.1',
      port,
      tokenFile: values['token-file'] ?? join(stateDir, 'token'),
    })
    closeOnSignals(log, async () => {
      await queen.close()
      await bus.close()
      log.flush()
    }, (code) => process.exit(code))
    return -1
  } catch (err) {
    const code = err instanceof ApiaryError && err.code === 'invalid_input' ? 2 : 1
    log.fatal({ err }, errorMessage(err))
    process.stderr.write(`apiary-queen: ${errorMessage(err)}\n`)
    log.flush()
    return code
  }
}

const code = await main()
if (code >= 0) process.exitCode = code
