import { dispatch } from './cli/dispatch.ts'
import { EXIT, type Io, reportError } from './cli/context.ts'
import { audit } from './commands/audit.ts'
import { bus } from './commands/bus.ts'
import { cancel } from './commands/cancel.ts'
import { dev } from './commands/dev.ts'
import { facts } from './commands/facts.ts'
import { job } from './commands/job.ts'
import { jobs } from './commands/jobs.ts'
import { logs } from './commands/logs.ts'
import { nodes } from './commands/nodes.ts'
import { rerun } from './commands/rerun.ts'
import { run } from './commands/run.ts'
import { users } from './commands/users.ts'
import { watch } from './commands/watch.ts'
import { LineWriter } from './render/output.ts'

/** In the order `keeper --help` lists them. */
const COMMANDS = [run, facts, rerun, watch, jobs, job, logs, nodes, cancel, users, audit, bus, dev]

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
    return await dispatch(COMMANDS, process.argv.slice(2), io)
  } catch (err) {
    return reportError(io, err)
  }
}

const code = await main()
process.exitCode = code
// Open sockets of an undici agent must not keep a finished command alive.
setTimeout(() => process.exit(code), 200).unref()
