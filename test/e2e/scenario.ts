import { hostname } from 'node:os'
import { expect } from 'vitest'
import { JobEvent } from '@apiary/shared'
import { readSecretFile } from '@apiary/shared/runtime'
import { createJobClient, parseSse } from '@apiary/shared/client'
import { runBin } from '../harness/index.ts'

export interface ScenarioCluster {
  queenUrl(): string
  tokenFile: string
  /** Extra environment for keeper (state dir). */
  env: NodeJS.ProcessEnv
  nodes: string[]
  /** Stops the queen's process and starts it again on the same state. */
  restartQueen(): Promise<void>
}

interface SseFrame {
  id: string | undefined
  event: string | undefined
  data: JobEvent
}

/** Reads a job's SSE stream over plain HTTP, frame by frame, as any SSE client would. */
export async function readSse(url: string, token: string, jobId: string, lastEventId?: number): Promise<SseFrame[]> {
  const res = await fetch(`${url}/v1/jobs/${jobId}/stream?output=full`, {
    headers: { authorization: `Bearer ${token}`, ...(lastEventId === undefined ? {} : { 'last-event-id': String(lastEventId) }) },
  })
  expect(res.status).toBe(200)
  expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/)
  const frames: SseFrame[] = []
  for await (const m of parseSse(res.body as unknown as AsyncIterable<Uint8Array>)) {
    frames.push({ id: m.id, event: m.event, data: JobEvent.parse(JSON.parse(m.data)) as JobEvent })
  }
  return frames
}

/**
 * The fan-out every deployment must pass: `uname -n` through `keeper run` on three nodes,
 * the exit codes, the SSE sequence, a Last-Event-ID resume and a queen restart that keeps
 * the job.
 */
export async function fanoutScenario(c: ScenarioCluster): Promise<void> {
  const keeper = (args: string[]) => runBin('keeper', ['--queen', c.queenUrl(), '--token-file', c.tokenFile, ...args], c.env)
  const host = hostname()

  // Human output on a pipe: a line per node, then identical results grouped, with their output.
  const run = await keeper(['run', '--', 'uname', '-n'])
  expect(run.stderr).toBe('')
  expect(run.code).toBe(0)
  for (const n of c.nodes) expect(run.stdout).toMatch(new RegExp(`^${n}: ok \\(exit 0, \\d+ ms\\)$`, 'm'))
  expect(run.stdout).toMatch(/ok in .*: 3 ok/)
  expect(run.stdout).toContain(`all 3 identical\n── 3 nodes ok: ${c.nodes.join(', ')}\n   ${host}\n`)
  const jobId = /job (j[0-9a-z]+)/.exec(run.stdout)?.[1]
  expect(jobId).toBeDefined()

  // --no-group: every node's output live, the node on every line.
  const live = await keeper(['run', '--no-group', '--', 'uname', '-n'])
  expect(live.code).toBe(0)
  for (const n of c.nodes) expect(live.stdout).toContain(`${n} | ${host}\n`)

  // -o json: one document with the job and its end.
  const doc = await keeper(['run', '-o', 'json', '--', 'uname', '-n'])
  expect(doc.code).toBe(0)
  const parsed = JSON.parse(doc.stdout) as { job: { state: string; nodes: unknown[] }; finished: { kind: string } }
  expect(parsed.job.state).toBe('ok')
  expect(parsed.job.nodes).toHaveLength(3)
  expect(parsed.finished.kind).toBe('job.finished')

  // --json (= -o ndjson): one event per line, ending with job.finished.
  const json = await keeper(['run', '--json', '--', 'uname', '-n'])
  expect(json.code).toBe(0)
  const events = json.stdout.trim().split('\n').map((l) => JobEvent.parse(JSON.parse(l)) as JobEvent)
  expect(events.at(-1)?.kind).toBe('job.finished')
  const outputs = events.filter((e) => e.kind === 'node.output').map((e) => (e.kind === 'node.output' ? `${e.node}:${e.data}` : ''))
  expect(outputs.sort()).toEqual(c.nodes.map((n) => `${n}:${host}\n`))

  // A node that fails makes the exit code 1; a timeout makes it 3.
  expect((await keeper(['run', '--targets', c.nodes[0]!, '--', 'false'])).code).toBe(1)
  expect((await keeper(['run', '--targets', c.nodes[0]!, '--timeout', '300ms', '--', 'sleep', '5'])).code).toBe(3)

  // The SSE stream: id = gapless sequence, event = kind, ends after job.finished.
  const token = await readSecretFile(c.tokenFile, 'token')
  const frames = await readSse(c.queenUrl(), token, jobId!)
  expect(frames.map((f) => Number(f.id))).toEqual(frames.map((_, i) => i + 1))
  for (const f of frames) {
    expect(f.event).toBe(f.data.kind)
    expect(f.data.seq).toBe(Number(f.id))
    expect(f.data.jobId).toBe(jobId)
  }
  expect(frames.at(-1)?.event).toBe('job.finished')
  expect(frames.filter((f) => f.event === 'node.finished')).toHaveLength(3)

  // Last-Event-ID resumes without loss or duplicates.
  const resumed = await readSse(c.queenUrl(), token, jobId!, 3)
  expect(resumed.map((f) => f.data)).toEqual(frames.slice(3).map((f) => f.data))

  // A restarted queen still lists the job and replays it whole.
  await c.restartQueen()
  const jobs = await keeper(['jobs', '--json'])
  expect(jobs.code).toBe(0)
  expect(jobs.stdout).toContain(jobId)
  const replay = await readSse(c.queenUrl(), token, jobId!)
  expect(replay.map((f) => f.data)).toEqual(frames.map((f) => f.data))
  const shown = await keeper(['job', jobId!])
  expect(shown.code).toBe(0)
  expect(shown.stdout).toMatch(/state\s+ok/)
  const client = createJobClient({ url: c.queenUrl(), token })
  expect((await client.get(jobId!)).nodes.map((n) => n.state)).toEqual(['ok', 'ok', 'ok'])
  await client.close()
}
