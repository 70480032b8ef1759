import { describe, expect, it } from 'vitest'
import { expandHostList, parseHostList } from './range.ts'

function expand(text: string): string[] {
  const r = parseHostList(text)
  if (!r.ok) throw new Error(`expected "${text}" to parse: ${r.error}`)
  return expandHostList(r.list)
}

function parseError(text: string): string {
  const r = parseHostList(text)
  if (r.ok) throw new Error(`expected "${text}" to be rejected`)
  return r.error
}

describe('parseHostList / expandHostList', () => {
  it('leaves a name without brackets as it is', () => {
    expect(expand('db1.example')).toEqual(['db1.example'])
    expect(expand('10.0.0.5')).toEqual(['10.0.0.5'])
  })

  it('expands a range, keeping the zero padding of its start', () => {
    expect(expand('node[1-3]')).toEqual(['node1', 'node2', 'node3'])
    expect(expand('web[001-003].eu.example')).toEqual(['web001.eu.example', 'web002.eu.example', 'web003.eu.example'])
    expect(expand('web[008-011]')).toEqual(['web008', 'web009', 'web010', 'web011'])
  })

  it('treats a padded start as a minimum width: [01-100] ends 99, 100', () => {
    const names = expand('h[01-100]')
    expect(names).toHaveLength(100)
    expect(names.slice(0, 2)).toEqual(['h01', 'h02'])
    expect(names.slice(-2)).toEqual(['h99', 'h100'])
  })

  it('reads a lone 0 as a number, not as padding', () => {
    expect(expand('n[0-10]')).toEqual(['n0', 'n1', 'n2', 'n3', 'n4', 'n5', 'n6', 'n7', 'n8', 'n9', 'n10'])
    expect(expand('n[00-02]')).toEqual(['n00', 'n01', 'n02'])
  })

  it('expands comma lists inside brackets in the order written, spaces allowed', () => {
    expect(expand('web[1,3,5-7]')).toEqual(['web1', 'web3', 'web5', 'web6', 'web7'])
    expect(expand('web[7, 1-2]')).toEqual(['web7', 'web1', 'web2'])
    expect(expand('web[007]')).toEqual(['web007'])
  })

  it('multiplies several brackets, the leftmost varying slowest', () => {
    expect(expand('r[1-2]-n[1-3]')).toEqual(['r1-n1', 'r1-n2', 'r1-n3', 'r2-n1', 'r2-n2', 'r2-n3'])
    expect(expand('[1-2][1-2]')).toEqual(['11', '12', '21', '22'])
  })

  it('joins comma-separated names outside brackets, trimming spaces', () => {
    expect(expand('web[1-2],db1, cache[01-02]')).toEqual(['web1', 'web2', 'db1', 'cache01', 'cache02'])
  })

  it('counts without expanding', () => {
    const r = parseHostList('r[1-1000]-n[1-1000],x[1,2]')
    expect(r.ok && r.list.count).toBe(1_000_002)
    const huge = parseHostList('h[1-999999999999999]')
    expect(huge.ok && huge.list.count).toBe(999_999_999_999_999)
  })

  it('expands a thousand names quickly', () => {
    const started = performance.now()
    const names = expand('web[0001-1000].eu.example')
    expect(names).toHaveLength(1000)
    expect(names[999]).toBe('web1000.eu.example')
    expect(performance.now() - started).toBeLessThan(200)
  })

  it.each([
    ['web[9-1]', 'range start 9 is greater than end 1'],
    ['web[]', 'range "[]" is empty'],
    ['web[ ]', 'range "[ ]" is empty'],
    ['web[1,,3]', 'range "[1,,3]" has an empty item'],
    ['web[1,]', 'range "[1,]" has an empty item'],
    ['web[a-c]', '"a-c" in "[a-c]" is not a number or a range of numbers such as 1-10'],
    ['web[1-]', '"1-" in "[1-]" is not a number'],
    ['web[-3]', '"-3" in "[-3]" is not a number'],
    ['web[1-2-3]', '"1-2-3" in "[1-2-3]" is not a number'],
    ['web[1 - 3]', '"1 - 3" in "[1 - 3]" is not a number'],
    ['web[1-03]', 'the end 03 is zero-padded to another width than the start 1'],
    ['web[01-003]', 'the end 003 is zero-padded to another width than the start 01'],
    ['web[001-99]', 'the end 99 is narrower than the zero-padded start 001; write it as 099'],
    ['web[1-[2]]', 'has a "[" inside a bracket (brackets do not nest)'],
    ['web[1-3', 'has a "[" that is never closed'],
    ['web1-3]', 'has a "]" without a "[" before it'],
    ['web[1-1234567890123456]', 'has a number of more than 15 digits'],
    ['', 'is empty'],
    ['  ', 'is empty'],
    ['web1,,web2', 'has an empty host name (two commas in a row, or one at an end)'],
    ['web1,', 'has an empty host name'],
  ])('rejects %j: %s', (text, message) => {
    expect(parseError(text)).toContain(message)
  })
})
