import { generateSigningKey, isApiaryError } from '@apiary/shared'
import { parseCommandLine } from '@apiary/shared/runtime'
import { describe, expect, it } from 'vitest'
import { HIVE_OPTIONS, parseHiveConfig } from './config.ts'

const KEY = generateSigningKey().publicKey
const config = (argv: string[], env: NodeJS.ProcessEnv = {}) => parseHiveConfig(parseCommandLine('apiary-hive', HIVE_OPTIONS, argv, env).values, env, { host: 'box.example.org', pid: 42 })

describe('parseHiveConfig', () => {
  it('fills in the defaults, the id from region, host and pid, and freezes', () => {
    const c = config(['--nats', 'nats://n:4222', '--region', 'eu', '--queen-key', KEY], { APIARY_HEARTBEAT_MS: '250' })
    expect(c).toEqual({ natsUrl: 'nats://n:4222', nats: { insecure: false }, queenKey: KEY, region: 'eu', hiveId: 'hive-eu-box-42', heartbeatMs: 250, ops: { metrics: undefined, drainGraceMs: 30_000 } })
    expect(Object.isFrozen(c)).toBe(true)
  })

  it('serves metrics where told; off the loopback only with a token file to scrape with', () => {
    const base = ['--nats', 'n', '--queen-key', KEY]
    const env = { APIARY_METRICS_PORT: '9464', APIARY_DRAIN_GRACE: '10s' }
    expect(config(base, env).ops).toEqual({ metrics: { host: '127.0.0.1', port: 9464, tokenFile: undefined }, drainGraceMs: 10_000 })
    const open = ['--metrics-port', '9464', '--metrics-host', '0.0.0.0']
    expect(() => config([...base, ...open])).toThrow(/--metrics-host 0\.0\.0\.0 is not a loopback address: give --metrics-token-file/)
    expect(config([...base, ...open, '--metrics-token-file', '/t']).ops.metrics).toEqual({ host: '0.0.0.0', port: 9464, tokenFile: '/t' })
  })

  it.each([
    [[], '--nats'],
    [['--nats', 'n', '--region', 'eu west'], '--region'],
    [['--nats', 'n', '--id', 'a b'], '--id'],
    [['--nats', 'n'], '--queen-key'],
  ])('%j is invalid_input naming %s', (argv, field) => {
    let thrown: unknown
    try {
      config(argv)
    } catch (err) {
      thrown = err
    }
    expect(isApiaryError(thrown, 'invalid_input'), String(thrown)).toBe(true)
    expect((thrown as { field?: string }).field).toBe(field)
  })
})
