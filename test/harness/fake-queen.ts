import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { type JobDetail, JobEvent } from '@apiary/shared'

/**
 * A queen's HTTP API as a client sees it, on a real loopback port, for tests of failover
 * between queens: the read API served from `events` (its "index"), writes only while `leader`,
 * 503 `not_leader` otherwise, and hooks to die mid-stream, skip or replay events, or lose a
 * submit after reading it. Only what keeper and the job client call.
 */
export class FakeQueen {
  /** Every request, in order: method, path and the Last-Event-ID it carried. */
  readonly requests: Array<{ method: string; path: string; lastEventId: string | undefined; idempotencyKey: string | undefined }> = []
  /** The job's events as this queen's index holds them, in order. */
  events: JobEvent[] = []
  job: JobDetail | undefined
  leader = false
  /** Kill this queen (every socket destroyed, the port closed) right after it streamed this seq. */
  dieAfter: number | undefined
  /** The next stream starts at this seq, whatever Last-Event-ID says (then clears): a repeat. */
  replayFrom: number | undefined
  /** The next stream leaves this seq out (then clears): a gap. */
  skipOnce: number | undefined
  /** GETs of the job answered 404 before it is known here: an index that lags. */
  lagFor = 0
  /** POST /v1/jobs is read and then the connection is dropped, unanswered. */
  dropSubmit = false
  /** How many jobs this queen created. */
  created = 0
  readonly #sockets = new Set<Socket>()
  readonly #server = createServer((req, res) => void this.#handle(req, res))
  readonly #wake = new Set<() => void>()
  readonly #waiters: Array<{ path: RegExp; resolve: () => void }> = []
  #dead = false
  url = ''

  private constructor(private readonly token: string) {
    this.#server.on('connection', (s) => {
      this.#sockets.add(s)
      s.once('close', () => this.#sockets.delete(s))
    })
  }

  static async start(token: string): Promise<FakeQueen> {
    const q = new FakeQueen(token)
    await new Promise<void>((resolve) => q.#server.listen(0, '127.0.0.1', resolve))
    const addr = q.#server.address()
    if (addr === null || typeof addr === 'string') throw new Error('no port')
    q.url = `http://127.0.0.1:${addr.port}`
    return q
  }

  /** Appends events to this queen's index and wakes its open streams. */
  push(...events: JobEvent[]): void {
    this.events.push(...events.map((e) => JobEvent.parse(e) as JobEvent))
    for (const w of this.#wake) w()
  }

  /** Dies: every connection destroyed, nothing accepted any more. */
  kill(): Promise<void> {
    this.#dead = true
    for (const w of this.#wake) w()
    for (const s of this.#sockets) s.destroy()
    return new Promise((resolve) => this.#server.close(() => resolve()))
  }

  async close(): Promise<void> {
    if (!this.#dead) await this.kill()
  }

  /** Resolves once a request whose path matches has come in (or already had). */
  request(path: RegExp): Promise<void> {
    if (this.requests.some((r) => path.test(r.path))) return Promise.resolve()
    return new Promise((resolve) => this.#waiters.push({ path, resolve }))
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url)
    const lastEventId = req.headers['last-event-id']
    const key = req.headers['idempotency-key']
    this.requests.push({ method: req.method ?? '', path: url.pathname, lastEventId: typeof lastEventId === 'string' ? lastEventId : undefined, idempotencyKey: typeof key === 'string' ? key : undefined })
    for (const w of this.#waiters.filter((w) => w.path.test(url.pathname))) {
      this.#waiters.splice(this.#waiters.indexOf(w), 1)
      w.resolve()
    }
    const body = await readBody(req)
    if (req.headers.authorization !== `Bearer ${this.token}`) return error(res, 401, 'unauthorized', 'the API token is not valid')
    const m = /^\/v1\/jobs\/([^/]+)(?:\/(stream|logs|cancel|rerun))?$/.exec(url.pathname)
    if (req.method === 'POST' && (url.pathname === '/v1/jobs' || url.pathname === '/v1/plan' || m?.[2] === 'cancel' || m?.[2] === 'rerun')) {
      if (!this.leader) return error(res, 503, 'not_leader', 'this queen is a standby: writes go to the leader')
      if (url.pathname === '/v1/jobs') {
        JSON.parse(body)
        if (this.dropSubmit) {
          req.socket.destroy()
          return
        }
        this.created++
        return json(res, 201, { jobId: this.job!.id, nodes: this.job!.nodes.map((n) => n.node) })
      }
      if (m?.[2] === 'cancel') return json(res, 200, { jobId: m[1], state: this.job?.state ?? 'running' })
      return error(res, 400, 'invalid_input', 'not served by this fake')
    }
    if (req.method !== 'GET') return error(res, 404, 'not_found', 'no such route')
    if (url.pathname === '/v1/nodes') return json(res, 200, { nodes: [] })
    if (url.pathname === '/v1/jobs') return json(res, 200, { jobs: [] })
    if (!m) return error(res, 404, 'not_found', 'no such route')
    const id = decodeURIComponent(m[1]!)
    if (this.job?.id !== id || this.lagFor-- > 0) return error(res, 404, 'not_found', `job ${id} does not exist`, 'jobId')
    if (m[2] === undefined) return json(res, 200, this.job)
    if (m[2] === 'logs') {
      const after = Number(url.searchParams.get('after') ?? 0)
      const limit = Number(url.searchParams.get('limit') ?? 1000)
      const node = url.searchParams.get('node')
      const chunks = this.events
        .filter((e): e is Extract<JobEvent, { kind: 'node.output' }> => e.kind === 'node.output' && e.seq > after && (node === null || e.node === node))
        .slice(0, limit)
        .map((e) => ({ node: e.node, stream: e.stream, data: e.data, seq: e.seq }))
      return json(res, 200, { chunks, next: chunks.length === limit ? chunks[chunks.length - 1]!.seq : null })
    }
    if (m[2] === 'stream') return this.#stream(req, res, Number(lastEventId ?? url.searchParams.get('after') ?? 0), url.searchParams.get('output') === 'full')
  }

  /** Like the queen's: everything after the cursor, then each event as it is pushed, to job.finished. */
  async #stream(req: IncomingMessage, res: ServerResponse, after: number, output: boolean): Promise<void> {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' })
    res.write(': apiary event stream\n\n')
    let cursor = this.replayFrom !== undefined ? this.replayFrom - 1 : after
    this.replayFrom = undefined
    const skip = this.skipOnce
    this.skipOnce = undefined
    let wake: (() => void) | undefined
    let dirty = true
    let closed = false
    const onPush = () => {
      dirty = true
      wake?.()
    }
    this.#wake.add(onPush)
    req.socket.once('close', () => {
      closed = true
      wake?.()
    })
    try {
      for (;;) {
        if (closed || this.#dead) return
        if (!dirty) {
          await new Promise<void>((resolve) => (wake = resolve))
          wake = undefined
          continue
        }
        dirty = false
        for (const ev of this.events.filter((e) => e.seq > cursor)) {
          cursor = ev.seq
          if (ev.seq === skip || (!output && ev.kind === 'node.output')) continue
          const frame = `id: ${ev.seq}\nevent: ${ev.kind}\ndata: ${JSON.stringify(ev)}\n\n`
          if (ev.seq === this.dieAfter) {
            // Once the frame is on the wire the client has it; then the queen is gone.
            await new Promise<void>((resolve) => res.write(frame, () => resolve()))
            await this.kill()
            return
          }
          res.write(frame)
          if (ev.kind === 'job.finished') {
            res.end()
            return
          }
        }
      }
    } finally {
      this.#wake.delete(onPush)
    }
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = ''
    req.setEncoding('utf8')
    req.on('data', (c: string) => (text += c))
    req.once('end', () => resolve(text))
    req.once('error', reject)
  })
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}

function error(res: ServerResponse, status: number, code: string, message: string, field?: string): void {
  json(res, status, { error: { code, message, ...(field ? { field } : {}) } })
}

/**
 * A finished job of `nodes` nodes, each with one line of output, as the queen would store it:
 * its detail and its events (job.submitted, then per node started, output, finished, then
 * job.finished), seq 1 to 3·nodes + 2.
 */
export function finishedJob(jobId: string, nodes: number): { job: JobDetail; events: JobEvent[] } {
  const ids = Array.from({ length: nodes }, (_, i) => `n${i + 1}`)
  const rollout = { concurrency: 10, canary: 0, timeoutMs: 30_000, deliveryTimeoutMs: 5000 }
  const operation = { type: 'exec' as const, shell: false as const, argv: ['echo', 'hi'] }
  const outcome = { exitCode: 0, signal: null, cause: null, durationMs: 5, bytes: 3, truncated: false, digest: 'd1' }
  const raw: Array<Record<string, unknown>> = [{ kind: 'job.submitted', operation, targets: 'all', rollout, nodes, human: `job ${jobId}: echo hi on ${nodes} nodes` }]
  for (const node of ids) {
    raw.push({ kind: 'node.started', node, human: `${node}: started` })
    raw.push({ kind: 'node.output', node, stream: 'stdout', data: `hi from ${node}\n`, human: `${node} | hi from ${node}` })
    raw.push({ kind: 'node.finished', node, state: 'ok', ...outcome, human: `${node}: ok (exit 0, 5 ms)` })
  }
  raw.push({ kind: 'job.finished', state: 'ok', counts: { ok: nodes }, groups: [{ state: 'ok', exitCode: 0, digest: 'd1', cause: null, count: nodes, nodes: ids }], durationMs: 50, stopReason: null, human: `job ${jobId} finished: ${nodes} ok` })
  const events = raw.map((e, i) => JobEvent.parse({ jobId, ts: 1_700_000_000_000 + i, seq: i + 1, ...e }) as JobEvent)
  const job: JobDetail = {
    id: jobId,
    state: 'ok',
    operation,
    targets: 'all',
    rollout,
    outputCapBytes: 1024 * 1024,
    createdAt: 1_700_000_000_000,
    finishedAt: 1_700_000_000_050,
    nodeCount: nodes,
    counts: { ok: nodes },
    lastSeq: events.length,
    stopReason: null,
    rerunOf: null,
    nodes: ids.map((node) => ({ node, region: 'default', state: 'ok', ...outcome })),
  }
  return { job, events }
}
