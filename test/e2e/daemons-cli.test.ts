import { describe, expect, it } from 'vitest'
import { generateSigningKey, subjects } from '@apiary/shared'
import { silentLogger } from '@apiary/shared/runtime'
import { createNatsBus } from '@apiary/shared/nats'
import { freePort, runBin, startBin, startNats, tempDir, waitUntil } from '../harness/index.ts'

/** Any key will do where no work is checked. */
const QUEEN_KEY = generateSigningKey().publicKey

/** The daemons at their CLI boundary: bad flags are usage errors that name the flag. */
describe('apiary-queen, apiary-hive, apiary-worker flags', () => {
  it.each(['apiary-queen', 'apiary-hive', 'apiary-worker'])('%s answers --help and refuses an unknown flag', async (bin) => {
    const help = await runBin(bin, ['--help'])
    expect(help.code).toBe(0)
    expect(help.stdout).toContain(`usage: ${bin}`)
    expect(help.stdout).toMatch(/--log-level LEVEL/)
    const bad = await runBin(bin, ['--bogus'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toBe(`${bin}: unknown flag --bogus (see ${bin} --help)\n`)
  })

  it('answers --help even when the environment holds a bad value, and names that variable otherwise', async () => {
    const help = await runBin('apiary-hive', ['--help'], { APIARY_HEARTBEAT_MS: '5' })
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('usage: apiary-hive')
    const bad = await runBin('apiary-hive', ['--nats', 'nats://127.0.0.1:1'], { APIARY_HEARTBEAT_MS: '5' })
    expect(bad.code).toBe(2)
    expect(bad.stderr).toBe('apiary-hive: APIARY_HEARTBEAT_MS: "5" must be from 100ms to 10m (500ms, 5s, 2m, 1h; a bare number is ms)\n')
  })

  it.each([
    ['apiary-worker', [], /--nats \(or APIARY_NATS_URL\) is required/],
    ['apiary-hive', [], /--nats \(or APIARY_NATS_URL\) is required/],
    ['apiary-worker', ['--nats', 'nats://127.0.0.1:1', '--label', 'bad key=x'], /--label: label name "bad key"/],
    ['apiary-worker', ['--nats', 'nats://127.0.0.1:1', '--node-id', 'a b'], /--node-id: must start with a letter or digit/],
    ['apiary-worker', ['--nats', 'nats://127.0.0.1:1', '--heartbeat', 'often'], /--heartbeat: "often" is not a duration/],
    ['apiary-hive', ['--nats', 'nats://127.0.0.1:1', '--region', 'eu west'], /--region: must hold only/],
    ['apiary-queen', ['--port', '70000'], /--port: "70000" must be a whole number from 0 to 65535/],
    ['apiary-worker', ['--nats', 'nats://127.0.0.1:1', '--ssh'], /--inventory \(or APIARY_INVENTORY\) is required with --ssh/],
    ['apiary-worker', ['--nats', 'nats://127.0.0.1:1', '--ssh', '--inventory', 'x.yaml', '--host-key-policy', 'yolo'], /--host-key-policy: "yolo" must be strict or accept-new/],
  ])('%s %j exits 2 naming the problem', async (bin, args, message) => {
    const r = await runBin(bin, args, { APIARY_NATS_URL: '' })
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(message)
  })

  it('an SSH worker given a missing inventory names the file and exits 2', async () => {
    const r = await runBin('apiary-worker', ['--nats', 'nats://127.0.0.1:1', '--insecure-bus', '--queen-key', QUEEN_KEY, '--ssh', '--inventory', '/nonexistent/fleet.yaml'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('inventory file /nonexistent/fleet.yaml does not exist')
  })

  it('a worker that cannot reach NATS says so and exits 1', async () => {
    const port = await freePort()
    const r = await runBin('apiary-worker', ['--nats', `nats://127.0.0.1:${port}`, '--insecure-bus', '--queen-key', QUEEN_KEY, '--node-id', 'w1'])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`apiary-worker: cannot connect to NATS at nats://127.0.0.1:${port}`)
  })

  it('a credential in the NATS URL is refused without being echoed, and exits 2', async () => {
    const r = await runBin('apiary-worker', ['--nats', 'nats://alice:s3cret-pw@127.0.0.1:4222', '--queen-key', QUEEN_KEY, '--node-id', 'w1'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/--nats holds a credential in its URL/)
    expect(r.stderr + r.stdout).not.toContain('s3cret-pw')
  })

  it.each([
    ['apiary-worker', ['--node-id', 'w1', '--queen-key', 'KEY']],
    ['apiary-hive', ['--queen-key', 'KEY']],
    ['apiary-queen', []],
  ])('%s refuses a bus without authentication unless told --insecure-bus', async (bin, args) => {
    const dir = await tempDir('no-auth')
    try {
      const r = await runBin(bin, ['--nats', 'nats://127.0.0.1:1', ...args.map((a) => (a === 'KEY' ? QUEEN_KEY : a))], { APIARY_STATE_DIR: dir.path })
      expect(r.code).toBe(2)
      expect(r.stderr).toMatch(/the bus has no authentication: give --nats-creds/)
    } finally {
      await dir.remove()
    }
  })

  it.each([
    ['apiary-worker', ['--node-id', 'w1']],
    ['apiary-hive', []],
  ])('%s will not start without the queen key to pin', async (bin, args) => {
    const r = await runBin(bin, ['--nats', 'nats://127.0.0.1:1', '--insecure-bus', ...args])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/--queen-key/)
  })

  it('reads a bare number as seconds in --heartbeat as keeper does in --timeout, and APIARY_HEARTBEAT_MS as ms', async () => {
    const nats = await startNats()
    const bus = await createNatsBus({ url: nats.url, name: 'e2e-heartbeat', log: silentLogger(), insecure: true })
    const beats = new Map<string, number[]>()
    for (const id of ['hb-flag', 'hb-env']) {
      bus.subscribe(subjects.heartbeat('worker', 'default', id), () => {
        beats.set(id, [...(beats.get(id) ?? []), Date.now()])
      })
    }
    await bus.flush()
    const workers = [
      startBin('apiary-worker', ['--nats', nats.url, '--insecure-bus', '--queen-key', QUEEN_KEY, '--node-id', 'hb-flag', '--heartbeat', '1']),
      startBin('apiary-worker', ['--nats', nats.url, '--insecure-bus', '--queen-key', QUEEN_KEY, '--node-id', 'hb-env'], { APIARY_HEARTBEAT_MS: '300' }),
    ]
    const dir = await tempDir('heartbeat')
    try {
      await waitUntil(() => (beats.get('hb-flag')?.length ?? 0) >= 3 && (beats.get('hb-env')?.length ?? 0) >= 3, 'three heartbeats of each worker', 15_000)
      const gaps = (id: string) => beats.get(id)!.slice(0, 3).map((t, i, all) => t - (all[i - 1] ?? t)).slice(1)
      for (const gap of gaps('hb-flag')) expect(gap).toBeGreaterThan(700) // one second, not one millisecond
      for (const gap of gaps('hb-env')) expect(gap).toBeLessThan(2000) // 300 ms, not 300 seconds
      // The same bare 1 in keeper run --timeout is one second too.
      const r = await runBin('keeper', ['dev', '--workers', '1', '--heartbeat', '1', 'run', '-o', 'json', '--timeout', '1', '--', 'true'], { XDG_STATE_HOME: dir.path, APIARY_STATE_DIR: '' })
      expect(r.code, r.stderr).toBe(0)
      expect((JSON.parse(r.stdout) as { job: { rollout: { timeoutMs: number } } }).job.rollout.timeoutMs).toBe(1000)
    } finally {
      await Promise.all(workers.map((w) => w.stop()))
      await bus.close()
      await nats.stop()
      await dir.remove()
    }
  })
})
