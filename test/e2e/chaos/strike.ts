import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { expect } from 'vitest'
import { type EventOf, type FinalState, JobDetail, type JobEvent } from '@apiary/shared'
import type { JobClient } from '@apiary/shared/client'
import { expectAccounted, finished } from '../../harness/index.ts'
import { type Fleet, type QueenDaemon, TARGETS } from './fleet.ts'
import { EventTape } from './measure.ts'

/** A strike's job, running: its targets, the file its tasks append to, and its stream as read. */
export interface StrikeJob {
  jobId: string
  targets: string[]
  /** Each task appends its node's id here, then sleeps: one line per run, a second line is a second run. */
  file: string
  tape: EventTape
}

export interface StrikeJobOptions {
  /** Tasks in flight at once (default 3: eight nodes take three waves). */
  concurrency?: number
  /** How long each task sleeps after writing its line, in seconds (default 1.5). */
  sleepS?: number
  /** Each task's timeout (default 15 s): with the queen's and hive's graces, when a dead worker's node is judged lost. */
  timeoutMs?: number
}

let jobs = 0

/**
 * Submits the strike's job on every worker of the fleet and starts reading its stream: each
 * task appends `$APIARY_NODE_ID` to one shared file, prints it and sleeps, so the job takes a
 * few seconds and what ran where is on disk.
 */
export async function startStrikeJob(fleet: Fleet, client: JobClient, opts: StrikeJobOptions = {}): Promise<StrikeJob> {
  const file = join(fleet.dir.path, `ran-${++jobs}`)
  const command = `echo "$APIARY_NODE_ID" >> ${file}; echo "$APIARY_NODE_ID"; sleep ${opts.sleepS ?? 1.5}`
  const { jobId, nodes } = await client.submit({
    operation: { type: 'exec', shell: true, command },
    targets: TARGETS,
    // Past this a hive asks a silent worker again: a bound on every strike, never reached when all goes well.
    rollout: { concurrency: opts.concurrency ?? 3, timeoutMs: opts.timeoutMs ?? 15_000 },
  })
  expect([...nodes].sort()).toEqual([...fleet.nodes].sort())
  const tape = EventTape.follow(client, jobId)
  fleet.noteJob(jobId, () => tape.events)
  return { jobId, targets: nodes, file, tape }
}

export const isStarted = (ev: JobEvent): ev is EventOf<'node.started'> => ev.kind === 'node.started'
export const isFinished = (ev: JobEvent): ev is EventOf<'node.finished'> => ev.kind === 'node.finished'

/** Every target `ok`. */
export const allOk = (targets: readonly string[]): Record<string, FinalState> => Object.fromEntries(targets.map((n) => [n, 'ok' as const]))

/**
 * What must hold after a strike, whatever it was:
 * - the stream, read across it by a client given every queen, is seq 1..N with no gap and no
 *   repeat, ending in `job.finished`;
 * - every node ended in the state `expected` says really happened, each once, and the states
 *   sum to the targets;
 * - no node ran twice (its line is in the file at most once) and every `ok` node ran (its line
 *   is there, and its output was streamed once); nothing ran that never said it started;
 * - every queen still running holds the same result in its own index.
 */
export async function expectTruth(fleet: Fleet, job: StrikeJob, expected: Record<string, FinalState>, queens: readonly QueenDaemon[] = fleet.runningQueens()): Promise<JobEvent[]> {
  const events = await job.tape.done
  const seqs = events.map((e) => e.seq)
  expect(seqs, 'sequence numbers 1..N, no gap, no repeat').toEqual(seqs.map((_, i) => i + 1))
  const fin = finished(events)
  expectAccounted(events, job.targets)
  expect(events.some((e) => e.kind === 'job.halted'), 'no halt').toBe(false)

  const ends = Object.fromEntries(events.filter(isFinished).map((e) => [e.node, e.state]))
  expect(ends, 'each node’s final state').toEqual(expected)
  const tally: Record<string, number> = {}
  for (const s of Object.values(expected)) tally[s] = (tally[s] ?? 0) + 1
  expect(fin.counts).toEqual(tally)

  const starts = events.filter(isStarted).map((e) => e.node)
  expect(starts.filter((n, i) => starts.indexOf(n) !== i), 'a node started twice').toEqual([])
  const lines = (await readFile(job.file, 'utf8').catch(() => '')).split('\n').filter(Boolean)
  expect(lines.filter((l, i) => lines.indexOf(l) !== i), 'a node ran twice').toEqual([])
  const ok = job.targets.filter((n) => expected[n] === 'ok')
  for (const n of ok) expect(lines, `${n} ended ok: its line is in the file`).toContain(n)
  for (const n of lines) expect(starts, `${n} ran: it said it started`).toContain(n)
  const printed = events.flatMap((e) => (e.kind === 'node.output' ? e.data.split('\n').filter(Boolean) : []))
  for (const n of ok) expect(printed.filter((p) => p === n), `${n}'s output, once`).toEqual([n])

  for (const q of queens) {
    await expect
      .poll(async () => nodeStates(q, fleet.token, job.jobId), { timeout: 10_000, interval: 100, message: `${q.name}'s index holds the job's result` })
      .toEqual(expected)
  }
  return events
}

/** A job's node states as one queen's index holds them (a standby's follows the log). */
async function nodeStates(q: QueenDaemon, token: string, jobId: string): Promise<Record<string, string>> {
  const res = await fetch(`${q.url}/v1/jobs/${jobId}`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(2000) })
  if (res.status !== 200) return { status: String(res.status) }
  const job = JobDetail.parse(await res.json())
  return Object.fromEntries(job.nodes.map((n) => [n.node, n.state]))
}
