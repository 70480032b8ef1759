import { describe, expect, it } from 'vitest'
import { emptyRegistry, parseRegistry, recordIssue, recordRevoke, revocationsOf } from './registry.ts'

const key = (c: string) => `U${c.repeat(55)}`
const web1 = { role: 'worker', region: 'eu', id: 'web-1' } as const
const t0 = new Date('2026-01-02T03:04:05.600Z')
const t1 = new Date('2026-01-02T03:05:00.900Z')

describe('the bus registry', () => {
  it('records an issue; issuing again revokes the earlier key, and only that identity’s', () => {
    let reg = recordIssue(emptyRegistry(), web1, key('A'), t0).registry
    reg = recordIssue(reg, { ...web1, id: 'web-2' }, key('B'), t0).registry
    reg = recordIssue(reg, { role: 'hive', region: 'eu', id: 'web-1' }, key('D'), t0).registry
    const again = recordIssue(reg, web1, key('C'), t1)
    expect(again.revoked.map((e) => e.publicKey)).toEqual([key('A')])
    expect(again.registry.identities.map((e) => [e.id, e.region, e.publicKey, e.revokedAt])).toEqual([
      ['web-1', 'eu', key('A'), t1.toISOString()],
      ['web-2', 'eu', key('B'), null],
      ['web-1', 'eu', key('D'), null],
      ['web-1', 'eu', key('C'), null],
    ])
  })

  it('revokes every active key of an identity, and nothing when it has none', () => {
    const reg = recordIssue(emptyRegistry(), { role: 'queen', id: 'queen' }, key('Q'), t0).registry
    expect(recordRevoke(reg, web1, t1).revoked).toEqual([])
    const r = recordRevoke(reg, { role: 'queen', id: 'queen' }, t1)
    expect(r.revoked).toHaveLength(1)
    expect(r.registry.identities[0]).toEqual({ role: 'queen', id: 'queen', publicKey: key('Q'), issuedAt: t0.toISOString(), revokedAt: t1.toISOString() })
    expect(recordRevoke(r.registry, { role: 'queen', id: 'queen' }, t1).revoked).toEqual([])
  })

  it('gives the account its revocations in whole seconds, rounded down (a JWT’s iat is in seconds)', () => {
    const reg = recordRevoke(recordIssue(emptyRegistry(), web1, key('A'), t0).registry, web1, t1).registry
    expect(revocationsOf(reg)).toEqual({ [key('A')]: Math.floor(t1.getTime() / 1000) })
    expect(revocationsOf(recordIssue(emptyRegistry(), web1, key('A'), t0).registry)).toEqual({})
  })

  it('reads its file back, and names the file when it is not a registry', () => {
    const reg = recordIssue(emptyRegistry(), web1, key('A'), t0).registry
    expect(parseRegistry(JSON.stringify(reg), 'identities.json')).toEqual(reg)
    expect(() => parseRegistry('{', '/b/identities.json')).toThrow('/b/identities.json is not valid JSON')
    expect(() => parseRegistry(JSON.stringify({ version: 1, identities: [{ ...reg.identities[0], publicKey: 'nope' }] }), '/b/identities.json')).toThrow(
      '/b/identities.json.identities.0.publicKey: is not a user public key',
    )
  })

  it('refuses a node id enrolled in another region until it is revoked there', () => {
    const t0 = new Date(0)
    const reg = recordIssue(emptyRegistry(), { role: 'worker', region: 'eu', id: 'web-1' }, key('A'), t0).registry
    expect(() => recordIssue(reg, { role: 'worker', region: 'us', id: 'web-1' }, key('B'), t0)).toThrow(/node web-1 is enrolled in region eu: revoke it there first/)
    const moved = recordRevoke(reg, { role: 'worker', region: 'eu', id: 'web-1' }, t0).registry
    expect(recordIssue(moved, { role: 'worker', region: 'us', id: 'web-1' }, key('B'), t0).registry.identities.filter((e) => e.revokedAt === null)).toHaveLength(1)
  })
})
