import { createHash } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type EventOf, Facts, type JobEvent, notRunEvent, subjects } from '@apiary/shared'
import type { Hive } from '@apiary/hive'
import { alive, type BusKind, expectAccounted, finished, TestCluster, waitUntil } from '../harness/index.ts'
import { EventTape } from '../e2e/chaos/measure.ts'

/**
 * The job scenarios every cluster must pass, whatever its bus: the embedded cluster's
 * in-process bus and NATS run the same suite.
 */
export function defineClusterSuite(kind: BusKind) {
  describe(`cluster over the ${kind} bus`, () => {
    let c: TestCluster
    let hiveEu: Hive
    beforeEach(async () => {
      c = await TestCluster.start(kind)
      hiveEu = await c.addHive('eu')
      for (const i of [1, 2, 3]) await c.addWorker(`web-${i}`, 'eu', { role: 'web' })
    })
    afterEach(async () => {
      await c.stop()
    })

    it('fans a command out to every target and groups identical results', async () => {
      const { jobId, nodes } = await c.client.submit({ operation: { type: 'exec', argv: ['sh', '-c', 'echo same; echo err >&2'] }, targets: 'all' })
      expect(nodes).toEqual(['web-1', 'web-2', 'web-3'])
      const events = await c.events(jobId)
      expectAccounted(events, nodes)
      const fin = finished(events)
      expect(fin.state).toBe('ok')
      expect(fin.counts.ok).toBe(3)
      expect(fin.groups).toHaveLength(1)
      expect(fin.groups[0]).toMatchObject({ state: 'ok', exitCode: 0, count: 3 })
      const out = events.filter((e) => e.kind === 'node.output') as EventOf<'node.output'>[]
      expect(out.filter((o) => o.stream === 'stdout').map((o) => o.data)).toEqual(['same\n', 'same\n', 'same\n'])
      expect(out.filter((o) => o.stream === 'stderr')).toHaveLength(3)
      const job = await c.client.get(jobId)
      expect(job.state).toBe('ok')
      expect(job.nodes.map((n) => [n.node, n.state, n.exitCode])).toEqual([
        ['web-1', 'ok', 0],
        ['web-2', 'ok', 0],
        ['web-3', 'ok', 0],
      ])
    })

    it('trims from the events stream what the leader applied: it holds only what is still to be consumed', async () => {
      const { jobId } = await c.client.submit({ operation: { type: 'exec', argv: ['true'] }, targets: 'all' })
      expect(finished(await c.events(jobId)).state).toBe('ok')
      const probe = await c.bus('events-probe')
      const last = await probe.durable.lastSeq('events')
      expect(last).toBeGreaterThan(0)
      const held = async () => {
        const seen: number[] = []
        await probe.durable.read('events', (m) => void seen.push(m.seq), { afterSeq: 0, follow: false, maxBytes: 1024 * 1024 }).done
        return seen
      }
      await waitUntil(async () => (await held()).every((seq) => seq > last), 'the applied events to be trimmed')
      // The sequence goes on: nothing is renumbered.
      expect(await probe.durable.lastSeq('events')).toBeGreaterThanOrEqual(last)
      // The index keeps the job whole.
      expect((await c.client.get(jobId)).nodes.map((n) => n.state)).toEqual(['ok', 'ok', 'ok'])
    })

    it("drops a verdict of a share's earlier attempt once another hive took it over: a hive cut off from the queen cannot end a node the next one runs", async () => {
      const standby = await c.addHive('eu', 'hive-eu-2')
      const file = join(c.dir.path, 'ran-stale')
      const { jobId, nodes } = await c.client.submit({ operation: { type: 'exec', shell: true, command: `sleep 1; echo "$APIARY_NODE_ID" >> ${file}` }, targets: 'all' })
      const tape = EventTape.follow(c.client, jobId)
      const isRegion = (e: JobEvent): e is EventOf<'job.region'> => e.kind === 'job.region'
      const holder = (await tape.next(isRegion, 'the share handed to a hive')).ev.hive
      // The holder leaves (as on SIGTERM): the share is offered again, attempt 1, to the other.
      await (holder === 'hive-eu-2' ? standby : hiveEu).drain(5000)
      await tape.next((e): e is EventOf<'job.region'> => isRegion(e) && e.hive !== holder, 'the share handed to the other hive')
      // What the first hive would still say under attempt 0, arriving late.
      const late = await c.bus('late-hive')
      await late.durable.publish(subjects.hiveEvents('eu', jobId), { ...notRunEvent(jobId, 'web-1', 'lost', 'worker gone: no answer when asked again'), attempt: 0 }, { id: `${jobId}/stale`, deadline: Date.now() + 10_000 })
      const events = await tape.done
      expectAccounted(events, nodes)
      expect(finished(events).counts).toEqual({ ok: 3 })
      expect((await readFile(file, 'utf8')).split('\n').filter(Boolean).sort()).toEqual(nodes)
    })

    it('numbers events gaplessly and resumes after Last-Event-ID without loss or duplicates', async () => {
      const { jobId } = await c.client.submit({ operation: { type: 'exec', argv: ['echo', 'hello'] }, targets: 'all' })
      const all = await c.events(jobId)
      expect(all.map((e) => e.seq)).toEqual(all.map((_, i) => i + 1))
      const resumed = await c.events(jobId, { after: 4 })
      expect(resumed).toEqual(all.slice(4))
      const stored = await c.events(jobId, { output: false })
      expect(stored.some((e) => e.kind === 'node.output')).toBe(false)
      expect(stored.map((e) => e.seq)).toEqual(all.filter((e) => e.kind !== 'node.output').map((e) => e.seq))
    })

    it('keeps env values and stdin secret: the node gets them; no route, event or stored byte shows them; forgotten at the end; a re-run asks again', async () => {
      const ENV = 'env-value-7f3a91c2e5'
      const STDIN = 'stdin-value-b84d06e1aa\n'
      const sha = (s: string) => createHash('sha256').update(s).digest('hex')
      const operation = { type: 'exec' as const, argv: ['sh', '-c', 'printf %s "$K" | sha256sum; sha256sum'], env: { K: ENV }, stdin: STDIN }
      const { jobId } = await c.client.submit({ operation, targets: 'web-1' })
      const events = await c.events(jobId)
      expect(finished(events).state).toBe('ok')
      const out = (events.filter((e) => e.kind === 'node.output') as EventOf<'node.output'>[]).map((o) => o.data).join('')
      expect(out).toBe(`${sha(ENV)}  -\n${sha(STDIN)}  -\n`)
      const job = await c.client.get(jobId)
      expect(job.operation).toEqual({ type: 'exec', shell: false, argv: operation.argv, env: { K: '[redacted]' }, stdinBytes: STDIN.length })
      const list = await c.client.list({ limit: 10 })
      const logs = await c.client.logsPage(jobId, {})
      const shown = JSON.stringify([events, job, list, logs])
      // The data key is purged once the job's end is stored: the sealed blob can never be opened again.
      const probe = await c.bus('secrets-probe')
      await waitUntil(async () => (await probe.durable.secrets.get(jobId)) === undefined, 'the job’s data key to be purged')
      const stored: string[] = []
      for (const dir of c.storeDirs) {
        for (const f of await readdir(dir, { recursive: true, withFileTypes: true })) {
          if (f.isFile()) stored.push((await readFile(join(f.parentPath, f.name))).toString('latin1'))
        }
      }
      // The scan sees the job as stored (its argv is no secret).
      expect(stored.some((bytes) => bytes.includes('sha256sum; sha256sum'))).toBe(true)
      for (const secret of [ENV, STDIN.trim()]) {
        expect(shown).not.toContain(secret)
        expect(stored.some((bytes) => bytes.includes(secret)), `${secret} in a stored file`).toBe(false)
      }
      await expect(c.client.rerun(jobId, { only: ['ok'] })).rejects.toMatchObject({ code: 'invalid_input', field: 'env' })
      await expect(c.client.rerun(jobId, { only: ['ok'], env: { K: ENV } })).rejects.toMatchObject({ code: 'invalid_input', field: 'stdin' })
      const again = await c.client.rerun(jobId, { only: ['ok'], env: { K: ENV }, stdin: STDIN })
      const rerun = await c.events(again.jobId)
      expect((rerun.filter((e) => e.kind === 'node.output') as EventOf<'node.output'>[]).map((o) => o.data).join('')).toBe(out)
    })

    it('gives a running job’s env values and stdin to its submitter’s re-run only whole: given env is never mixed with the kept stdin', async () => {
      const operation = { type: 'exec' as const, argv: ['sh', '-c', 'cat >/dev/null; [ "$APIARY_NODE_ID" = web-1 ] || sleep 30'], env: { K: 'v-0123456789' }, stdin: 'kept-stdin\n' }
      const { jobId } = await c.client.submit({ operation, targets: 'web-1|web-2' })
      await waitUntil(async () => (await c.client.get(jobId)).nodes.find((n) => n.node === 'web-1')?.state === 'ok', 'web-1 to end ok while web-2 runs')
      await expect(c.client.rerun(jobId, { only: ['ok'], env: { K: 'other' } })).rejects.toMatchObject({ code: 'invalid_input', field: 'stdin' })
      await expect(c.client.rerun(jobId, { only: ['ok'], stdin: 'other\n' })).rejects.toMatchObject({ code: 'invalid_input', field: 'env' })
      await c.client.cancel(jobId)
      await c.events(jobId)
    })

    it('targets by glob, label and region, combined with AND', async () => {
      await c.addHive('us')
      await c.addWorker('db-1', 'us', { role: 'db' })
      expect((await c.client.submit({ operation: { type: 'ping' }, targets: 'web-*' })).nodes).toEqual(['web-1', 'web-2', 'web-3'])
      expect((await c.client.submit({ operation: { type: 'ping' }, targets: 'role=db' })).nodes).toEqual(['db-1'])
      expect((await c.client.submit({ operation: { type: 'ping' }, targets: 'region=eu,web-1|web-3' })).nodes).toEqual(['web-1', 'web-3'])
      await expect(c.client.submit({ operation: { type: 'ping' }, targets: 'role=db,region=eu' })).rejects.toMatchObject({
        code: 'invalid_input',
        field: 'targets',
      })
    })

    it('ends a region without a hive as "error: no hive for region" at once', async () => {
      await c.addWorker('ap-1', 'ap')
      const { jobId, nodes } = await c.client.submit({ operation: { type: 'ping' }, targets: 'all' })
      const events = await c.events(jobId)
      expectAccounted(events, nodes)
      const ap = events.find((e) => e.kind === 'node.finished' && e.node === 'ap-1') as EventOf<'node.finished'>
      expect(ap).toMatchObject({ state: 'error', cause: 'no hive for region ap' })
      expect(finished(events).state).toBe('failed')
    })

    it('ends an offline node as "error: offline" at once', async () => {
      await c.removeWorker('web-2')
      await waitUntil(async () => (await c.client.nodes()).find((n) => n.id === 'web-2')?.online === false, 'web-2 to go offline')
      const { jobId, nodes } = await c.client.submit({ operation: { type: 'ping' }, targets: 'all' })
      expect(nodes).toContain('web-2')
      const events = await c.events(jobId)
      expectAccounted(events, nodes)
      expect(events.find((e) => e.kind === 'node.finished' && e.node === 'web-2')).toMatchObject({ state: 'error', cause: 'offline' })
    })

    it('reports a non-zero exit as failed, with the exit code', async () => {
      const { jobId } = await c.client.submit({ operation: { type: 'exec', shell: true, command: 'exit 7' }, targets: 'web-1' })
      const fin = finished(await c.events(jobId))
      expect(fin.state).toBe('failed')
      expect(fin.groups).toEqual([expect.objectContaining({ state: 'failed', exitCode: 7, nodes: ['web-1'] })])
    })

    it('reports a program that does not exist as an error that names it', async () => {
      const { jobId } = await c.client.submit({ operation: { type: 'exec', argv: ['no-such-program-apiary'] }, targets: 'web-1' })
      const events = await c.events(jobId)
      expect(events.find((e) => e.kind === 'node.finished')).toMatchObject({ state: 'error', cause: 'program not found: no-such-program-apiary' })
    })

    it('collects typed facts', async () => {
      const { jobId } = await c.client.submit({ operation: { type: 'facts' }, targets: 'web-1' })
      const ev = (await c.events(jobId)).find((e) => e.kind === 'node.finished') as EventOf<'node.finished'>
      const facts = Facts.parse(ev.result)
      expect(facts.cpus.count).toBeGreaterThan(0)
      expect(facts.memory.totalBytes).toBeGreaterThan(facts.memory.availableBytes * 0)
      expect(typeof facts.kernel).toBe('string')
    })

    it('kills the whole process group at the timeout', async () => {
      const pidFile = join(c.dir.path, 'bg.pid')
      const { jobId } = await c.client.submit({
        operation: { type: 'exec', shell: true, command: `sleep 30 & echo $! > ${pidFile}; wait` },
        targets: 'web-1',
        rollout: { concurrency: 1, timeoutMs: 500 },
      })
      const events = await c.events(jobId)
      const fin = finished(events)
      expect(fin.counts.timeout).toBe(1)
      const bg = Number((await readFile(pidFile, 'utf8')).trim())
      expect(bg).toBeGreaterThan(0)
      await waitUntil(() => !alive(bg), `background child ${bg} to be gone`)
    })

    it('cuts output at the cap, marks it, and counts every byte', async () => {
      const { jobId } = await c.client.submit({
        operation: { type: 'exec', shell: true, command: "head -c 300000 /dev/zero | tr '\\0' a" },
        targets: 'web-1',
        outputCapBytes: 65536,
      })
      const events = await c.events(jobId)
      const end = events.find((e) => e.kind === 'node.finished') as EventOf<'node.finished'>
      expect(end).toMatchObject({ state: 'ok', truncated: true, bytes: 300000 })
      const kept = events.filter((e) => e.kind === 'node.output').reduce((n, e) => n + (e as EventOf<'node.output'>).data.length, 0)
      expect(kept).toBe(65536)
      const logs = (await c.client.logsPage(jobId, { node: 'web-1' })).chunks
      expect(logs.reduce((n, l) => n + l.data.length, 0)).toBe(65536)
      // Page by page, one chunk at a time, the same bytes in the same order.
      const first = await c.client.logsPage(jobId, { node: 'web-1', limit: 1 })
      expect(first.chunks).toHaveLength(1)
      expect(first.next).toBe(first.chunks[0]!.seq)
      let paged = ''
      for await (const ch of c.client.logs(jobId, 'web-1')) paged += ch.data
      expect(paged).toBe(logs.map((l) => l.data).join(''))
    })

    it('keeps at most `concurrency` tasks in flight', async () => {
      const { jobId } = await c.client.submit({
        operation: { type: 'exec', argv: ['sleep', '0.2'] },
        targets: 'all',
        rollout: { concurrency: 2, timeoutMs: 10_000 },
      })
      const events = await c.events(jobId)
      let running = 0
      let peak = 0
      for (const e of events) {
        if (e.kind === 'node.started') peak = Math.max(peak, ++running)
        if (e.kind === 'node.finished') running--
      }
      expect(peak).toBe(2)
      expect(finished(events).counts.ok).toBe(3)
    })

    it('cancels a running job: every process stops and every node says so', async () => {
      const pidDir = c.dir.path
      const { jobId, nodes } = await c.client.submit({
        operation: { type: 'exec', shell: true, command: `echo $$ > ${pidDir}/$(hostname)-$$.pid; echo started; sleep 30` },
        targets: 'all',
        rollout: { concurrency: 2, timeoutMs: 60_000 },
      })
      const seen: JobEvent[] = []
      let started = 0
      for await (const ev of c.client.stream(jobId, { output: true })) {
        seen.push(ev)
        if (ev.kind === 'node.output') started++
        if (started === 2 && !seen.some((e) => e.kind === 'job.cancelling')) {
          expect((await c.client.cancel(jobId)).state).toBe('running')
          started++
        }
      }
      expectAccounted(seen, nodes)
      const fin = finished(seen)
      expect(fin.state).toBe('cancelled')
      expect(fin.counts.cancelled).toBe(2)
      expect(fin.counts.skipped).toBe(1)
      const { readdir } = await import('node:fs/promises')
      const pids = (await readdir(pidDir)).filter((f) => f.endsWith('.pid'))
      expect(pids).toHaveLength(2)
      for (const f of pids) {
        const pid = Number((await readFile(join(pidDir, f), 'utf8')).trim())
        await waitUntil(() => !alive(pid), `pid ${pid} to be gone`)
      }
      expect((await c.client.cancel(jobId)).state).toBe('cancelled')
    })

    it('drops malformed bus messages on every subject and keeps working', async () => {
      const bus = await c.bus('intruder')
      bus.publish(subjects.nodeEvents('eu', 'web-1', 'jzzzzzzzz00000000'), { kind: 'node.finished', node: 'web-1' })
      bus.publish(subjects.nodeEvents('eu', 'web-1', 'jzzzzzzzz00000000'), 'not an event')
      bus.publish(subjects.heartbeat('worker', 'eu', 'web-9'), { id: 'web-9', role: 'worker' })
      bus.publish(subjects.control('jzzzzzzzz00000000'), { action: 'explode' })
      await expect(bus.request(subjects.hiveJobs('eu'), { jobId: 42 }, { timeoutMs: 2000 })).resolves.toMatchObject({ accepted: false })
      await expect(bus.request(subjects.task('eu', 'web-1'), { node: 'web-1' }, { timeoutMs: 2000 })).resolves.toMatchObject({ accepted: false })
      await bus.flush()
      if (kind === 'nats') await bus.close()
      const { jobId } = await c.client.submit({ operation: { type: 'ping' }, targets: 'all' })
      expect(finished(await c.events(jobId)).counts.ok).toBe(3)
      expect((await c.client.nodes()).map((n) => n.id)).toEqual(['web-1', 'web-2', 'web-3'])
    })

    it('after a restart, waits for the nodes it knew before taking jobs, then targets them all', async () => {
      await c.removeWorker('web-3')
      await waitUntil(async () => (await c.client.nodes()).find((n) => n.id === 'web-3')?.online === false, 'web-3 to go offline')
      await c.stopQueen()
      await c.startQueen()
      // web-3 never reports again: the queen waits three of its intervals, then goes on.
      await expect(c.client.submit({ operation: { type: 'ping' }, targets: 'all' })).rejects.toMatchObject({ code: 'unavailable', message: expect.stringMatching(/waiting for \d known nodes? to report/) })
      const ready = await fetch(`${c.queen.url}/readyz`)
      expect(ready.status).toBe(503)
      await waitUntil(async () => (await fetch(`${c.queen.url}/readyz`)).status === 200, 'the queen to be ready')
      const { jobId, nodes } = await c.client.submit({ operation: { type: 'ping' }, targets: 'all' })
      expect(nodes).toEqual(['web-1', 'web-2', 'web-3'])
      const events = await c.events(jobId)
      expect(events.find((e) => e.kind === 'node.finished' && e.node === 'web-3')).toMatchObject({ state: 'error', cause: 'offline' })
      expect(finished(events).counts).toEqual({ ok: 2, error: 1 })
    })

    it('keeps every job across a queen restart and replays it whole', async () => {
      const { jobId } = await c.client.submit({ operation: { type: 'exec', argv: ['echo', 'kept'] }, targets: 'all' })
      const before = await c.events(jobId)
      await c.stopQueen()
      await c.startQueen()
      const jobs = await c.client.list()
      expect(jobs.map((j) => j.id)).toContain(jobId)
      expect(await c.events(jobId)).toEqual(before)
      expect((await c.client.get(jobId)).counts.ok).toBe(3)
    })
  })
}
