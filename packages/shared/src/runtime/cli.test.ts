import { describe, expect, expectTypeOf, it } from 'vitest'
import {
  checkNatsConnectFlags,
  DAEMON_OPTIONS,
  NATS_CONNECT_OPTIONS,
  natsConnectOptionsFrom,
  type OptionTable,
  optionsHelp,
  parseCommandLine,
  parseLabels,
  requiredQueenKey,
  SSH_POOL_OPTIONS,
  sshPoolOptionsFrom,
} from './cli.ts'
import { isApiaryError } from '../errors.ts'

const TABLE = {
  heartbeat: DAEMON_OPTIONS.heartbeat,
  timeout: { type: 'duration', default: '30s', min: '1ms', help: 'execution deadline' },
  deadline: { type: 'duration', help: 'job deadline' },
  port: { type: 'int', min: 0, max: 65535, env: 'PORT', default: '7070', help: 'port' },
  workers: { type: 'int', min: 0, max: 1000, help: 'workers' },
  policy: { type: 'string', choices: ['strict', 'accept-new'], default: 'strict', help: 'policy' },
  level: { type: 'string', choices: ['info', 'warn', 'error'], help: 'level' },
  region: { type: 'string', env: 'REGION', default: 'default', help: 'region' },
  id: { type: 'string', help: 'id' },
  label: { type: 'string', multiple: true, env: 'LABELS', help: 'labels' },
  ssh: { type: 'boolean', env: 'SSH', help: 'ssh' },
} as const satisfies OptionTable

const parse = (argv: string[], env: NodeJS.ProcessEnv = {}) => parseCommandLine('test', TABLE, argv, env).values

function problem(argv: string[], env: NodeJS.ProcessEnv = {}): { message: string; field?: string } {
  try {
    parse(argv, env)
  } catch (err) {
    expect(isApiaryError(err, 'invalid_input'), String(err)).toBe(true)
    return err as { message: string; field?: string }
  }
  throw new Error(`${argv.join(' ')} was accepted`)
}

describe('parseCommandLine', () => {
  it('gives defaults, typed: ints and durations as numbers (ms), choices as their union', () => {
    const v = parse([])
    expect(v).toEqual({ heartbeat: 5000, timeout: 30_000, deadline: undefined, port: 7070, workers: undefined, policy: 'strict', level: undefined, region: 'default', id: undefined, label: [], ssh: false })
    expectTypeOf(v.heartbeat).toEqualTypeOf<number>()
    expectTypeOf(v.deadline).toEqualTypeOf<number | undefined>()
    expectTypeOf(v.port).toEqualTypeOf<number>()
    expectTypeOf(v.workers).toEqualTypeOf<number | undefined>()
    expectTypeOf(v.policy).toEqualTypeOf<'strict' | 'accept-new'>()
    expectTypeOf(v.level).toEqualTypeOf<'info' | 'warn' | 'error' | undefined>()
    expectTypeOf(v.region).toEqualTypeOf<string>()
    expectTypeOf(v.id).toEqualTypeOf<string | undefined>()
    expectTypeOf(v.label).toEqualTypeOf<string[]>()
    expectTypeOf(v.ssh).toEqualTypeOf<boolean>()
  })

  it('reads a bare number as seconds in every duration flag: --heartbeat 5 and --timeout 5 are both 5 s', () => {
    const v = parse(['--heartbeat', '5', '--timeout', '5', '--deadline', '5'])
    expect([v.heartbeat, v.timeout, v.deadline]).toEqual([5000, 5000, 5000])
    expect(parse(['--heartbeat', '500ms', '--timeout', '2m', '--deadline', '1h'])).toMatchObject({ heartbeat: 500, timeout: 120_000, deadline: 3_600_000 })
    expect(parse(['--heartbeat=0.5'])).toMatchObject({ heartbeat: 500 })
  })

  it('reads APIARY_HEARTBEAT_MS as its name says: a bare number is ms, a unit is honoured, the flag wins', () => {
    expect(parse([], { APIARY_HEARTBEAT_MS: '200' }).heartbeat).toBe(200)
    expect(parse([], { APIARY_HEARTBEAT_MS: '2s' }).heartbeat).toBe(2000)
    expect(parse(['--heartbeat', '1'], { APIARY_HEARTBEAT_MS: '200' }).heartbeat).toBe(1000)
    expect(parse([], { APIARY_HEARTBEAT_MS: '' }).heartbeat).toBe(5000)
  })

  it('fills absent flags from the environment, flags first', () => {
    expect(parse([], { PORT: '8080', REGION: 'eu', LABELS: 'a=1,b=2', SSH: '1' })).toMatchObject({ port: 8080, region: 'eu', label: ['a=1', 'b=2'], ssh: true })
    expect(parse(['--port', '9090', '--region', 'us', '--label', 'c=3'], { PORT: '8080', REGION: 'eu', LABELS: 'a=1' })).toMatchObject({ port: 9090, region: 'us', label: ['c=3'] })
  })

  it.each([
    [['--port', '70000'], '--port', '--port: "70000" must be a whole number from 0 to 65535'],
    [['--port', '1.5'], '--port', '--port: "1.5" must be a whole number from 0 to 65535'],
    [['--workers', 'many'], '--workers', '--workers: "many" must be a whole number from 0 to 1000'],
    [['--timeout', 'soon'], '--timeout', '--timeout: "soon" is not a duration (e.g. 500ms, 5s, 2m, 1h; a bare number is seconds)'],
    [['--timeout', '0'], '--timeout', '--timeout: "0" must be at least 1ms (500ms, 5s, 2m, 1h; a bare number is seconds)'],
    // The old reading of a bare number (ms) fails loudly instead of meaning 83 minutes.
    [['--heartbeat', '5000'], '--heartbeat', '--heartbeat: "5000" must be from 100ms to 10m (500ms, 5s, 2m, 1h; a bare number is seconds)'],
    [['--policy', 'yolo'], '--policy', '--policy: "yolo" must be strict or accept-new'],
    [['--level', 'loud'], '--level', '--level: "loud" must be one of info, warn, error'],
  ])('%j is invalid_input naming the flag', (argv, field, message) => {
    expect(problem(argv)).toMatchObject({ field, message })
  })

  it('names the variable, as written and in its unit, for a bad value from the environment', () => {
    expect(problem([], { PORT: 'http' })).toMatchObject({ field: 'PORT', message: 'PORT: "http" must be a whole number from 0 to 65535' })
    expect(problem([], { APIARY_HEARTBEAT_MS: 'often' })).toMatchObject({ field: 'APIARY_HEARTBEAT_MS' })
    expect(problem([], { APIARY_HEARTBEAT_MS: '5' })).toMatchObject({
      field: 'APIARY_HEARTBEAT_MS',
      message: 'APIARY_HEARTBEAT_MS: "5" must be from 100ms to 10m (500ms, 5s, 2m, 1h; a bare number is ms)',
    })
    // The flag wins over the variable, and is named when it is the one that is wrong.
    expect(problem(['--port', 'x'], { PORT: '80' })).toMatchObject({ field: '--port' })
  })

  it('refuses unknown flags, missing values and positionals', () => {
    expect(problem(['--bogus']).message).toBe('unknown flag --bogus (see test --help)')
    expect(problem(['--port']).message).toBe('flag --port needs a value (see test --help)')
    expect(problem(['stray']).message).toBe('unexpected argument "stray" (see test --help)')
  })
})

describe('optionsHelp', () => {
  it('says the duration rule on every duration flag, and how APIARY_HEARTBEAT_MS reads', () => {
    const lines = optionsHelp(TABLE).split('\n')
    for (const flag of ['--heartbeat DUR', '--timeout DUR', '--deadline DUR']) {
      expect(lines.find((l) => l.includes(flag))).toContain('a bare number is seconds')
    }
    expect(lines.find((l) => l.includes('--heartbeat'))).toContain('env APIARY_HEARTBEAT_MS, where a bare number is ms; default 5s')
    expect(lines.find((l) => l.includes('--port'))).toMatch(/--port N\s+port \(env PORT; default 7070\)$/)
  })
})

describe('sshPoolOptionsFrom', () => {
  const pool = (argv: string[], env: NodeJS.ProcessEnv) => sshPoolOptionsFrom(parseCommandLine('test', SSH_POOL_OPTIONS, argv, env).values, env)

  it('maps the SSH flags to the pool options, with the agent from SSH_AUTH_SOCK', () => {
    expect(pool(['--identity', '/k', '--passphrase-file', '/p', '--host-key-policy', 'accept-new', '--max-per-host', '4', '--connect-timeout', '3'], { HOME: '/home/a', SSH_AUTH_SOCK: '/agent' })).toEqual({
      knownHosts: '/home/a/.ssh/known_hosts',
      hostKeyPolicy: 'accept-new',
      keyFile: '/k',
      passphraseFile: '/p',
      agent: '/agent',
      maxPerHost: 4,
      maxTotal: 1024,
      connectTimeoutMs: 3000,
    })
  })

  it('bounds --connect-timeout: a zero deadline would wait for the kernel, a huge one past a timer', () => {
    for (const bad of ['0', '50ms', '2h']) {
      let err: unknown
      try {
        pool(['--connect-timeout', bad], { HOME: '/h' })
      } catch (e) {
        err = e
      }
      expect(isApiaryError(err, 'invalid_input') && err.field, bad).toBe('--connect-timeout')
    }
    expect(pool(['--connect-timeout', '1h'], { HOME: '/h' }).connectTimeoutMs).toBe(3_600_000)
  })

  it('leaves out what is not given', () => {
    expect(pool([], { HOME: '/h', APIARY_KNOWN_HOSTS: '/etc/kh' })).toEqual({ knownHosts: '/etc/kh', hostKeyPolicy: 'strict', maxPerHost: 2, maxTotal: 1024, connectTimeoutMs: 10_000 })
  })
})

describe('natsConnectOptionsFrom', () => {
  const nats = (argv: string[], env: NodeJS.ProcessEnv = {}) => natsConnectOptionsFrom(parseCommandLine('test', NATS_CONNECT_OPTIONS, argv, env).values)
  const refusal = (argv: string[], env: NodeJS.ProcessEnv = {}) => {
    try {
      nats(argv, env)
    } catch (err) {
      expect(isApiaryError(err, 'invalid_input'), String(err)).toBe(true)
      return err as { message: string; field?: string }
    }
    throw new Error(`${argv.join(' ')} was accepted`)
  }

  it('maps the flags to createNatsBus options, leaving out what is not given', () => {
    expect(nats([])).toEqual({ insecure: false })
    expect(nats(['--nats-creds', '/c', '--nats-ca', '/ca', '--nats-cert', '/crt', '--nats-key', '/k'])).toEqual({
      credsFile: '/c',
      tls: { caFile: '/ca', certFile: '/crt', keyFile: '/k' },
      insecure: false,
    })
    expect(nats(['--nats-user-file', '/u'])).toEqual({ userFile: '/u', insecure: false })
    expect(nats(['--nats-token-file', '/t', '--insecure-bus'])).toEqual({ tokenFile: '/t', insecure: true })
    expect(Object.isFrozen(nats([]))).toBe(true)
  })

  it('reads the file paths from APIARY_NATS_* (paths only, never the secrets), the flags first', () => {
    const env = { APIARY_NATS_CREDS: '/env.creds', APIARY_NATS_CA: '/env-ca.pem', APIARY_NATS_CERT: '/c.pem', APIARY_NATS_KEY: '/k.pem', APIARY_INSECURE_BUS: '1' }
    expect(nats([], env)).toEqual({ credsFile: '/env.creds', tls: { caFile: '/env-ca.pem', certFile: '/c.pem', keyFile: '/k.pem' }, insecure: true })
    expect(nats(['--nats-creds', '/flag.creds', '--nats-ca', '/flag-ca.pem'], env)).toMatchObject({ credsFile: '/flag.creds', tls: { caFile: '/flag-ca.pem' } })
    expect(nats([], { APIARY_NATS_USER_FILE: '/u' })).toEqual({ userFile: '/u', insecure: false })
    expect(nats([], { APIARY_NATS_TOKEN_FILE: '/t', APIARY_INSECURE_BUS: 'true' })).toEqual({ tokenFile: '/t', insecure: true })
    expect(nats([], { APIARY_INSECURE_BUS: '0' }).insecure).toBe(false)
  })

  it('takes at most one credential, whether from flags or variables', () => {
    expect(refusal(['--nats-creds', '/c', '--nats-token-file', '/t'])).toMatchObject({
      field: '--nats-token-file',
      message: 'give at most one NATS credential: --nats-creds and --nats-token-file are both given',
    })
    expect(refusal(['--nats-user-file', '/u'], { APIARY_NATS_CREDS: '/c' }).message).toBe('give at most one NATS credential: --nats-creds and --nats-user-file are both given')
    expect(refusal([], { APIARY_NATS_CREDS: '/c', APIARY_NATS_USER_FILE: '/u', APIARY_NATS_TOKEN_FILE: '/t' }).message).toBe(
      'give at most one NATS credential: --nats-creds and --nats-user-file and --nats-token-file are all given',
    )
  })

  it('wants a client certificate and its key together, naming both flags', () => {
    expect(refusal(['--nats-cert', '/c.pem'])).toMatchObject({ field: '--nats-key', message: '--nats-cert needs --nats-key: a client certificate is used with its private key' })
    expect(refusal([], { APIARY_NATS_KEY: '/k.pem' })).toMatchObject({ field: '--nats-cert', message: '--nats-key needs --nats-cert: a private key is used with its client certificate' })
    // createNatsBus applies the same rule to options given in code.
    expect(() => checkNatsConnectFlags({ tokenFile: '/t', userFile: '/u' })).toThrow('--nats-user-file and --nats-token-file are both given')
  })

  it('is in every daemon’s flags, with its variable in the help', () => {
    const help = optionsHelp(DAEMON_OPTIONS)
    for (const [flag, env] of [
      ['--nats-creds FILE', 'APIARY_NATS_CREDS'],
      ['--nats-user-file FILE', 'APIARY_NATS_USER_FILE'],
      ['--nats-token-file FILE', 'APIARY_NATS_TOKEN_FILE'],
      ['--nats-ca FILE', 'APIARY_NATS_CA'],
      ['--nats-cert FILE', 'APIARY_NATS_CERT'],
      ['--nats-key FILE', 'APIARY_NATS_KEY'],
      ['--insecure-bus ', 'APIARY_INSECURE_BUS'],
      ['--queen-key KEY|FILE', 'APIARY_QUEEN_KEY'],
    ] as const) {
      expect(help.split('\n').find((l) => l.includes(flag)), flag).toContain(`env ${env}`)
    }
  })
})

describe('requiredQueenKey', () => {
  it('names the flag and its variable when the key is missing', () => {
    expect(requiredQueenKey('ed25519:abc')).toBe('ed25519:abc')
    let err: unknown
    try {
      requiredQueenKey(undefined)
    } catch (e) {
      err = e
    }
    expect(isApiaryError(err, 'invalid_input') && err.field).toBe('--queen-key')
    expect(String(err)).toContain('--queen-key (or APIARY_QUEEN_KEY) is required')
  })
})

describe('parseLabels', () => {
  it('takes up to 64 labels and refuses the 65th, naming the flag', () => {
    const labels = (n: number) => Array.from({ length: n }, (_, i) => `k${i}=v`)
    expect(Object.keys(parseLabels(labels(64), '--label'))).toHaveLength(64)
    expect(() => parseLabels(labels(65), '--label')).toThrow('--label: at most 64 labels')
  })
})
