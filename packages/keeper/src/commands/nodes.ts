import { defineCommand } from '../cli/command.ts'
import { EXIT } from '../cli/context.ts'
import { escapeControls } from '../render/escape.ts'
import { ago, table } from '../render/output.ts'
import { printJson } from '../render/records.ts'

export const nodes = defineCommand({
  name: 'nodes',
  summary: 'list nodes with their region, labels and presence',
  usage: 'keeper nodes [-o FORMAT]',
  options: {},
  args: 'none',
  async run({ io, client }) {
    const nodes = await (await client()).nodes()
    if (await printJson(io, 'nodes', nodes)) return EXIT.ok
    if (nodes.length === 0) {
      await io.out.line('no nodes have reported yet')
      return EXIT.ok
    }
    // Agent nodes: last heartbeat. Agentless (SSH) nodes: last contact by an SSH worker, and the breaker.
    const rows = nodes.map((n) => [
      n.id,
      n.region,
      n.online ? (n.draining ? 'draining' : 'online') : 'offline',
      n.executor,
      n.executor === 'ssh' ? (n.lastContact ? ago(n.lastContact) : 'never') : ago(n.lastSeen),
      n.breaker ?? '',
      Object.entries(n.labels).map(([k, val]) => `${k}=${val}`).join(','),
    ])
    for (const l of table(['NODE', 'REGION', 'STATUS', 'EXECUTOR', 'LAST CONTACT', 'BREAKER', 'LABELS'], rows)) await io.out.line(l)
    // Work a worker would not run because the queen did not sign it: someone on the bus tried.
    for (const n of nodes) {
      if (!n.refused?.count) continue
      const last = n.refused.last
      // The subject and the reason are what the node reported: quoted, and escaped (JSON.stringify
      // alone leaves C1 and bidi controls as they are).
      await io.err.line(`warning: ${escapeControls(n.id)} refused ${n.refused.count} task${n.refused.count === 1 ? '' : 's'} or control message${n.refused.count === 1 ? '' : 's'} the queen did not sign${last ? ` (last ${ago(last.at)} on "${escapeControls(last.subject)}": "${escapeControls(last.reason)}")` : ''}`)
    }
    return EXIT.ok
  },
})
