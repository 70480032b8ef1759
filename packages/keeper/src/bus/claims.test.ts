import { permissionsFor } from '@apiary/shared'
import { describe, expect, it } from 'vitest'
import { accountClaims, claimsUpdateSubject, JETSTREAM_STREAMS, RESPONSE_TTL_NS, systemUserClaims, userClaims } from './claims.ts'

const GIB = 1024 ** 3

describe('bus claims', () => {
  it("gives a worker exactly its role's allow lists and one reply per request it received", () => {
    const p = permissionsFor({ role: 'worker', region: 'eu', id: 'web-1' })
    expect(userClaims(p)).toEqual({
      pub: { allow: p.pub },
      sub: { allow: p.sub },
      resp: { max: 1, ttl: RESPONSE_TTL_NS },
      allowed_connection_types: ['STANDARD'],
      payload: 512 * 1024,
      subs: 16,
      data: -1,
    })
    expect(userClaims(p).pub?.allow).toContain('apiary.ev.eu.web-1.*')
    expect(userClaims(p).sub?.allow).not.toContain('_INBOX.>')
  })

  it('states the reply window as a Go duration: 2 minutes in nanoseconds', () => {
    expect(RESPONSE_TTL_NS).toBe(120_000_000_000)
  })

  it('gives the queen, which answers nothing, no reply permission', () => {
    expect(userClaims(permissionsFor({ role: 'queen', id: 'queen' }))).not.toHaveProperty('resp')
  })

  it('spells an empty list as a denial of all, never as an empty allow list (which nats-server reads as everything)', () => {
    expect(userClaims({ pub: [], sub: ['a'], respond: false, maxPayload: 1, maxSubs: 1 })).toMatchObject({ pub: { deny: ['>'] }, sub: { allow: ['a'] } })
    expect(userClaims({ pub: [], sub: [], respond: false, maxPayload: 1, maxSubs: 1 }).pub).not.toHaveProperty('allow')
  })

  it('puts the signing key and, only when there are some, the revocations in the account', () => {
    expect(accountClaims('AKEY', {}, GIB)).not.toHaveProperty('revocations')
    expect(accountClaims('AKEY', { UX: 17 }, GIB)).toMatchObject({ signing_keys: ['AKEY'], revocations: { UX: 17 }, limits: { conn: -1, payload: -1, disallow_bearer: true } })
  })

  it("gives the account JetStream on disk only, for apiary's five streams", () => {
    expect(accountClaims('AKEY', {}, 48 * GIB).limits).toMatchObject({ disk_storage: 48 * GIB, mem_storage: 0, streams: 5, consumer: 128, max_ack_pending: 4096 })
    expect(JETSTREAM_STREAMS).toEqual(['APIARY_EVENTS', 'APIARY_LOG', 'KV_APIARY_LEASES', 'KV_APIARY_SECRETS', 'KV_APIARY_CLAIMS'])
  })

  it("gives keeper's system user the apiary account's claims update and its own inbox, nothing else", () => {
    expect(claimsUpdateSubject('AAPIARY')).toBe('$SYS.REQ.ACCOUNT.AAPIARY.CLAIMS.UPDATE')
    expect(systemUserClaims('AAPIARY')).toEqual({
      pub: { allow: ['$SYS.REQ.ACCOUNT.AAPIARY.CLAIMS.UPDATE'] },
      sub: { allow: ['_INBOX.keeper.>'] },
      allowed_connection_types: ['STANDARD'],
    })
  })
})
