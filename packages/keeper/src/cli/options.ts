import { DEFAULT_CONCURRENCY, DEFAULT_DELIVERY_TIMEOUT_MS, DEFAULT_OUTPUT_CAP } from '@apiary/shared'
import { type OptionTable } from '@apiary/shared/runtime'

/** Flags every command takes. */
export const GLOBAL_OPTIONS = {
  queen: {
    type: 'string',
    env: 'APIARY_QUEEN_URL',
    default: 'http://127.0.0.1:7070',
    value: 'URL[,URL…]',
    // 8: MAX_QUEENS of @apiary/shared/client, which is not loaded at start (see connectClient).
    help: 'the queen’s HTTP API; several (a leader and its standbys, at most 8), comma-separated: each call goes to one that serves it, a stream resumes on another',
  },
  'token-file': { type: 'string', env: 'APIARY_TOKEN_FILE', value: 'FILE', help: 'API token file, mode 0600 (default <state dir>/token)' },
  ca: { type: 'string', env: 'APIARY_CA', value: 'FILE', help: 'trust the CA certificates (PEM) in FILE for an https:// queen, instead of the system’s' },
  // No variable: what lets the token cross the network in clear text is typed each time.
  insecure: { type: 'boolean', help: 'allow a plain http:// queen on another machine (the token travels in clear text); never skips https:// certificate checks' },
  'state-dir': { type: 'string', env: 'APIARY_STATE_DIR', value: 'DIR', help: 'apiary state directory (default $XDG_STATE_HOME/apiary)' },
  output: { type: 'string', short: 'o', value: 'FORMAT', default: 'text', choices: ['text', 'json', 'ndjson'], help: 'text, json (one document) or ndjson (one event per line)' },
  json: { type: 'boolean', help: 'same as -o ndjson' },
  help: { type: 'boolean', short: 'h', help: 'show help' },
} as const satisfies OptionTable

/** How a job is followed once submitted. */
export const FOLLOW_OPTIONS = {
  'no-group': { type: 'boolean', help: 'print every node’s output live, the node on every line, instead of grouping identical results' },
  'cancel-on-interrupt': { type: 'boolean', help: 'Ctrl-C cancels the job instead of detaching from it' },
} as const satisfies OptionTable

/** Rollout policy and safety, shared by run, facts and rerun. */
export const ROLLOUT_OPTIONS = {
  concurrency: { type: 'string', short: 'c', value: 'N|P%', help: `tasks in flight at once per region, a count or a percentage (default ${DEFAULT_CONCURRENCY})` },
  'max-errors': { type: 'string', value: 'N|P%', help: 'stop dispatching once this many nodes are not ok; the rest end skipped' },
  canary: { type: 'int', min: 0, max: 100_000, value: 'N', help: 'run the first N nodes alone; go on only if all are ok' },
  // At most 7 days, as the queen's schema allows: refused here, naming the flag.
  timeout: { type: 'duration', min: '1ms', max: '7d', default: '30s', help: 'execution deadline per node' },
  'delivery-timeout': { type: 'duration', min: '100ms', max: '7d', help: `how long a worker has to take a task (default ${DEFAULT_DELIVERY_TIMEOUT_MS / 1000}s): error: undelivered` },
  deadline: { type: 'duration', min: '1ms', max: '7d', help: 'deadline of the whole job: then nothing more starts and running nodes are stopped' },
  yes: { type: 'boolean', short: 'y', help: 'confirm a destructive operation without being asked' },
  ...FOLLOW_OPTIONS,
} as const satisfies OptionTable

export const RUN_OPTIONS = {
  targets: { type: 'string', short: 't', default: 'all', value: 'SEL', help: 'nodes to run on: all, ids or globs (web-*), labels (role=web), region=R; comma = AND' },
  ...ROLLOUT_OPTIONS,
  shell: { type: 'boolean', help: 'run the command as one string with /bin/sh -c' },
  'output-cap': { type: 'int', min: 1024, max: 64 * 1024 * 1024, default: String(DEFAULT_OUTPUT_CAP), value: 'BYTES', help: 'output kept per node' },
  plan: { type: 'boolean', help: 'show the targets, regions, offline nodes and risk without running anything' },
} as const satisfies OptionTable
