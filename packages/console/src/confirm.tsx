import { useState } from 'preact/hooks'
import type { ApiError } from './api.ts'
import { count, plural } from './format.ts'

/**
 * keeper's rule for a destructive operation: nothing runs until the operator types the exact
 * number of nodes it would run on (the queen checks that number again on submit).
 */
export function ConfirmCount(p: { nodes: number; reasons: string[]; action: string; busy?: boolean; onConfirm: () => void; onCancel?: () => void }) {
  const [typed, setTyped] = useState('')
  const ok = typed.trim() === String(p.nodes)
  return (
    <form
      class="ask destructive"
      role="alertdialog"
      aria-labelledby="confirm-title"
      data-testid="confirm-count"
      onSubmit={(e) => {
        e.preventDefault()
        if (ok) p.onConfirm()
      }}
    >
      <p id="confirm-title">
        <strong>⚠ This operation is destructive</strong>
        {p.reasons.length > 0 && ` (${p.reasons.join(', ')})`} and would run on <strong>{plural(p.nodes, 'node')}</strong>.
      </p>
      <label>
        Type the node count ({count(p.nodes)}) to go on{' '}
        <input value={typed} inputMode="numeric" autoComplete="off" onInput={(e) => setTyped(e.currentTarget.value)} data-testid="confirm-input" />
      </label>{' '}
      <button type="submit" class="danger" disabled={!ok || p.busy}>
        {p.action} on {plural(p.nodes, 'node')}
      </button>
      {p.onCancel && (
        <>
          {' '}
          <button type="button" onClick={p.onCancel}>
            Back
          </button>
        </>
      )}
    </form>
  )
}

/** The queen's message, with the field it names. */
export function ErrorNote({ error }: { error: ApiError }) {
  return (
    <p class="error" role="alert" data-testid="error">
      {error.message}
      {error.field && <span class="muted"> ({error.field})</span>}
    </p>
  )
}
