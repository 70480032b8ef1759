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
    const c = config(['--nats', 'nats://n:4222', '--label', 'role=web', '--queen-key', KEY], { HOME: '/home/a' })
    expect(c).toEqual({
      natsUrl: 'nats://n:4222',
      nats: { insecure: false },
      queenKey: KEY,
      region: 'default',
      heartbeatMs: 5000,
      ops: { metrics: undefined, drainGraceMs: 30_000 },
      stateDir: '/home/a/.local/state/apiary',
      journal: { dir: '/home/a/.local/state/apiary/worker-box.example.org', maxEntries: 100_000 },
      mode: 'agent',
      nodeId: 'box.example.org',
      labels: { role: 'web' },
      runAs: undefined,
    })
    expect(Object.isFrozen(c)).toBe(true)
    expect(Object.isFrozen(c.journal)).toBe(true)
  })

  it('--run-as (or APIARY_RUN_AS) names the user commands run as, looked up at start', () => {
    expect(config(['--nats', 'n', '--run-as', 'nobody', '--queen-key', KEY])).toMatchObject({ mode: 'agent', runAs: 'nobody' })
    expect(config(['--nats', 'n', '--queen-key', KEY], { APIARY_RUN_AS: 'apiary-run' })).toMatchObject({ runAs: 'apiary-run' })
  })

  it('the journal: in --state-dir (or APIARY_STATE_DIR) under the worker’s id, its bound from --journal-entries', () => {
    expect(config(['--nats', 'n', '--node-id', 'web-1', '--state-dir', '/var/lib/apiary', '--journal-entries', '5000', '--queen-key', KEY]).journal).toEqual({ dir: '/var/lib/apiary/worker-web-1', maxEntries: 5000 })
    expect(config(['--nats', 'n', '--ssh', '--inventory', 'f', '--id', 'ssh-eu-1', '--queen-key', KEY], { APIARY_STATE_DIR: '/srv/apiary', APIARY_JOURNAL_ENTRIES: '7' }).journal).toEqual({ dir: '/srv/apiary/ssh-worker-ssh-eu-1', maxEntries: 7 })
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
      ops: { metrics: undefined, drainGraceMs: 30_000 },
      stateDir: '/home/a/.local/state/apiary',
      journal: { dir: '/home/a/.local/state/apiary/ssh-worker-ssh-eu-box-42', maxEntries: 100_000 },
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
    [['--nats', 'n', '--journal-entries', '0'], '--journal-entries'],
    [['--nats', 'n', '--run-as', ' '], '--run-as'],
    [['--nats', 'n', '--ssh', '--inventory', 'f', '--run-as', 'nobody'], '--run-as'],
  ])('%j is invalid_input naming %s', (argv, field) => {
    expect(problem(argv).field).toBe(field)
  })
})
