import { describe, expect, it } from 'vitest'
import { subjectMatches } from './bus/bus.ts'
import { fromSubjectToken, parseSubject, subjects } from './subjects.ts'

const tokens = (subject: string) => subject.split('.')

describe('subjects', () => {
  it('spells each subject under the apiary prefix, with region and node where permissions depend on them', () => {
    expect(subjects.hiveJobs('eu')).toBe('apiary.hive.eu.jobs')
    expect(subjects.hiveQueue('eu')).toBe('hive.eu')
    expect(subjects.hiveChunks('eu', 'hive-1')).toBe('apiary.hive.eu.chunk.hive-1')
    expect(subjects.task('eu', 'web-1')).toBe('apiary.task.eu.web-1')
    expect(subjects.ssh('eu')).toBe('apiary.ssh.eu')
    expect(subjects.nodeEvents('eu', 'web-1', 'jabc123')).toBe('apiary.ev.eu.web-1.jabc123')
    expect(subjects.sshEvents('eu', 'db-1', 'jabc123')).toBe('apiary.sev.eu.db-1.jabc123')
    expect(subjects.hiveEvents('eu', 'jabc123')).toBe('apiary.hev.eu.jabc123')
    expect(subjects.control('jabc123')).toBe('apiary.control.jabc123')
    expect(subjects.heartbeat('worker', 'eu', 'web-1')).toBe('apiary.hb.worker.eu.web-1')
    expect(subjects.inboxPrefix('hive', 'hive-1', 'eu')).toBe('_INBOX.hive.eu.hive-1')
    expect(subjects.inboxPrefix('queen', 'queen')).toBe('_INBOX.queen.queen')
  })

  it('escapes dots in a node id so the subject keeps its token count, and parses back', () => {
    const s = subjects.task('eu', 'web-1.eu.example.com')
    expect(tokens(s)).toHaveLength(4)
    expect(tokens(s)[3]).toBe('web-1%2Eeu%2Eexample%2Ecom')
    expect(parseSubject(s)).toEqual(['task', 'eu', 'web-1.eu.example.com'])
    expect(tokens(subjects.heartbeat('worker', 'eu', 'db.1'))).toHaveLength(5)
    expect(parseSubject('other.a.b')).toBeUndefined()
  })

  it('escapes % first, so distinct ids give distinct subjects', () => {
    // Without escaping %, the id "a%2Eb" and the id "a.b" would share one subject.
    expect(subjects.task('eu', 'a.b')).toBe('apiary.task.eu.a%2Eb')
    expect(subjects.task('eu', 'a%2Eb')).toBe('apiary.task.eu.a%252Eb')
    expect(fromSubjectToken('a%252Eb')).toBe('a%2Eb')
  })

  it('keeps an escaped node id reachable only by its own subject', () => {
    const s = subjects.task('eu', 'web-1.example.com')
    expect(subjectMatches('apiary.task.eu.*', s)).toBe(true)
    expect(subjectMatches('apiary.task.eu.web-1', s)).toBe(false)
    expect(subjectMatches('apiary.task.eu.web-1.>', s)).toBe(false)
  })

  it.each(['web*', '*', '>', 'a>b', 'has space', 'tab\there', 'new\nline', ''])('rejects %j as a token', (bad) => {
    expect(() => subjects.task('eu', bad)).toThrow(/cannot be used in a subject/)
    expect(() => subjects.hiveJobs(bad)).toThrow(/region/)
    expect(() => subjects.nodeEvents('eu', 'web-1', bad)).toThrow(/job id/)
    expect(() => subjects.heartbeat('worker', 'eu', bad)).toThrow(/cannot be used in a subject/)
  })

  it('has wildcards that match what the builders produce, and only that', () => {
    expect(subjectMatches(subjects.nodeEventsAll, subjects.nodeEvents('eu', 'web-1', 'jabc123'))).toBe(true)
    expect(subjectMatches(subjects.sshEventsAll, subjects.sshEvents('eu', 'db-1', 'jabc123'))).toBe(true)
    expect(subjectMatches(subjects.hiveEventsAll, subjects.hiveEvents('eu', 'jabc123'))).toBe(true)
    expect(subjectMatches(subjects.controlAll, subjects.control('jabc123'))).toBe(true)
    expect(subjectMatches(subjects.heartbeatAll, subjects.heartbeat('hive', 'eu', 'eu.1'))).toBe(true)
    expect(subjectMatches(subjects.nodeEventsAll, subjects.sshEvents('eu', 'db-1', 'jabc123'))).toBe(false)
    const [agents, ssh] = subjects.regionJobEvents('eu', 'jabc123')
    expect(subjectMatches(agents!, subjects.nodeEvents('eu', 'web-1', 'jabc123'))).toBe(true)
    expect(subjectMatches(agents!, subjects.nodeEvents('us', 'web-1', 'jabc123'))).toBe(false)
    expect(subjectMatches(ssh!, subjects.sshEvents('eu', 'db-1', 'jabc123'))).toBe(true)
  })
})
