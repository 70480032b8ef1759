import { describe, expect, it } from 'vitest'
import { escapeControls } from './escape.ts'
import { table } from './output.ts'

describe('escapeControls', () => {
  it.each([
    ['CSI clear screen', '\x1b[2J\x1b[H', '\\x1b[2J\\x1b[H'],
    ['OSC 52 clipboard write', '\x1b]52;c;cHduZWQ=\x07', '\\x1b]52;c;cHduZWQ=\\x07'],
    ['OSC 0 window title, ST-terminated', '\x1b]0;root@prod\x1b\\', '\\x1b]0;root@prod\\x1b\\'],
    ['a lone ESC', 'a\x1bb', 'a\\x1bb'],
    ['BEL', 'ding\x07', 'ding\\x07'],
    ['carriage return', 'progress 10%\rprogress 99%', 'progress 10%\\x0dprogress 99%'],
    ['backspace', 'secret\b\b\b\b\b\b', 'secret\\x08\\x08\\x08\\x08\\x08\\x08'],
    ['NUL and other C0', '\x00\x01\x0b\x0c\x1f', '\\x00\\x01\\x0b\\x0c\\x1f'],
    ['DEL', 'x\x7fy', 'x\\x7fy'],
    ['C1 CSI', '\u009b2J', '\\x9b2J'],
    ['C1 range ends', '\u0080\u009f', '\\x80\\x9f'],
    ['bidi override', 'invoice\u202Efdp.exe', 'invoice\\u202efdp.exe'],
    ['bidi isolates', '\u2066a\u2069 \u2067b\u2068', '\\u2066a\\u2069 \\u2067b\\u2068'],
    ['bidi marks', '\u200e\u200f\u061c', '\\u200e\\u200f\\u061c'],
    ['ordinary text', 'Linux web-1 6.8.0 #1 SMP x86_64 GNU/Linux', 'Linux web-1 6.8.0 #1 SMP x86_64 GNU/Linux'],
    ['UTF-8 text and emoji', 'Grüße, 東京 🐝 naïve — ok ✓ \uFFFD', 'Grüße, 東京 🐝 naïve — ok ✓ \uFFFD'],
    ['first printable after C1', '\u00a0é', '\u00a0é'],
    ['tabs', 'a\tb\t', 'a\tb\t'],
    ['empty', '', ''],
  ])('%s', (_, input, shown) => {
    expect(escapeControls(input)).toBe(shown)
    expect(escapeControls(input, { keepNewlines: true })).toBe(shown)
  })

  it('escapes newlines in a field that should be one line, so no line can be forged', () => {
    expect(escapeControls('boom\nweb-1: ok')).toBe('boom\\x0aweb-1: ok')
    expect(escapeControls('boom\r\nweb-1: ok')).toBe('boom\\x0d\\x0aweb-1: ok')
  })

  it('keeps newlines in output when asked, but never a carriage return', () => {
    expect(escapeControls('\x1b[2J\x1b]52;c;cHduZWQ=\x07evil\r\n', { keepNewlines: true })).toBe('\\x1b[2J\\x1b]52;c;cHduZWQ=\\x07evil\\x0d\n')
    expect(escapeControls('one\ntwo\n', { keepNewlines: true })).toBe('one\ntwo\n')
  })

  it('leaves nothing a terminal acts on, in any code unit up to U+FFFF', () => {
    let all = ''
    for (let c = 0; c <= 0xffff; c++) if (c < 0xd800 || c > 0xdfff) all += String.fromCharCode(c)
    const out = escapeControls(all, { keepNewlines: true })
    expect(out).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/)
    expect(out).toContain('\n')
  })
})

describe('table', () => {
  it('escapes every cell as one line and aligns on what is shown', () => {
    const lines = table(['NODE', 'LABELS'], [['web-1', 'role=web\nweb-2  ok'], ['db-\x1b[2J', 'x']])
    expect(lines).toEqual(['NODE        LABELS', 'web-1       role=web\\x0aweb-2  ok', 'db-\\x1b[2J  x'])
  })
})
