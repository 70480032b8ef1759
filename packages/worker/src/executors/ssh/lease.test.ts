import { EventEmitter } from 'node:events'
import type { Client } from 'ssh2'
import { describe, expect, it } from 'vitest'
import { ControlChannel, createLease, type LeasedConnection, type RemoteExit } from './lease.ts'

/** A control `run` that finishes each command only when the test says so. */
const gatedRun = () => {
  const runs: string[] = []
  const finish: Array<() => void> = []
  const run = (command: string) => {
    runs.push(command)
    return new Promise<void>((resolve) => finish.push(resolve))
  }
  return { run, runs, finish: (i: number) => finish[i]?.() }
}

describe('ControlChannel', () => {
  it('keeps one channel open at a time; commands that queue meanwhile run together in the next', async () => {
    const g = gatedRun()
    const ch = new ControlChannel({ run: g.run, usable: () => true, onError: () => undefined })
    const first = ch.run('kill 1')
    const rest = [ch.run('kill 2'), ch.run('kill 3')]
    expect(g.runs).toEqual(['kill 1'])
    g.finish(0)
    await first
    expect(g.runs).toEqual(['kill 1', 'kill 2\nkill 3'])
    g.finish(1)
    await Promise.all(rest)
  })

  it('on a dead connection resolves without running, including commands that were waiting', async () => {
    const g = gatedRun()
    let usable = true
    const ch = new ControlChannel({ run: g.run, usable: () => usable, onError: () => undefined })
    const running = ch.run('kill 1')
    const waiting = ch.run('kill 2')
    usable = false
    g.finish(0)
    await Promise.all([running, waiting])
    await ch.run('kill 3')
    expect(g.runs).toEqual(['kill 1'])
  })

  it('settles the batch and reports it when running one throws', async () => {
    let reported: (err: unknown) => void = () => undefined
    const report = new Promise<unknown>((resolve) => (reported = resolve))
    const ch = new ControlChannel({ run: () => Promise.reject(new Error('boom')), usable: () => true, onError: (err) => reported(err) })
    await ch.run('kill 1')
    await expect(report).resolves.toMatchObject({ message: 'boom' })
  })
})

describe('createLease', () => {
  /** A connection whose client answers an exec with `reply`, at once. */
  const connection = (reply: (cb: (err: Error | undefined, ch: EventEmitter) => void) => void) => {
    const released: boolean[] = []
    let alive = true
    const client = { exec: (_command: string, cb: (err: Error | undefined, ch: EventEmitter) => void) => reply(cb) } as unknown as Client
    const conn: LeasedConnection = {
      key: 'deploy@10.0.0.5:22',
      client,
      control: new ControlChannel({ run: () => Promise.resolve(), usable: () => alive, onError: () => undefined }),
      alive: () => alive,
      release: (retire) => released.push(retire),
    }
    return { conn, released, die: () => (alive = false) }
  }

  it('sees an exit status that comes in the same read as the exec reply', async () => {
    const exits: RemoteExit[] = []
    const { conn } = connection((cb) => {
      const ch = new EventEmitter()
      cb(undefined, ch)
      ch.emit('exit', 0)
    })
    await createLease(conn).exec('true', (e) => exits.push(e))
    expect(exits).toEqual([{ code: 0, signal: null }])
  })

  it('rejects when ssh2 throws because the socket is gone', async () => {
    const { conn } = connection(() => {
      throw new Error('Not connected')
    })
    await expect(createLease(conn).exec('true')).rejects.toThrow('Not connected')
  })

  it('hands the slot back once, saying whether to retire the connection; alive follows the connection', () => {
    const { conn, released, die } = connection(() => undefined)
    const lease = createLease(conn)
    expect(lease.key).toBe('deploy@10.0.0.5:22')
    expect(lease.alive).toBe(true)
    die()
    expect(lease.alive).toBe(false)
    lease.release({ retire: true })
    lease.release()
    expect(released).toEqual([true])
    expect(createLease(conn).release()).toBeUndefined()
    expect(released).toEqual([true, false])
  })
})
