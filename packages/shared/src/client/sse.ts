import { createParser, type EventSourceMessage } from 'eventsource-parser'

/**
 * Parses a byte stream of Server-Sent Events. Chunks are decoded with one streaming
 * `TextDecoder`, so a multi-byte character split across chunks survives.
 */
export async function* parseSse(body: AsyncIterable<Uint8Array>): AsyncGenerator<EventSourceMessage> {
  const decoder = new TextDecoder()
  const pending: EventSourceMessage[] = []
  const parser = createParser({ onEvent: (ev) => pending.push(ev) })
  for await (const chunk of body) {
    parser.feed(decoder.decode(chunk, { stream: true }))
    while (pending.length > 0) yield pending.shift()!
  }
  parser.feed(decoder.decode())
  while (pending.length > 0) yield pending.shift()!
}
