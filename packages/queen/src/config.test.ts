import { parseCommandLine } from '@apiary/shared/runtime'
import { describe, expect, it } from 'vitest'
import { parseQueenConfig, QUEEN_OPTIONS } from './config.ts'

const config = (argv: string[], env: NodeJS.ProcessEnv) => parseQueenConfig(parseCommandLine('apiary-queen', QUEEN_OPTIONS, argv, env).values, env)

describe('parseQueenConfig', () => {
  it('fills in the defaults: the state dir from XDG, the token file inside it', () => {
    const c = config([], { XDG_STATE_HOME: '/x/state' })
    expect(c).toEqual({
      natsUrl: undefined,
      nats: { insecure: false },
      queenId: 'queen',
      host: '127.0.0.1',
      port: 7070,
      stateDir: '/x/state/apiary',
      tokenFile: '/x/state/apiary/token',
      signingKeyFile: '/x/state/apiary/signing.key',
      inventoryFile: undefined,
      retentionMs: 30 * 24 * 3600_000,
      replicas: 1,
      leaseTtlMs: 6000,
      rebuildIndex: false,
      drainGraceMs: 30_000,
    })
    expect(Object.isFrozen(c)).toBe(true)
  })

  it('takes flags over the environment', () => {
    const c = config(['--port', '0', '--state-dir', '/s', '--nats', 'nats://n:4222'], { APIARY_PORT: '8080', APIARY_TOKEN_FILE: '/t' })
    expect(c).toMatchObject({ natsUrl: 'nats://n:4222', port: 0, stateDir: '/s', tokenFile: '/t' })
  })

  it('takes --public-url as an origin, and refuses one that is not, naming the flag', () => {
    expect(config(['--public-url', 'https://apiary.example:8443/'], {}).publicUrl).toBe('https://apiary.example:8443')
    expect(config([], { APIARY_PUBLIC_URL: 'https://a.example' }).publicUrl).toBe('https://a.example')
    for (const bad of ['apiary.example', 'ftp://a.example', 'https://u:p@a.example', 'https://a.example/ui']) {
      expect(() => config(['--public-url', bad], {}), bad).toThrow(/^--public-url: /)
    }
  })
})
