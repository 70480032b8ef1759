import { describe, expect, it } from 'vitest'
import { subjectMatches } from './bus/bus.ts'
import { subjects } from './subjects.ts'

const tokens = (subject: string) => subject.split('.')

describe('subjects', () => {
  it('spells each subject under the apiary prefix', () => {
    expect(subjects.hiveJobs('eu')).toBe('apiary.hive.eu.jobs')
    expect(subjects.hiveQueue('eu')).toBe('hive.eu')
    expect(subjects.nodeTasks('web-1')).toBe('apiary.node.web-1.tasks')
    expect(subjects.regionSsh('eu')).toBe('apiary.region.eu.ssh')
    expect(subjects.events('jabc123')).toBe('apiary.events.jabc123')
    expect(subjects.control('jabc123')).toBe('apiary.control.jabc123')
    expect(subjects.heartbeat('worker', 'web-1')).toBe('apiary.hb.worker.web-1')
  })

  it('escapes dots in a node id so the subject keeps its token count', () => {
    const s = subjects.nodeTasks('web-1.eu.example.com')
    expect(tokens(s)).toHaveLength(4)
    expect(tokens(s)[2]).toBe('web-1%2Eeu%2Eexample%2Ecom')
    expect(tokens(subjects.heartbeat('worker', 'db.1'))).toHaveLength(4)
  })

  it('escapes % first, so distinct ids give distinct subjects', () => {
    // Without escaping %, the id "a%2Eb" and the id "a.b" would share one subject.
    expect(subjects.nodeTasks('a.b')).toBe('apiary.node.a%2Eb.tasks')
    expect(subjects.nodeTasks('a%2Eb')).toBe('apiary.node.a%252Eb.tasks')
  })

  it('keeps an escaped node id reachable only by its own subject', () => {
    const s = subjects.nodeTasks('web-1.example.com')
    expect(subjectMatches('apiary.node.*.tasks', s)).toBe(true)
    expect(subjectMatches('apiary.node.web-1.>', s)).toBe(false)
  })

  it.each(['web*', '*', '>', 'a>b', 'has space', 'tab\there', 'new\nline', ''])('rejects %j as a token', (bad) => {
    expect(() => subjects.nodeTasks(bad)).toThrow(/cannot be used in a subject/)
    expect(() => subjects.hiveJobs(bad)).toThrow(/region/)
    expect(() => subjects.events(bad)).toThrow(/job id/)
    expect(() => subjects.heartbeat('worker', bad)).toThrow(/cannot be used in a subject/)
    expect(() => subjects.heartbeat(bad, 'web-1')).toThrow(/role/)
  })

  it('has wildcards that match what the builders produce', () => {
    expect(subjectMatches(subjects.eventsAll, subjects.events('jabc123'))).toBe(true)
    expect(subjectMatches(subjects.controlAll, subjects.control('jabc123'))).toBe(true)
    expect(subjectMatches(subjects.heartbeatAll, subjects.heartbeat('hive', 'eu.1'))).toBe(true)
    expect(subjectMatches(subjects.eventsAll, subjects.control('jabc123'))).toBe(false)
  })
})
