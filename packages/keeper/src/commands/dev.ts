import { ApiaryError } from '@apiary/shared'
import { createLogger, DAEMON_OPTIONS, type OptionTable, SSH_OPTIONS, sshPoolOptionsFrom } from '@apiary/shared/runtime'
import { defineCommand } from '../cli/command.ts'
import { EXIT, stateDirOf, tokenFileOf } from '../cli/context.ts'
import { loadEmbedded } from '../cli/load-embedded.ts'

const DEV_OPTIONS = {
  workers: { type: 'int', min: 0, max: 1000, help: 'local workers, nodes local-1 … local-N (default 3, or 0 with --inventory)' },
  inventory: { type: 'string', env: 'APIARY_INVENTORY', value: 'FILE', help: 'agentless nodes to reach over SSH from this process (YAML or JSON)' },
  ...SSH_OPTIONS,
  port: { type: 'int', min: 0, max: 65535, env: 'APIARY_PORT', value: 'PORT', help: 'port of the HTTP API (default 7070 when serving, a free one for a single command)' },
  heartbeat: { ...DAEMON_OPTIONS.heartbeat, help: 'heartbeat interval of the workers' },
  'log-level': { ...DAEMON_OPTIONS['log-level'], default: 'warn', help: 'log level of the cluster (logs go to stderr)' },
} as const satisfies OptionTable

export const dev = defineCommand({
  name: 'dev',
  summary: 'the embedded cluster: queen, hive and local workers in this process',
  usage: 'keeper dev [--workers N] [--port P]            serve until Ctrl-C\n       keeper dev [--workers N] COMMAND [ARGS…]      run one keeper command on a fresh embedded cluster, then stop',
  options: DEV_OPTIONS,
  args: 'subcommand',
  async run({ subcommand, values: v, globals, io, keeper }) {
    const serving = subcommand.length === 0
    const [name] = subcommand
    if (name !== undefined && (name === 'dev' || !keeper.commands.includes(name))) {
      throw new ApiaryError('invalid_input', `keeper dev: "${name}" is not a keeper command (see keeper --help)`, 'command')
    }
    // `keeper dev run --help` is the help of run: no cluster to start for it.
    const own = subcommand.slice(0, subcommand.includes('--') ? subcommand.indexOf('--') : subcommand.length)
    if (own.includes('--help') || own.includes('-h')) return keeper.dispatch(subcommand, io, globals)
    const stateDir = stateDirOf(globals, io.env)
    const tokenFile = tokenFileOf(globals, io.env)
    const inventoryFile = v.inventory
    const workers = v.workers ?? (inventoryFile ? 0 : 3)
    const log = createLogger({ component: 'keeper-dev', level: v['log-level'] })
    const startEmbedded = await loadEmbedded()
    const region = 'default'
    const cluster = await startEmbedded({
      log,
      queen: { stateDir, tokenFile, host: '127.0.0.1', port: v.port ?? (serving ? 7070 : 0), ...(inventoryFile ? { inventoryFile } : {}) },
      defaults: { region, heartbeatMs: v.heartbeat },
      hives: [{ hiveId: `hive-${region}-embedded` }],
      sshWorkers: inventoryFile ? [{ id: `ssh-${region}-embedded`, inventoryFile, pool: sshPoolOptionsFrom(v, io.env) }] : [],
      workers: Array.from({ length: workers }, (_, k) => ({ nodeId: `local-${k + 1}`, labels: { role: 'dev', index: String(k + 1) } })),
    })
    if (serving) {
      const agentless = inventoryFile ? `, inventory ${inventoryFile} over SSH` : ''
      await io.err.line(`apiary embedded cluster: queen on ${cluster.queen.url}, ${workers} local worker${workers === 1 ? '' : 's'}${agentless}, state in ${stateDir}`)
      await io.err.line(`web console: ${cluster.queen.url}/ui/ (sign in with the token in ${tokenFile})`)
      await io.err.line(`in another terminal: keeper nodes · keeper run -- uname -a · keeper jobs   (Ctrl-C stops)`)
      await new Promise<void>((resolve) => io.interrupt.addEventListener('abort', () => resolve(), { once: true }))
      await cluster.close()
      log.flush()
      return EXIT.ok
    }
    try {
      return await keeper.dispatch(subcommand, io, { ...globals, queen: cluster.queen.url, 'token-file': tokenFile })
    } finally {
      await cluster.close()
      log.flush()
    }
  },
})
