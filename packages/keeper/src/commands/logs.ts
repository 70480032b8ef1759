import { defineCommand } from '../cli/command.ts'
import { EXIT, type Io } from '../cli/context.ts'
import { escapeControls } from '../render/escape.ts'
import { exitCodeOf, reconnectNotice } from './follow.ts'

export const logs = defineCommand({
  name: 'logs',
  summary: 'print the output of a job’s nodes; -f follows it live',
  usage: 'keeper logs ID [--node N] [-f] [-o FORMAT]',
  options: {
    node: { type: 'string', short: 'n', value: 'NODE', help: 'only this node’s output, without the node prefix' },
    follow: { type: 'boolean', short: 'f', help: 'follow the job until it finishes' },
  },
  args: 'id',
  async run({ id, values: v, io, client }) {
    const c = await client()
    if (v.follow) {
      const stop = new AbortController()
      io.interrupt.addEventListener('abort', () => stop.abort(), { once: true })
      let code = EXIT.ok as number
      const onReconnect = reconnectNotice(io)
      for await (const ev of c.stream(id, { output: true, signal: stop.signal, ...(onReconnect ? { onReconnect } : {}) })) {
        if (ev.kind === 'node.output' && (v.node === undefined || ev.node === v.node)) {
          if (io.format !== 'text') await io.out.line(JSON.stringify(ev))
          else await writeChunk(io, ev.node, ev.data, v.node !== undefined)
        }
        if (ev.kind === 'job.finished') code = exitCodeOf(ev)
      }
      return stop.signal.aborted ? EXIT.detached : code
    }
    await c.get(id) // 404 for a job that does not exist, before an empty answer could hide it
    if (io.format === 'json') {
      // One document: gathered whole, as asked; -o ndjson streams instead.
      const all = []
      for await (const chunk of c.logs(id, v.node)) all.push(chunk)
      await io.out.line(JSON.stringify({ chunks: all }))
      return EXIT.ok
    }
    for await (const chunk of c.logs(id, v.node)) {
      if (io.format === 'ndjson') await io.out.line(JSON.stringify(chunk))
      else await writeChunk(io, chunk.node, chunk.data, v.node !== undefined)
    }
    return EXIT.ok
  },
})

/** One chunk of output as lines, escaped even with `--node` and on a pipe; -o ndjson keeps the bytes. */
async function writeChunk(io: Io, node: string, data: string, bare: boolean) {
  const body = data.endsWith('\n') ? data.slice(0, -1) : data
  const prefix = bare ? '' : `${escapeControls(node)} | `
  for (const l of escapeControls(body, { keepNewlines: true }).split('\n')) await io.out.line(prefix + l)
}
