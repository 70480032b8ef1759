import { describe, expect, it } from 'vitest'
import { isApiaryError } from '../errors.ts'
import { Operation } from './operation.ts'
import { hasSecrets, joinSecrets, OperationView, REDACTED, redactOperation, splitSecrets } from './secrets.ts'

const TOKEN = 's3cr3t-env-value-7f3a'
const STDIN = 'stdin-secret-ünïcode-91c2\n'
const op = Operation.parse({ type: 'exec', argv: ['deploy', '--now'], env: { TOKEN, REGION: 'eu' }, stdin: STDIN, cwd: '/srv' })

describe('redactOperation', () => {
  it('keeps env keys with "[redacted]" values and says stdin only by its byte length', () => {
    const view = redactOperation(op)
    expect(view).toEqual({ type: 'exec', shell: false, argv: ['deploy', '--now'], cwd: '/srv', env: { TOKEN: REDACTED, REGION: REDACTED }, stdinBytes: Buffer.byteLength(STDIN) })
    expect(JSON.stringify(view)).not.toContain(TOKEN)
    expect(JSON.stringify(view)).not.toContain('stdin-secret')
    expect(OperationView.parse(view)).toEqual(view)
  })

  it('gives operations without secrets back as they are', () => {
    expect(redactOperation({ type: 'ping' })).toEqual({ type: 'ping' })
    const plain = Operation.parse({ type: 'exec', shell: true, command: 'uptime' })
    expect(redactOperation(plain)).toEqual(plain)
    expect(splitSecrets(plain).secrets).toBeUndefined()
    expect(hasSecrets(redactOperation(plain))).toBe(false)
  })

  it('is not an operation a queen would run: the view schema refuses stdin and real env values', () => {
    expect(OperationView.safeParse({ ...redactOperation(op), env: { TOKEN } }).success).toBe(false)
    expect(OperationView.safeParse({ ...redactOperation(op), stdin: STDIN }).success).toBe(false)
    expect(Operation.safeParse(redactOperation(op)).success).toBe(false)
  })
})

describe('splitSecrets and joinSecrets', () => {
  it('split an operation into its view and its secrets, and join them into the same operation', () => {
    const { view, secrets } = splitSecrets(op)
    expect(secrets).toEqual({ env: { TOKEN, REGION: 'eu' }, stdin: STDIN })
    expect(hasSecrets(view)).toBe(true)
    expect(joinSecrets(view, secrets)).toEqual(op)
  })

  it('keep an empty env and an empty stdin as they were', () => {
    const o = Operation.parse({ type: 'exec', argv: ['x'], env: {}, stdin: '' })
    const { view, secrets } = splitSecrets(o)
    expect(view).toMatchObject({ env: {}, stdinBytes: 0 })
    expect(joinSecrets(view, secrets)).toEqual(o)
  })

  it('refuse secrets that are not the view’s, naming the field and never a value', () => {
    const { view } = splitSecrets(op)
    const cases = [
      [undefined, 'operation.env'],
      [{ env: { TOKEN }, stdin: STDIN }, 'operation.env'],
      [{ env: { TOKEN, REGION: 'eu' } }, 'operation.stdin'],
      [{ env: { TOKEN, REGION: 'eu' }, stdin: `${STDIN}x` }, 'operation.stdin'],
    ] as const
    for (const [secrets, field] of cases) {
      let err: unknown
      try {
        joinSecrets(view, secrets)
      } catch (e) {
        err = e
      }
      expect(isApiaryError(err, 'invalid_input'), JSON.stringify(secrets)).toBe(true)
      expect((err as { field?: string }).field).toBe(field)
      expect((err as Error).message).not.toContain(TOKEN)
      expect((err as Error).message).not.toContain('stdin-secret')
    }
    expect(() => joinSecrets(redactOperation(Operation.parse({ type: 'exec', argv: ['x'] })), { env: { TOKEN } })).toThrow(/operation\.env/)
  })
})
