import { describe, expect, it } from 'vitest'
import { freePort, runBin } from '../harness/index.ts'

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
    const r = await runBin('apiary-worker', ['--nats', 'nats://127.0.0.1:1', '--ssh', '--inventory', '/nonexistent/fleet.yaml'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('inventory file /nonexistent/fleet.yaml does not exist')
  })

  it('a worker that cannot reach NATS says so and exits 1', async () => {
    const port = await freePort()
    const r = await runBin('apiary-worker', ['--nats', `nats://alice:s3cret-pw@127.0.0.1:${port}`, '--node-id', 'w1'])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`apiary-worker: cannot connect to NATS at nats://[redacted]@127.0.0.1:${port}`)
    expect(r.stderr + r.stdout).not.toContain('s3cret-pw')
  })
})
