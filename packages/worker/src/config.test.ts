import { generateSigningKey, isApiaryError } from '@apiary/shared'
import { parseCommandLine } from '@apiary/shared/runtime'
import { describe, expect, it } from 'vitest'
import { parseWorkerConfig, WORKER_OPTIONS } from './config.ts'

const self = { host: 'box.example.org', pid: 42 }
const KEY = generateSigningKey().publicKey
const config = (argv: string[], env: NodeJS.ProcessEnv = {}) => parseWorkerConfig(parseCommandLine('apiary-worker', WORKER_OPTIONS, argv, env).values, env, self)

function problem(argv: string[], env: NodeJS.ProcessEnv = {}): { field?: string; message: string } {
  try {
    config(argv, env)
  } catch (err) {
    expect(isApiaryError(err, 'invalid_input'), String(err)).toBe(true)
    return err as { field?: string; message: string }
  }
  throw new Error(`${argv.join(' ')} was accepted`)
}

describe('parseWorkerConfig', () => {
  it('an agent: the host name as node id, labels parsed, defaults filled in, frozen', () => {
    const c = config(['--nats', 'nats://n:4222', '--label', 'role=web', '--queen-key', KEY])
    expect(c).toEqual({ natsUrl: 'nats://n:4222', nats: { insecure: false }, queenKey: KEY, region: 'default', heartbeatMs: 5000, mode: 'agent', nodeId: 'box.example.org', labels: { role: 'web' } })
    expect(Object.isFrozen(c)).toBe(true)
  })

  it('an SSH worker: its id, inventory and pool options', () => {
    const c = config(['--nats', 'nats://n:4222', '--ssh', '--region', 'eu', '--inventory', 'fleet.yaml', '--max-per-host', '4', '--heartbeat', '2', '--queen-key', KEY], {
      HOME: '/home/a',
      SSH_AUTH_SOCK: '/agent',
    })
    expect(c).toEqual({
      natsUrl: 'nats://n:4222',
      nats: { insecure: false },
      queenKey: KEY,
      region: 'eu',
      heartbeatMs: 2000,
      mode: 'ssh',
      id: 'ssh-eu-box-42',
      inventoryFile: 'fleet.yaml',
      pool: { knownHosts: '/home/a/.ssh/known_hosts', hostKeyPolicy: 'strict', agent: '/agent', maxPerHost: 4, maxTotal: 1024, connectTimeoutMs: 10_000 },
    })
  })

  it.each([
    [[], '--nats'],
    [['--nats', 'n', '--ssh'], '--inventory'],
    [['--nats', 'n', '--node-id', 'a b'], '--node-id'],
    [['--nats', 'n', '--label', 'bad key=x'], '--label'],
    [['--nats', 'n', '--region', 'eu west'], '--region'],
    [['--nats', 'n', '--ssh', '--inventory', 'f', '--max-connections', '0'], '--max-connections'],
    [['--nats', 'n'], '--queen-key'],
  ])('%j is invalid_input naming %s', (argv, field) => {
    expect(problem(argv).field).toBe(field)
  })
})
