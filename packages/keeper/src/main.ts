import { homedir } from 'node:os'
import { join } from 'node:path'
import {
  ApiaryError,
  createLogger,
  FINAL_STATES,
  type FinalState,
  type JobClient,
  type OptionTable,
  optionsHelp,
  parseCommandLine,
  parseIntFlag,
  parseMsFlag,
} from '@apiary/shared'
import { connectClient, cursorDirOf, EXIT, type Format, type GlobalValues, type Io, reportError, stateDirOf, tokenFileOf } from './cli/context.ts'
import { FOLLOW_OPTIONS, GLOBAL_OPTIONS, ROLLOUT_OPTIONS, RUN_OPTIONS } from './cli/options.ts'
import { checkAggregate, factsRender } from './commands/facts.ts'
import { cancelCommand, jobCommand, jobsCommand, logsCommand, nodesCommand, watchCommand } from './commands/inspect.ts'
import { buildRequest, execOperation, followCreated, type RunValues, submitAndFollow, withConfirmation } from './commands/run.ts'
import { LineWriter } from './render/output.ts'

interface Command {
  summary: string
  usage: string
  options: OptionTable
  /** What the positional arguments are; undefined = none allowed. */
  args?: 'command' | 'id' | 'subcommand'
  run(ctx: { g: GlobalValues; values: Record<string, unknown>; args: string[]; io: Io; client: () => Promise<JobClient> }): Promise<number>
}

const COMMANDS: Record<string, Command> = {
  run: {
    summary: 'run a command on many nodes and follow it live',
    usage: 'keeper run [--targets SEL] [--concurrency N|P%] [--max-errors N|P%] [--canary N] [--timeout 30s] [--plan] [--yes] [-o FORMAT] -- CMD ARGS…',
    options: RUN_OPTIONS,
    args: 'command',
    async run({ g, values, args, io, client }) {
      const v = values as never as RunValues
      const req = buildRequest(v, execOperation(args, v.shell))
      return submitAndFollow(await client(), io, v, req, { cursorDir: cursorDirOf(g, io.env) })
    },
  },
  facts: {
    summary: 'collect typed facts (os, kernel, cpus, memory, load) from nodes',
    usage: 'keeper facts [--targets SEL] [--aggregate FIELD] [-o FORMAT]',
    options: {
      targets: RUN_OPTIONS.targets,
      aggregate: { type: 'string', value: 'FIELD', help: 'count nodes by one fact: kernel, os, arch, cpus.count, …' },
      ...ROLLOUT_OPTIONS,
      plan: RUN_OPTIONS.plan,
    },
    async run({ g, values, io, client }) {
      const v = { shell: false, 'output-cap': undefined, ...values } as never as RunValues & { aggregate: string | undefined }
      checkAggregate(v.aggregate)
      return submitAndFollow(await client(), io, v, buildRequest(v, { type: 'facts' }), { cursorDir: cursorDirOf(g, io.env), ...factsRender(io, v.aggregate) })
    },
  },
  rerun: {
    summary: 'run a job’s operation again on the nodes that ended in the given states',
    usage: 'keeper rerun ID [--only failed,error,timeout,lost] [--yes] [-o FORMAT]',
    options: {
      only: { type: 'string', value: 'STATES', default: 'failed,error,timeout,lost', help: 'which nodes of the original snapshot, by final state' },
      yes: ROLLOUT_OPTIONS.yes,
      ...FOLLOW_OPTIONS,
    },
    args: 'id',
    async run({ g, values, args, io, client }) {
      const only = String(values.only).split(',').map((s) => s.trim())
      const bad = only.find((s) => !(FINAL_STATES as readonly string[]).includes(s))
      if (bad !== undefined) throw new ApiaryError('invalid_input', `--only: "${bad}" is not a final state (${FINAL_STATES.join(', ')})`, '--only')
      const c = await client()
      const created = await withConfirmation(io, Boolean(values.yes), (confirm) => c.rerun(args[0]!, { only: only as FinalState[], ...(confirm ? { confirm } : {}) }))
      return followCreated(c, io, created.jobId, values as never, { cursorDir: cursorDirOf(g, io.env) })
    },
  },
  watch: {
    summary: 'reattach to a job and follow it to the end, from where keeper left off',
    usage: 'keeper watch ID [--no-group] [-o FORMAT]',
    options: FOLLOW_OPTIONS,
    args: 'id',
    async run({ g, values, args, io, client }) {
      return watchCommand(await client(), io, args[0]!, cursorDirOf(g, io.env), values as never)
    },
  },
  jobs: {
    summary: 'list recent jobs',
    usage: 'keeper jobs [--state running|ok|failed|cancelled] [--limit N] [-o FORMAT]',
    options: {
      state: { type: 'string', value: 'STATE', help: 'only jobs in this state' },
      limit: { type: 'string', value: 'N', default: '20', help: 'how many, newest first' },
    },
    async run({ values, io, client }) {
      return jobsCommand(await client(), io, values as never)
    },
  },
  job: {
    summary: 'show one job: its operation, rollout policy and every node’s state',
    usage: 'keeper job ID [-o FORMAT]',
    options: {},
    args: 'id',
    async run({ args, io, client }) {
      return jobCommand(await client(), io, args[0]!)
    },
  },
  logs: {
    summary: 'print the output of a job’s nodes; -f follows it live',
    usage: 'keeper logs ID [--node N] [-f] [-o FORMAT]',
    options: {
      node: { type: 'string', short: 'n', value: 'NODE', help: 'only this node’s output, without the node prefix' },
      follow: { type: 'boolean', short: 'f', help: 'follow the job until it finishes' },
    },
    args: 'id',
    async run({ values, args, io, client }) {
      return logsCommand(await client(), io, args[0]!, values as never)
    },
  },
  nodes: {
    summary: 'list nodes with their region, labels and presence',
    usage: 'keeper nodes [-o FORMAT]',
    options: {},
    async run({ io, client }) {
      return nodesCommand(await client(), io)
    },
  },
  cancel: {
    summary: 'cancel a job and wait until every node has confirmed',
    usage: 'keeper cancel ID [--no-wait]',
    options: { 'no-wait': { type: 'boolean', help: 'return once the cancel is requested' } },
    args: 'id',
    async run({ values, args, io, client }) {
      return cancelCommand(await client(), io, args[0]!, values as never)
    },
  },
  dev: {
    summary: 'the embedded cluster: queen, hive and local workers in this process',
    usage: 'keeper dev [--workers N] [--port P]            serve until Ctrl-C\n       keeper dev [--workers N] COMMAND [ARGS…]      run one keeper command on a fresh embedded cluster, then stop',
    options: {
      workers: { type: 'string', value: 'N', help: 'local workers, nodes local-1 … local-N (default 3, or 0 with --inventory)' },
      inventory: { type: 'string', env: 'APIARY_INVENTORY', value: 'FILE', help: 'agentless nodes to reach over SSH from this process (YAML or JSON)' },
      'known-hosts': { type: 'string', env: 'APIARY_KNOWN_HOSTS', value: 'FILE', help: 'OpenSSH known_hosts for --inventory (default ~/.ssh/known_hosts)' },
      'host-key-policy': { type: 'string', default: 'strict', value: 'POLICY', help: 'strict (unknown host keys refused) or accept-new (recorded)' },
      identity: { type: 'string', env: 'APIARY_SSH_IDENTITY', value: 'FILE', help: 'private key for inventory nodes that name none (else SSH_AUTH_SOCK)' },
      port: { type: 'string', env: 'APIARY_PORT', value: 'PORT', help: 'port of the HTTP API (default 7070 when serving, a free one for a single command)' },
      heartbeat: { type: 'string', env: 'APIARY_HEARTBEAT_MS', default: '5000', value: 'MS', help: 'heartbeat interval of the workers (ms, or 5s)' },
      'log-level': { type: 'string', env: 'APIARY_LOG_LEVEL', default: 'warn', value: 'LEVEL', help: 'log level of the cluster (logs go to stderr)' },
    },
    args: 'subcommand',
    async run({ g, values, args, io }) {
      const stateDir = stateDirOf(g, io.env)
      const tokenFile = tokenFileOf(g, io.env)
      const inventoryFile = values.inventory as string | undefined
      const workers = values.workers === undefined ? (inventoryFile ? 0 : 3) : parseIntFlag(String(values.workers), '--workers', 0, 1000)
      const policy = String(values['host-key-policy'])
      if (policy !== 'strict' && policy !== 'accept-new') throw new ApiaryError('invalid_input', `--host-key-policy: "${policy}" must be strict or accept-new`, '--host-key-policy')
      const heartbeatMs = parseMsFlag(String(values.heartbeat), '--heartbeat')
      const serving = args.length === 0
      const port = values.port === undefined ? (serving ? 7070 : 0) : parseIntFlag(String(values.port), '--port', 0, 65535)
      if (!serving && (args[0] === 'dev' || COMMANDS[args[0]!] === undefined)) {
        throw new ApiaryError('invalid_input', `keeper dev: "${args[0]}" is not a keeper command (see keeper --help)`, 'command')
      }
      const log = createLogger({ component: 'keeper-dev', level: String(values['log-level']) })
      // Loaded only here: the embedded cluster pulls in the queen, hive and workers.
      const { startEmbedded } = await loadEmbedded()
      const cluster = await startEmbedded({
        log,
        stateDir,
        tokenFile,
        host: '127.0.0.1',
        port,
        workers,
        nodePrefix: 'local',
        region: 'default',
        heartbeatMs,
        ...(inventoryFile
          ? {
              inventoryFile,
              ssh: {
                knownHosts: (values['known-hosts'] as string | undefined) ?? join(homedir(), '.ssh', 'known_hosts'),
                hostKeyPolicy: policy,
                ...(values.identity ? { identity: String(values.identity) } : {}),
                ...(io.env.SSH_AUTH_SOCK ? { agent: io.env.SSH_AUTH_SOCK } : {}),
              },
            }
          : {}),
      })
      if (serving) {
        const agentless = inventoryFile ? `, inventory ${inventoryFile} over SSH` : ''
        await io.err.line(`apiary embedded cluster: queen on ${cluster.queen.url}, ${workers} local worker${workers === 1 ? '' : 's'}${agentless}, state in ${stateDir}`)
        await io.err.line(`in another terminal: keeper nodes · keeper run -- uname -a · keeper jobs   (Ctrl-C stops)`)
        await new Promise<void>((resolve) => io.interrupt.addEventListener('abort', () => resolve(), { once: true }))
        await cluster.close()
        log.flush()
        return EXIT.ok
      }
      try {
        return await dispatch(args, io, { ...g, queen: cluster.queen.url, 'token-file': tokenFile })
      } finally {
        await cluster.close()
        log.flush()
      }
    },
  },
}

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length)) + 2
  return `keeper: the apiary operator's CLI — fan commands out across nodes and watch them live

usage: keeper [global flags] COMMAND [flags] [-- CMD ARGS…]

commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(width)}${c.summary}`)
  .join('\n')}

global flags:
${optionsHelp(GLOBAL_OPTIONS)}

exit codes: 0 every node ok · 1 some node not ok · 2 usage or input error ·
            3 cancelled or timed out · 4 cannot reach the queen · 130 detached (Ctrl-C)

examples:
  keeper dev run -- uname -n                       a fan-out on a throw-away embedded cluster
  keeper run --targets 'role=web,region=eu' -- systemctl is-active nginx
  keeper run --shell -- 'df -h / | tail -1'
  keeper facts --targets 'web-*'
  keeper logs JOB --node web-1

'keeper COMMAND --help' shows a command's flags.
`
}

function commandHelp(name: string, c: Command): string {
  return `keeper ${name}: ${c.summary}\n\nusage: ${c.usage}\n\nflags:\n${optionsHelp({ ...c.options, ...GLOBAL_OPTIONS })}\n`
}

async function dispatch(argv: string[], io: Io, inherited?: GlobalValues): Promise<number> {
  // Everything after the first `--` is the remote command, never keeper's flags.
  const dd = argv.indexOf('--')
  const before = dd < 0 ? argv : argv.slice(0, dd)
  const after = dd < 0 ? [] : argv.slice(dd + 1)
  const nameAt = before.findIndex((a, i) => !a.startsWith('-') && !isFlagValue(before, i, GLOBAL_OPTIONS))
  const name = nameAt < 0 ? undefined : before[nameAt]
  if (name === undefined) {
    const g = parseCommandLine('keeper', GLOBAL_OPTIONS, before, io.env)
    if (g.values.help || before.length === 0) {
      await io.out.line(usage())
      return before.length === 0 && !g.values.help ? EXIT.usage : EXIT.ok
    }
    throw new ApiaryError('invalid_input', 'no command given (see keeper --help)', 'command')
  }
  const cmd = COMMANDS[name]
  if (!cmd) throw new ApiaryError('invalid_input', `unknown command "${name}" (see keeper --help)`, 'command')
  const flags = [...before.slice(0, nameAt), ...before.slice(nameAt + 1)]
  // `keeper dev run …`: everything after the subcommand belongs to it.
  let sub: string[] = []
  let own = flags
  if (cmd.args === 'subcommand') {
    const subAt = flags.findIndex((a, i) => !a.startsWith('-') && !isFlagValue(flags, i, { ...cmd.options, ...GLOBAL_OPTIONS }))
    if (subAt >= 0) {
      own = flags.slice(0, subAt)
      sub = [...flags.slice(subAt), ...(dd < 0 ? [] : ['--', ...after])]
    }
  }
  const parsed = parseCommandLine(`keeper ${name}`, { ...cmd.options, ...GLOBAL_OPTIONS }, own, io.env, { positionals: true })
  const values = parsed.values as Record<string, unknown>
  if (values.help) {
    await io.out.line(commandHelp(name, cmd))
    return EXIT.ok
  }
  const format = formatOf(values)
  io = { ...io, format }
  const g: GlobalValues = {
    queen: inherited?.queen ?? (values.queen as string | undefined),
    'token-file': inherited?.['token-file'] ?? (values['token-file'] as string | undefined),
    'state-dir': (values['state-dir'] as string | undefined) ?? inherited?.['state-dir'],
  }
  let args: string[]
  switch (cmd.args) {
    case 'command':
      if (parsed.positionals.length > 0 && after.length > 0) {
        throw new ApiaryError('invalid_input', `unexpected "${parsed.positionals[0]}" before --: put the whole command after --`, 'command')
      }
      args = after.length > 0 ? after : parsed.positionals
      break
    case 'id':
      if (parsed.positionals.length !== 1 || after.length > 0) {
        throw new ApiaryError('invalid_input', `keeper ${name} takes one job id (usage: ${cmd.usage})`, 'id')
      }
      args = parsed.positionals
      break
    case 'subcommand':
      args = sub
      break
    default:
      if (parsed.positionals.length > 0 || after.length > 0) {
        throw new ApiaryError('invalid_input', `keeper ${name} takes no arguments (usage: ${cmd.usage})`, 'arguments')
      }
      args = []
  }
  return cmd.run({ g, values, args, io, client: () => connectClient(g, io.env) })
}

function formatOf(values: Record<string, unknown>): Format {
  if (values.json) return 'ndjson'
  const f = String(values.output ?? 'text')
  if (f !== 'text' && f !== 'json' && f !== 'ndjson') throw new ApiaryError('invalid_input', `-o: "${f}" must be text, json or ndjson`, '--output')
  return f
}

function isFlagValue(argv: string[], i: number, table: OptionTable): boolean {
  const prev = argv[i - 1]
  if (prev === undefined || !prev.startsWith('-') || prev.includes('=')) return false
  const name = prev.replace(/^-+/, '')
  const spec = table[name] ?? Object.values(table).find((s) => s.short === name)
  return spec?.type === 'string'
}

/**
 * The embedded cluster's code, from the TypeScript sources. The built keeper (dist/) does not
 * bundle it, so that every other command starts light; it loads tsx first to read them.
 */
async function loadEmbedded(): Promise<typeof import('./embedded.ts')> {
  const url = new URL('../src/embedded.ts', import.meta.url)
  if (!import.meta.url.endsWith('.ts')) {
    const { register } = await import('tsx/esm/api')
    register()
  }
  return (await import(url.href)) as typeof import('./embedded.ts')
}

/** One question on the terminal, one line of answer. */
async function ask(question: string): Promise<string> {
  const { createInterface } = await import('node:readline/promises')
  const rl = createInterface({ input: process.stdin, output: process.stdout })
  try {
    return await rl.question(question)
  } finally {
    rl.close()
  }
}

async function main(): Promise<number> {
  const interrupt = new AbortController()
  const tty = Boolean(process.stdout.isTTY)
  const io: Io = {
    out: new LineWriter(process.stdout),
    err: new LineWriter(process.stderr),
    env: process.env,
    interrupt: interrupt.signal,
    tty,
    color: tty && !process.env.NO_COLOR && process.env.TERM !== 'dumb',
    // Until the flags are read, errors print as text (and as JSON when -o asks, see formatOf).
    format: /(^|\s)(--json|-o\s*n?djson|--output[=\s]n?djson|-o\s*json|--output[=\s]json)(\s|$)/.test(process.argv.slice(2).join(' ')) ? 'ndjson' : 'text',
    ...(process.stdin.isTTY && tty ? { ask } : {}),
  }
  let interrupts = 0
  const onSigint = () => {
    if (++interrupts > 1) process.exit(EXIT.detached)
    interrupt.abort()
  }
  process.on('SIGINT', onSigint)
  process.on('SIGTERM', onSigint)
  process.stdout.on('error', () => process.exit(EXIT.ok)) // a closed pipe (| head) is not an error
  try {
    return await dispatch(process.argv.slice(2), io)
  } catch (err) {
    return reportError(io, err)
  }
}

const code = await main()
process.exitCode = code
// Open sockets of an undici agent must not keep a finished command alive.
setTimeout(() => process.exit(code), 200).unref()
