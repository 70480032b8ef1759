// Characters a terminal (or `less -R`, or a log viewer) acts on instead of showing: C0 controls
// but tab (ESC starts CSI/OSC sequences: clear the screen, set the title, write the clipboard
// with OSC 52; CR and backspace overwrite what is shown), DEL, C1 controls (U+0080–U+009F;
// U+009B is CSI on its own to some terminals) and the Unicode bidi controls (Bidi_Control:
// U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069), which make a line read differently.
const UNSAFE_LINE = /[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g
const UNSAFE_LINES = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g

const visible = (c: string): string => {
  const code = c.charCodeAt(0)
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`
}

/**
 * Text that came from a node, a hive or the queen, made safe to print: every character a
 * terminal would act on is written the way a JavaScript string literal spells it (`\x1b`,
 * `\x07`, `\x0d`, `\x9b`, `\u202e`), so it shows and never acts. Tabs stay. A newline stays only
 * with `keepNewlines` (output); a field that should be one line (node, cause, label) escapes it,
 * so a node cannot forge a line of its own. Apply it to each remote piece before keeper adds
 * its own escapes (colours, the progress line).
 *
 * The form is for reading, not reversible: a node that prints the four characters `\x1b` looks
 * the same. `-o json`/`-o ndjson` carry the exact text.
 *
 * @example
 * escapeControls('\x1b[2Jevil\r\n', { keepNewlines: true }) // '\\x1b[2Jevil\\x0d\n'
 * escapeControls('web-1: ok\nweb-2: ok')                    // 'web-1: ok\\x0aweb-2: ok'
 */
export function escapeControls(text: string, opts: { keepNewlines?: boolean } = {}): string {
  return text.replace(opts.keepNewlines ? UNSAFE_LINES : UNSAFE_LINE, visible)
}
