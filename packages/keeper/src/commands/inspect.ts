import { ApiaryError, describeOperation, JobState, type JobClient, parseIntFlag } from '@apiary/shared'
import { EXIT, type Io } from '../cli/context.ts'
import { ago, table } from '../render/output.ts'
import { exitCodeOf, followJob } from './follow.ts'

function counts(c: Record<string, number>): string {
  return Object.entries(c)
    .filter(([, n]) => n > 0)
    .map(([s, n]) => `${n} ${s}`)
    .join(', ')
}

export async function jobsCommand(client: JobClient, io: Io, v: { state: string | undefined; limit: string | undefined; json: boolean }): Promise<number> {
  let state: JobState | undefined
  if (v.state !== undefined) {
    const s = JobState.safeParse(v.state)
    if (!s.success) throw new ApiaryError('invalid_input', `--state: "${v.state}" must be one of ${JobState.options.join(', ')}`, '--state')
    state = s.data
  }
  const limit = v.limit === undefined ? 20 : parseIntFlag(v.limit, '--limit', 1, 1000)
  const jobs = await client.list({ ...(state ? { state } : {}), limit })
  if (v.json) {
    for (const j of jobs) await io.out.line(JSON.stringify(j))
    return EXIT.ok
  }
  if (jobs.length === 0) {
    await io.out.line('no jobs yet')
    return EXIT.ok
  }
  const rows = jobs.map((j) => [j.id, j.state, String(j.nodeCount), counts(j.counts), ago(j.createdAt), describeOperation(j.operation)])
  for (const l of table(['JOB', 'STATE', 'NODES', 'RESULTS', 'CREATED', 'OPERATION'], rows)) await io.out.line(l)
  return EXIT.ok
}

export async function jobCommand(client: JobClient, io: Io, id: string, v: { json: boolean }): Promise<number> {
  const job = await client.get(id)
  if (v.json) {
    await io.out.line(JSON.stringify(job))
    return EXIT.ok
  }
  await io.out.line(`job        ${job.id}`)
  await io.out.line(`state      ${job.state}`)
  await io.out.line(`operation  ${describeOperation(job.operation)}`)
  await io.out.line(`targets    ${job.targets} (${job.nodeCount} node${job.nodeCount === 1 ? '' : 's'})`)
  await io.out.line(`rollout    concurrency ${job.rollout.concurrency}, timeout ${job.rollout.timeoutMs} ms, output cap ${job.outputCapBytes} bytes`)
  await io.out.line(`created    ${new Date(job.createdAt).toISOString()}${job.finishedAt ? `, finished after ${job.finishedAt - job.createdAt} ms` : ''}`)
  await io.out.line(`results    ${counts(job.counts) || 'none yet'}`)
  await io.out.line('')
  const rows = job.nodes.map((n) => [
    n.node,
    n.region,
    n.state,
    n.exitCode === null ? '' : String(n.exitCode),
    n.durationMs === null ? '' : `${Math.round(n.durationMs)} ms`,
    `${n.bytes}${n.truncated ? ' (cut)' : ''}`,
    n.cause ?? '',
  ])
  for (const l of table(['NODE', 'REGION', 'STATE', 'EXIT', 'TIME', 'BYTES', 'CAUSE'], rows)) await io.out.line(l)
  return EXIT.ok
}

export async function logsCommand(client: JobClient, io: Io, id: string, v: { node: string | undefined; follow: boolean; json: boolean }): Promise<number> {
  if (v.follow) {
    const stop = new AbortController()
    io.interrupt.addEventListener('abort', () => stop.abort(), { once: true })
    let code = EXIT.ok as number
    for await (const ev of client.stream(id, { output: true, signal: stop.signal })) {
      if (ev.kind === 'node.output' && (v.node === undefined || ev.node === v.node)) {
        if (v.json) await io.out.line(JSON.stringify(ev))
        else await writeChunk(io, ev.node, ev.data, v.node !== undefined)
      }
      if (ev.kind === 'job.finished') code = exitCodeOf(ev)
    }
    return stop.signal.aborted ? EXIT.detached : code
  }
  await client.get(id) // 404 for a job that does not exist, before an empty answer could hide it
  const chunks = await client.logs(id, v.node)
  for (const c of chunks) {
    if (v.json) await io.out.line(JSON.stringify(c))
    else await writeChunk(io, c.node, c.data, v.node !== undefined)
  }
  return EXIT.ok
}

async function writeChunk(io: Io, node: string, data: string, raw: boolean) {
  const body = data.endsWith('\n') ? data.slice(0, -1) : data
  for (const l of body.split('\n')) await io.out.line(raw ? l : `${node} | ${l}`)
}

export async function nodesCommand(client: JobClient, io: Io, v: { json: boolean }): Promise<number> {
  const nodes = await client.nodes()
  if (v.json) {
    for (const n of nodes) await io.out.line(JSON.stringify(n))
    return EXIT.ok
  }
  if (nodes.length === 0) {
    await io.out.line('no nodes have reported yet')
    return EXIT.ok
  }
  const rows = nodes.map((n) => [
    n.id,
    n.region,
    n.online ? 'online' : 'offline',
    ago(n.lastSeen),
    n.executor,
    String(n.running),
    Object.entries(n.labels).map(([k, val]) => `${k}=${val}`).join(','),
  ])
  for (const l of table(['NODE', 'REGION', 'STATUS', 'LAST SEEN', 'EXECUTOR', 'RUNNING', 'LABELS'], rows)) await io.out.line(l)
  return EXIT.ok
}

export async function cancelCommand(client: JobClient, io: Io, id: string, v: { wait: boolean }): Promise<number> {
  const r = await client.cancel(id)
  if (r.state !== 'running') {
    await io.out.line(`job ${id} already ended: ${r.state}`)
    return EXIT.ok
  }
  await io.out.line(`cancel requested for job ${id}`)
  if (!v.wait) return EXIT.ok
  const code = await followJob(client, id, io, { json: false, output: false }, io.interrupt)
  return code === EXIT.detached ? code : EXIT.ok
}
