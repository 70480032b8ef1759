import type { OptionTable } from '@apiary/shared'

/** Flags every command takes. */
export const GLOBAL_OPTIONS = {
  queen: { type: 'string', env: 'APIARY_QUEEN_URL', default: 'http://127.0.0.1:7070', value: 'URL', help: 'the queen’s HTTP API' },
  'token-file': { type: 'string', env: 'APIARY_TOKEN_FILE', value: 'FILE', help: 'API token file, mode 0600 (default <state dir>/token)' },
  'state-dir': { type: 'string', env: 'APIARY_STATE_DIR', value: 'DIR', help: 'apiary state directory (default $XDG_STATE_HOME/apiary)' },
  help: { type: 'boolean', short: 'h', help: 'show help' },
} satisfies OptionTable

export const JSON_OPTION = {
  json: { type: 'boolean', help: 'print JSON (one event or record per line) instead of text' },
} satisfies OptionTable

export const RUN_OPTIONS = {
  targets: { type: 'string', short: 't', default: 'all', value: 'SEL', help: 'nodes to run on: all, ids or globs (web-*), labels (role=web), region=R; comma = AND' },
  concurrency: { type: 'string', short: 'c', value: 'N', help: 'tasks in flight at once per region (default 100)' },
  timeout: { type: 'string', value: 'DUR', default: '30s', help: 'execution deadline per node (500ms, 30s, 5m)' },
  shell: { type: 'boolean', help: 'run the command as one string with /bin/sh -c' },
  'output-cap': { type: 'string', value: 'BYTES', help: 'output kept per node (default 1048576)' },
  'cancel-on-interrupt': { type: 'boolean', help: 'Ctrl-C cancels the job instead of detaching from it' },
  ...JSON_OPTION,
} satisfies OptionTable
