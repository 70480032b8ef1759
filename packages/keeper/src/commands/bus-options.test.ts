import { describe, expect, it } from 'vitest'
import { identityFromFlags } from './bus-options.ts'

const none = { role: undefined, region: undefined, 'node-id': undefined, id: undefined }
const flags = (v: Partial<Parameters<typeof identityFromFlags>[0]>) => ({ ...none, ...v })

describe('identity flags', () => {
  it('reads each role', () => {
    expect(identityFromFlags(flags({ role: 'queen' }))).toEqual({ role: 'queen', id: 'queen' })
    expect(identityFromFlags(flags({ role: 'queen', id: 'q-2' }))).toEqual({ role: 'queen', id: 'q-2' })
    expect(identityFromFlags(flags({ role: 'worker', region: 'eu', 'node-id': 'web-1.example.com' }))).toEqual({ role: 'worker', region: 'eu', id: 'web-1.example.com' })
    expect(identityFromFlags(flags({ role: 'worker', region: 'eu', id: 'web-1' }))).toEqual({ role: 'worker', region: 'eu', id: 'web-1' })
    expect(identityFromFlags(flags({ role: 'hive', region: 'eu', id: 'hive-1' }))).toEqual({ role: 'hive', region: 'eu', id: 'hive-1' })
    expect(identityFromFlags(flags({ role: 'ssh-worker', region: 'us', id: 'ssh-1' }))).toEqual({ role: 'ssh-worker', region: 'us', id: 'ssh-1' })
  })

  it.each([
    [{}, '--role', /--role is required/],
    [{ role: 'queen', region: 'eu' }, '--region', /a queen serves every region/],
    [{ role: 'queen', 'node-id': 'n' }, '--node-id', /--node-id is for --role worker/],
    [{ role: 'worker', 'node-id': 'n' }, '--region', /--region is required for a worker/],
    [{ role: 'worker', region: 'e.u', 'node-id': 'n' }, '--region', /--region: must hold only/],
    [{ role: 'worker', region: 'eu' }, '--node-id', /--node-id is required/],
    [{ role: 'worker', region: 'eu', 'node-id': 'a b' }, '--node-id', /--node-id: must start/],
    [{ role: 'worker', region: 'eu', 'node-id': 'a', id: 'b' }, '--id', /differ/],
    [{ role: 'hive', region: 'eu' }, '--id', /--id is required for a hive/],
    [{ role: 'hive', region: 'eu', 'node-id': 'x' }, '--node-id', /a hive takes --id/],
    [{ role: 'ssh-worker', region: 'eu', id: '' }, '--id', /--id: must not be empty/],
  ] as const)('refuses %o, naming %s', (v, field, message) => {
    let caught: unknown
    try {
      identityFromFlags(flags(v))
    } catch (err) {
      caught = err
    }
    expect(caught).toMatchObject({ code: 'invalid_input', field })
    expect((caught as Error).message).toMatch(message)
  })
})
