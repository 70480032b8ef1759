import {
  ApiaryError,
  DEFAULT_CONCURRENCY,
  DEFAULT_OUTPUT_CAP,
  Facts,
  type JobClient,
  type JobRequestInput,
  type Operation,
  parseDuration,
  parseIntFlag,
} from '@apiary/shared'
import { EXIT, type Io } from '../cli/context.ts'
import { bytesText, table } from '../render/output.ts'
import { followJob } from './follow.ts'

export interface RunValues {
  targets: string | undefined
  concurrency: string | undefined
  timeout: string | undefined
  shell: boolean
  'output-cap': string | undefined
  'cancel-on-interrupt': boolean
  json: boolean
}

/** Builds the job request from flags and the command after `--`; bad flags name themselves. */
export function buildRequest(v: RunValues, operation: Operation): JobRequestInput {
  const timeoutMs = parseDuration(v.timeout ?? '30s', '--timeout')
  if (timeoutMs < 1) throw new ApiaryError('invalid_input', '--timeout must be more than 0', '--timeout')
  return {
    operation,
    targets: v.targets ?? 'all',
    rollout: {
      concurrency: v.concurrency === undefined ? DEFAULT_CONCURRENCY : parseIntFlag(v.concurrency, '--concurrency', 1, 100_000),
      timeoutMs,
    },
    outputCapBytes: v['output-cap'] === undefined ? DEFAULT_OUTPUT_CAP : parseIntFlag(v['output-cap'], '--output-cap', 1024, 64 * 1024 * 1024),
  }
}

export function execOperation(command: string[], shell: boolean): Operation {
  if (command.length === 0) throw new ApiaryError('invalid_input', 'no command given: keeper run [flags] -- CMD ARGS…', 'command')
  return shell ? { type: 'exec', shell: true, command: command.join(' ') } : { type: 'exec', shell: false, argv: command }
}

/** Submits a job and follows it; Ctrl-C detaches (or cancels, with --cancel-on-interrupt). */
export async function submitAndFollow(
  client: JobClient,
  io: Io,
  v: RunValues,
  request: JobRequestInput,
  render: 'run' | 'facts',
): Promise<number> {
  const created = await client.submit(request)
  const stop = new AbortController()
  let interrupted = false
  const onInterrupt = () => {
    interrupted = true
    stop.abort()
  }
  io.interrupt.addEventListener('abort', onInterrupt, { once: true })
  try {
    const code = await followJob(
      client,
      created.jobId,
      io,
      {
        json: v.json,
        output: render === 'run',
        ...(render === 'facts' ? factsRender(io) : {}),
      },
      stop.signal,
    )
    if (!interrupted) return code
  } finally {
    io.interrupt.removeEventListener('abort', onInterrupt)
  }
  if (v['cancel-on-interrupt']) {
    await client.cancel(created.jobId)
    await io.err.line(`keeper: cancel requested for job ${created.jobId}`)
    return EXIT.cancelled
  }
  await io.err.line(`keeper: detached; job ${created.jobId} goes on (keeper logs ${created.jobId} -f, keeper cancel ${created.jobId})`)
  return EXIT.detached
}

function factsRender(io: Io) {
  const rows: string[][] = []
  return {
    onFinished: async (ev: { node: string; state: string; cause: string | null; result?: unknown; human: string }) => {
      const f = Facts.safeParse(ev.result)
      if (ev.state !== 'ok' || !f.success) {
        rows.push([ev.node, ev.state, ev.cause ?? '', '', '', '', ''])
        return
      }
      const d = f.data
      rows.push([ev.node, d.os, d.kernel, d.arch, `${d.cpus.count}`, `${bytesText(d.memory.availableBytes)}/${bytesText(d.memory.totalBytes)}`, d.loadAverage.map((l) => l.toFixed(2)).join(' ')])
    },
    summary: async (fin: { human: string }) => {
      rows.sort((a, b) => a[0]!.localeCompare(b[0]!))
      for (const l of table(['NODE', 'OS', 'KERNEL', 'ARCH', 'CPUS', 'MEM AVAIL/TOTAL', 'LOAD'], rows)) await io.out.line(l)
      await io.out.line('')
      await io.out.line(fin.human)
    },
  }
}
