import { ApiaryError, describeOperation, JobState, type JobClient, parseIntFlag } from '@apiary/shared'
import { EXIT, type Io } from '../cli/context.ts'
import { ago, table } from '../render/output.ts'
import { exitCodeOf, followJob, readCursor } from './follow.ts'
import { followCreated } from './run.ts'

function counts(c: Record<string, number>): string {
  return Object.entries(c)
    .filter(([, n]) => n > 0)
    .map(([s, n]) => `${n} ${s}`)
    .join(', ')
}

/** Prints records as one JSON document (`json`) or one per line (`ndjson`); false in text mode. */
async function printJson(io: Io, key: string, records: unknown[]): Promise<boolean> {
  if (io.format === 'text') return false
  if (io.format === 'json') await io.out.line(JSON.stringify({ [key]: records }))
  else for (const r of records) await io.out.line(JSON.stringify(r))
  return true
}

export async function jobsCommand(client: JobClient, io: Io, v: { state: string | undefined; limit: string | undefined }): Promise<number> {
  let state: JobState | undefined
  if (v.state !== undefined) {
    const s = JobState.safeParse(v.state)
    if (!s.success) throw new ApiaryError('invalid_input', `--state: "${v.state}" must be one of ${JobState.options.join(', ')}`, '--state')
    state = s.data
  }
  const limit = v.limit === undefined ? 20 : parseIntFlag(v.limit, '--limit', 1, 1000)
  const jobs = await client.list({ ...(state ? { state } : {}), limit })
  if (await printJson(io, 'jobs', jobs)) return EXIT.ok
  if (jobs.length === 0) {
    await io.out.line('no jobs yet')
    return EXIT.ok
  }
  const rows = jobs.map((j) => [j.id, j.state, String(j.nodeCount), counts(j.counts), ago(j.createdAt), describeOperation(j.operation)])
  for (const l of table(['JOB', 'STATE', 'NODES', 'RESULTS', 'CREATED', 'OPERATION'], rows)) await io.out.line(l)
  return EXIT.ok
}

export async function jobCommand(client: JobClient, io: Io, id: string): Promise<number> {
  const job = await client.get(id)
  if (io.format !== 'text') {
    await io.out.line(JSON.stringify(job))
    return EXIT.ok
  }
  await io.out.line(`job        ${job.id}`)
  await io.out.line(`state      ${job.state}`)
  await io.out.line(`operation  ${describeOperation(job.operation)}`)
  await io.out.line(`targets    ${job.targets} (${job.nodeCount} node${job.nodeCount === 1 ? '' : 's'})`)
  const r = job.rollout
  const policy = [
    `concurrency ${r.concurrency}`,
    r.maxErrors !== undefined ? `max errors ${r.maxErrors}` : 'no error budget',
    r.canary > 0 ? `canary ${r.canary}` : '',
    `timeout ${r.timeoutMs} ms`,
    `delivery ${r.deliveryTimeoutMs} ms`,
    r.deadlineMs !== undefined ? `job deadline ${r.deadlineMs} ms` : '',
    `output cap ${job.outputCapBytes} bytes`,
  ]
  await io.out.line(`rollout    ${policy.filter(Boolean).join(', ')}`)
  if (job.rerunOf) await io.out.line(`re-runs    ${job.rerunOf}`)
  if (job.stopReason) await io.out.line(`stopped    ${job.stopReason}`)
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

export async function logsCommand(client: JobClient, io: Io, id: string, v: { node: string | undefined; follow: boolean }): Promise<number> {
  if (v.follow) {
    const stop = new AbortController()
    io.interrupt.addEventListener('abort', () => stop.abort(), { once: true })
    let code = EXIT.ok as number
    for await (const ev of client.stream(id, { output: true, signal: stop.signal })) {
      if (ev.kind === 'node.output' && (v.node === undefined || ev.node === v.node)) {
        if (io.format !== 'text') await io.out.line(JSON.stringify(ev))
        else await writeChunk(io, ev.node, ev.data, v.node !== undefined)
      }
      if (ev.kind === 'job.finished') code = exitCodeOf(ev)
    }
    return stop.signal.aborted ? EXIT.detached : code
  }
  await client.get(id) // 404 for a job that does not exist, before an empty answer could hide it
  if (io.format === 'json') {
    // One document: gathered whole, as asked; -o ndjson streams instead.
    const all = []
    for await (const c of client.logs(id, v.node)) all.push(c)
    await io.out.line(JSON.stringify({ chunks: all }))
    return EXIT.ok
  }
  for await (const c of client.logs(id, v.node)) {
    if (io.format === 'ndjson') await io.out.line(JSON.stringify(c))
    else await writeChunk(io, c.node, c.data, v.node !== undefined)
  }
  return EXIT.ok
}

async function writeChunk(io: Io, node: string, data: string, raw: boolean) {
  const body = data.endsWith('\n') ? data.slice(0, -1) : data
  for (const l of body.split('\n')) await io.out.line(raw ? l : `${node} | ${l}`)
}

export async function nodesCommand(client: JobClient, io: Io): Promise<number> {
  const nodes = await client.nodes()
  if (await printJson(io, 'nodes', nodes)) return EXIT.ok
  if (nodes.length === 0) {
    await io.out.line('no nodes have reported yet')
    return EXIT.ok
  }
  // Agent nodes: last heartbeat. Agentless (SSH) nodes: last contact by an SSH worker, and the breaker.
  const rows = nodes.map((n) => [
    n.id,
    n.region,
    n.online ? 'online' : 'offline',
    n.executor,
    n.executor === 'ssh' ? (n.lastContact ? ago(n.lastContact) : 'never') : ago(n.lastSeen),
    n.breaker ?? '',
    Object.entries(n.labels).map(([k, val]) => `${k}=${val}`).join(','),
  ])
  for (const l of table(['NODE', 'REGION', 'STATUS', 'EXECUTOR', 'LAST CONTACT', 'BREAKER', 'LABELS'], rows)) await io.out.line(l)
  return EXIT.ok
}

export async function cancelCommand(client: JobClient, io: Io, id: string, v: { 'no-wait': boolean }): Promise<number> {
  const before = await client.get(id)
  const r = await client.cancel(id)
  if (r.state !== 'running') {
    await io.out.line(`job ${id} already ended: ${r.state}`)
    return EXIT.ok
  }
  await io.out.line(`cancel requested for job ${id}`)
  if (v['no-wait']) return EXIT.ok
  // Each node confirms: cancelled, skipped, or the end it had already reached.
  const { code } = await followJob(client, id, { ...io, tty: false }, { noGroup: false, after: before.lastSeq }, io.interrupt)
  if (code === EXIT.detached) return code
  const after = await client.get(id)
  const stillRunning = after.nodes.filter((n) => n.state === 'running' || n.state === 'pending').length
  return after.state === 'cancelled' && stillRunning === 0 ? EXIT.ok : EXIT.notOk
}

export async function watchCommand(client: JobClient, io: Io, id: string, cursorDir: string, v: { 'no-group': boolean; 'cancel-on-interrupt': boolean }): Promise<number> {
  const job = await client.get(id)
  const after = await readCursor(cursorDir, id)
  // Counts up to the cursor come from the job as stored; events after it from the stream.
  const counts: Record<string, number> = {}
  for (const n of job.nodes) counts[n.state] = (counts[n.state] ?? 0) + 1
  const seed = after > 0 ? { total: job.nodeCount, counts, createdAt: job.createdAt } : undefined
  if (after > 0 && io.format === 'text') await io.out.line(`reattaching to job ${id} after event ${after}`)
  return followCreated(client, io, id, v, { after, cursorDir, ...(seed ? { seed } : {}) })
}
