import type { EventOf, ResultGroup } from '@apiary/shared'
import type { JobClient } from '@apiary/shared/client'
import { escapeControls } from './escape.ts'
import { paint } from './screen.ts'

const OUTLIER_GROUPS = 10
const NODES_LISTED = 10
const SAMPLE_BYTES = 4096
const SAMPLE_LINES = 20

const n = (x: number) => x.toLocaleString('en-US')

/**
 * The end of a job at a glance: the largest group of identical results, then each outlier
 * group with its nodes and one sample of its output (clush -b style), fetched from the queen
 * per group, so keeper never holds every node's output.
 */
export async function summaryLines(client: JobClient, fin: EventOf<'job.finished'>, color: boolean): Promise<string[]> {
  const out = ['', escapeControls(fin.human)]
  const groups = fin.groups
  const total = groups.reduce((s, g) => s + g.count, 0)
  if (groups.length === 0) return out
  const main = groups[0]!
  if (groups.length === 1) out.push(total === 1 ? '1 node' : `all ${n(total)} identical`)
  else out.push(`${n(main.count)} identical, ${n(total - main.count)} differ`)
  for (const [i, g] of groups.entries()) {
    if (i > OUTLIER_GROUPS) {
      const rest = groups.slice(i)
      out.push(`── … ${rest.length} more groups (${n(rest.reduce((s, x) => s + x.count, 0))} nodes): keeper job ${fin.jobId}`)
      break
    }
    out.push(`── ${groupTitle(g, color)}`)
    for (const l of await sample(client, fin.jobId, g)) out.push(`   ${l}`)
  }
  return out
}

function groupTitle(g: ResultGroup, color: boolean): string {
  const what = [paint(color, g.state), g.exitCode !== null && g.state !== 'ok' ? `exit ${g.exitCode}` : '', escapeControls(g.cause ?? '')].filter(Boolean).join(', ')
  const listed = escapeControls(g.nodes.slice(0, NODES_LISTED).join(', ')) + (g.nodes.length > NODES_LISTED ? `, … ${n(g.nodes.length - NODES_LISTED)} more` : '')
  return `${n(g.count)} node${g.count === 1 ? '' : 's'} ${what}: ${listed}`
}

async function sample(client: JobClient, jobId: string, g: ResultGroup): Promise<string[]> {
  // No output digest: the node never ran (offline, skipped, no hive); nothing to show.
  if (g.digest === '' || g.nodes.length === 0) return []
  const { chunks } = await client.logsPage(jobId, { node: g.nodes[0]!, maxBytes: SAMPLE_BYTES + 1 })
  const text = chunks.map((c) => c.data).join('')
  if (text === '') return ['(no output)']
  const cut = text.length > SAMPLE_BYTES
  const lines = escapeControls((cut ? text.slice(0, SAMPLE_BYTES) : text).replace(/\n$/, ''), { keepNewlines: true }).split('\n')
  const shown = lines.slice(0, SAMPLE_LINES)
  if (cut || lines.length > SAMPLE_LINES) shown.push(`… (keeper logs ${jobId} --node ${escapeControls(g.nodes[0]!)} shows all of it)`)
  return shown
}
