import { describe, expect, it } from 'vitest'
import { type Identity, permissionsFor } from './identity.ts'

const QUEEN: Identity = { role: 'queen', id: 'queen' }
const OTHERS: Identity[] = [
  { role: 'hive', region: 'eu', id: 'hive-1' },
  { role: 'worker', region: 'eu', id: 'web-1' },
  { role: 'ssh-worker', region: 'eu', id: 'ssh-1' },
]

const jetStreamSubjects = (list: readonly string[]) => list.filter((s) => s.startsWith('$'))

describe('JetStream permissions', () => {
  it("lets the queen use apiary's two streams, its lease bucket and its secrets bucket, make the claims bucket, and no other stream", () => {
    expect(jetStreamSubjects(permissionsFor(QUEEN).pub).sort()).toEqual(
      [
        '$JS.API.INFO',
        ...['APIARY_EVENTS', 'APIARY_LOG', 'KV_APIARY_LEASES', 'KV_APIARY_SECRETS', 'KV_APIARY_CLAIMS'].flatMap((s) => [`$JS.API.STREAM.CREATE.${s}`, `$JS.API.STREAM.UPDATE.${s}`, `$JS.API.STREAM.INFO.${s}`]),
        ...['APIARY_EVENTS', 'APIARY_LOG'].flatMap((s) => [
          `$JS.API.CONSUMER.CREATE.${s}.>`,
          `$JS.API.CONSUMER.INFO.${s}.*`,
          `$JS.API.CONSUMER.DELETE.${s}.*`,
          `$JS.API.CONSUMER.MSG.NEXT.${s}.*`,
          `$JS.ACK.${s}.>`,
        ]),
        '$KV.APIARY_LEASES.>',
        '$JS.API.STREAM.MSG.GET.KV_APIARY_LEASES',
        '$KV.APIARY_SECRETS.>',
        '$JS.API.STREAM.MSG.GET.KV_APIARY_SECRETS',
        '$JS.API.STREAM.PURGE.APIARY_EVENTS',
      ].sort(),
    )
  })

  it('never gives the queen a wildcard in the place of a stream, nor deletion or purging of one', () => {
    const names = ['APIARY_EVENTS', 'APIARY_LOG', 'KV_APIARY_LEASES', 'KV_APIARY_SECRETS', 'KV_APIARY_CLAIMS']
    for (const s of jetStreamSubjects(permissionsFor(QUEEN).pub)) {
      if (s === '$JS.API.INFO' || s === '$KV.APIARY_LEASES.>' || s === '$KV.APIARY_SECRETS.>') continue
      const toks = s.split('.')
      const at = toks.findIndex((t) => names.includes(t))
      expect(at, s).toBeGreaterThan(1)
      expect(toks.slice(0, at).filter((t) => t === '*' || t === '>'), s).toEqual([])
      expect(s).not.toMatch(/STREAM\.(?:DELETE|MSG\.DELETE|LIST|NAMES|SNAPSHOT|RESTORE)/)
      // The one purge: the events stream, trimmed by the leader of what it applied.
      if (s.includes('PURGE')) expect(s).toBe('$JS.API.STREAM.PURGE.APIARY_EVENTS')
    }
  })

  it('lets only the queen write the job log', () => {
    expect(permissionsFor(QUEEN).pub).toContain('apiary.log')
    for (const who of OTHERS) expect(permissionsFor(who).pub, who.role).not.toContain('apiary.log')
  })

  it('gives hives and workers no JetStream API and no lease: they store events with a publish, acknowledged in their own inbox', () => {
    for (const who of OTHERS) {
      const p = permissionsFor(who)
      expect(jetStreamSubjects(p.pub), who.role).toEqual(who.role === 'ssh-worker' ? SSH_CLAIMS_EU : [])
      expect(jetStreamSubjects(p.sub), who.role).toEqual([])
      expect(p.sub, who.role).toContain(`_INBOX.${who.role}.eu.${who.id}.>`)
    }
  })

  it("lets an SSH worker create, update and read its own region's claims, and no other key, stream or API", () => {
    expect(jetStreamSubjects(permissionsFor({ role: 'ssh-worker', region: 'eu', id: 'ssh-1' }).pub)).toEqual(SSH_CLAIMS_EU)
    expect(jetStreamSubjects(permissionsFor({ role: 'ssh-worker', region: 'us', id: 'ssh-1' }).pub)).toEqual([
      '$KV.APIARY_CLAIMS.us.>',
      '$JS.API.DIRECT.GET.KV_APIARY_CLAIMS.$KV.APIARY_CLAIMS.us.>',
    ])
  })
})

/** A write to a key is a publish to its subject; a read, a direct get naming the key in its subject. */
const SSH_CLAIMS_EU = ['$KV.APIARY_CLAIMS.eu.>', '$JS.API.DIRECT.GET.KV_APIARY_CLAIMS.$KV.APIARY_CLAIMS.eu.>']
