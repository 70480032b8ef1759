/**
 * The NATS bus's request path, beside nats.js's own `request()` on the same server: is the
 * bus's shared-inbox multiplexer still worth its code? Both connections have async traces off,
 * as the bus runs. Prints requests per second and client CPU per request, for several numbers
 * of requests in flight, and the ratio; a responder in this process answers every request.
 *
 * Then what storing an event costs a producer and the server: `bus.durable.publish` (stored in
 * APIARY_EVENTS with a dedupe id, its PubAck awaited, as workers and hives publish) beside a
 * plain `bus.publish` of the same event on the same subject (which the stream stores too):
 * events per second, this process's CPU and nats-server's CPU per event.
 *
 *   pnpm bench:bus-request [--requests 10000] [--rounds 3]
 */
import { parseArgs } from 'node:util'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { subjects } from '@apiary/shared'
import { silentLogger } from '@apiary/shared/runtime'
import { createNatsBus } from '@apiary/shared/nats'
import { DURABLE_DEFAULTS } from '@apiary/queen'
import { startNats } from '../../test/harness/nats.ts'
import { cpuMs, findPid } from '../lib/procfs.ts'
import { progress, runBench } from '../lib/run.ts'
import { table } from '../lib/stats.ts'

const { values } = parseArgs({ options: { requests: { type: 'string', default: '10000' }, rounds: { type: 'string', default: '3' } } })
const total = Number(values.requests)
const rounds = Number(values.rounds)
const enc = new TextEncoder()

/** `total` requests, `inFlight` at a time; wall time and this process's CPU. */
async function drive(send: () => Promise<unknown>, inFlight: number): Promise<{ ms: number; cpuUs: number }> {
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  let issued = 0
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (issued < total) {
        issued++
        await send()
      }
    }),
  )
  const cpu = process.cpuUsage(cpu0)
  return { ms: performance.now() - t0, cpuUs: cpu.user + cpu.system }
}

const { failed } = await runBench('bus-request', 300, async ({ teardown }) => {
  const nats = await startNats()
  teardown.add('nats-server', () => nats.stop())
  const responder: NatsConnection = await connect({ servers: nats.url, noAsyncTraces: true })
  teardown.add('responder', () => responder.close())
  const ack = enc.encode(JSON.stringify({ accepted: true, by: 'w' }))
  responder.subscribe('bench.req', {
    callback: (_err, m) => {
      m.respond(ack)
    },
  })
  await responder.flush()

  const bus = await createNatsBus({ url: nats.url, name: 'bench-bus', log: silentLogger(), insecure: true })
  teardown.add('bus', () => bus.close())
  const raw = await connect({ servers: nats.url, noAsyncTraces: true })
  teardown.add('nats.js connection', () => raw.close())
  const body = { jobId: 'j1', node: 'n1', operation: { type: 'ping' }, timeoutMs: 1000, outputCapBytes: 1024 }
  const viaBus = () => bus.request('bench.req', body, { timeoutMs: 5000 })
  const viaNats = async () => JSON.parse(new TextDecoder().decode((await raw.request('bench.req', enc.encode(JSON.stringify(body)), { timeout: 5000 })).data)) as unknown

  const rows: string[][] = []
  for (const inFlight of [1, 64, 1024]) {
    const best = { bus: { ms: Infinity, cpuUs: Infinity }, nats: { ms: Infinity, cpuUs: Infinity } }
    await drive(viaBus, inFlight) // warm-up
    await drive(viaNats, inFlight)
    for (let r = 0; r < rounds; r++) {
      // Alternate which goes first: the machine is shared and noisy.
      const order = r % 2 === 0 ? (['bus', 'nats'] as const) : (['nats', 'bus'] as const)
      for (const which of order) {
        const m = await drive(which === 'bus' ? viaBus : viaNats, inFlight)
        if (m.ms < best[which].ms) best[which] = m
      }
    }
    progress(`in flight ${inFlight} done`)
    const rate = (m: { ms: number }) => Math.round(total / (m.ms / 1000))
    const cpu = (m: { cpuUs: number }) => (m.cpuUs / total).toFixed(1)
    rows.push([String(inFlight), String(rate(best.bus)), String(rate(best.nats)), (rate(best.bus) / rate(best.nats)).toFixed(2), cpu(best.bus), cpu(best.nats)])
  }
  const head = ['in flight', 'bus req/s', 'nats.js req/s', 'bus/nats', 'bus CPU µs/req', 'nats.js CPU µs/req']
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (r: string[]) => r.map((c, i) => c.padStart(widths[i]!)).join('  ')
  console.log(`bus.request() vs nats.js request(), ${total} requests a round, best of ${rounds} rounds (async traces off in both)`)
  console.log(line(head))
  for (const r of rows) console.log(line(r))

  // Storing events: the stream the queen makes, with its defaults.
  await bus.durable.ensure(DURABLE_DEFAULTS)
  const natsPid = await findPid(['nats-server', '-p', String(nats.port)])
  const subject = subjects.nodeEvents('bench', 'node-1', 'job-1')
  const event = { jobId: 'job-1', ts: Date.now(), kind: 'node.finished', node: 'node-1', state: 'ok', exitCode: 0, durationMs: 3, human: 'node-1: ok (exit 0, 3 ms)' }
  let n = 0
  const stored = () => bus.durable.publish(subject, event, { id: `job-1/node-${++n}/finished`, deadline: Date.now() + 30_000 })
  const plain = async () => bus.publish(subject, event)
  /** `drive` plus nats-server's CPU; a plain round ends with a flush, so the server has every event. */
  const measure = async (send: () => Promise<unknown>, inFlight: number, flush: boolean) => {
    const s0 = natsPid === undefined ? undefined : await cpuMs(natsPid)
    const m = await drive(send, inFlight)
    if (flush) await bus.flush()
    const s1 = natsPid === undefined ? undefined : await cpuMs(natsPid)
    return { ...m, serverUs: s0 === undefined || s1 === undefined ? NaN : (s1 - s0) * 1000 }
  }
  const events: string[][] = [['in flight', 'stored ev/s', 'plain ev/s', 'plain/stored', 'stored CPU µs/ev', 'plain CPU µs/ev', 'server µs/ev stored', 'server µs/ev plain']]
  for (const inFlight of [1, 64]) {
    type M = { ms: number; cpuUs: number; serverUs: number }
    const best: { stored?: M; plain?: M } = {}
    await measure(stored, inFlight, false) // warm-up
    await measure(plain, inFlight, true)
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? (['stored', 'plain'] as const) : (['plain', 'stored'] as const)
      for (const which of order) {
        const m = await measure(which === 'stored' ? stored : plain, inFlight, which === 'plain')
        if (!best[which] || m.ms < best[which].ms) best[which] = m
      }
    }
    progress(`events, in flight ${inFlight} done`)
    const b = best as { stored: M; plain: M }
    const rate = (m: M) => Math.round(total / (m.ms / 1000))
    const per = (us: number) => (us / total).toFixed(1)
    events.push([String(inFlight), String(rate(b.stored)), String(rate(b.plain)), (rate(b.plain) / rate(b.stored)).toFixed(1), per(b.stored.cpuUs), per(b.plain.cpuUs), per(b.stored.serverUs), per(b.plain.serverUs)])
  }
  console.log('')
  console.log(`bus.durable.publish() (stored, PubAck awaited, dedupe id) vs bus.publish() of a node.finished event, ${total} events a round, best of ${rounds} rounds; the stream stores both`)
  console.log(table(events))
})
process.exitCode = failed ? 1 : 0
