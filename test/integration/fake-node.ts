import { type Ack, type Bus, type FinalState, type Heartbeat, subjects, type Task, type WireEventOf } from '@apiary/shared'

export interface FakeNode {
  /** Every task it was sent, in order. */
  tasks: Task[]
  /** Resolves at its first task. */
  first: Promise<void>
  /** Leaves the bus: its tasks find no responder from now on. */
  gone(): void
}

/**
 * A node's worker that answers each task as `answer` says (given how many came before it) and
 * runs nothing. With `online`, it heartbeats once, with an interval that keeps it online for
 * the queen for three minutes, longer than any test that uses it.
 */
export async function fakeNode(bus: Bus, region: string, node: string, answer: (task: Task, before: number) => Ack, o: { online?: boolean } = {}): Promise<FakeNode> {
  const tasks: Task[] = []
  let took!: () => void
  const first = new Promise<void>((resolve) => (took = resolve))
  const sub = bus.subscribe(subjects.task(region, node), (msg) => {
    const task = msg.data as Task
    msg.respond(answer(task, tasks.length))
    tasks.push(task)
    took()
  })
  if (o.online) {
    const hb: Heartbeat = { id: node, role: 'worker', region, labels: {}, executor: 'local', status: 'healthy', running: 0, version: 't', intervalMs: 60_000, ts: Date.now() }
    bus.publish(subjects.heartbeat('worker', region, node), hb)
  }
  await bus.flush()
  return { tasks, first, gone: () => sub.unsubscribe() }
}

/** A node's final event, stored in the events stream as its worker stores it (and again when asked again). */
export function storeFinished(bus: Bus, region: string, node: string, jobId: string, state: FinalState): void {
  const ev: WireEventOf<'node.finished'> = {
    jobId,
    ts: Date.now(),
    kind: 'node.finished',
    node,
    state,
    exitCode: state === 'ok' ? 0 : 1,
    signal: null,
    cause: null,
    durationMs: 5,
    bytes: 0,
    truncated: false,
    digest: null,
    human: `${node}: ${state}`,
  }
  void bus.durable.publish(subjects.nodeEvents(region, node, jobId), ev, { id: `${jobId}/${node}/finished`, deadline: Date.now() + 10_000 })
}
