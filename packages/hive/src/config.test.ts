import { generateSigningKey, isApiaryError } from '@apiary/shared'
import { parseCommandLine } from '@apiary/shared/runtime'
import { describe, expect, it } from 'vitest'
import { HIVE_OPTIONS, parseHiveConfig } from './config.ts'

const KEY = generateSigningKey().publicKey
const config = (argv: string[], env: NodeJS.ProcessEnv = {}) => parseHiveConfig(parseCommandLine('apiary-hive', HIVE_OPTIONS, argv, env).values, env, { host: 'box.example.org', pid: 42 })

describe('parseHiveConfig', () => {
  it('fills in the defaults, the id from region, host and pid, and freezes', () => {
    const c = config(['--nats', 'nats://n:4222', '--region', 'eu', '--queen-key', KEY], { APIARY_HEARTBEAT_MS: '250' })
    expect(c).toEqual({ natsUrl: 'nats://n:4222', nats: { insecure: false }, queenKey: KEY, region: 'eu', hiveId: 'hive-eu-box-42', heartbeatMs: 250 })
    expect(Object.isFrozen(c)).toBe(true)
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
