import { useState } from 'preact/hooks'
import { api, ApiError } from '../api.ts'

/** Sign-in with a user's API token; the queen keeps it and gives the browser a session cookie. */
export function SignIn({ onSignedIn }: { onSignedIn: () => void }) {
  const [token, setToken] = useState('')
  const [error, setError] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)
  return (
    <main class="sign-in">
      <h1>apiary</h1>
      <form
        onSubmit={(e) => {
          e.preventDefault()
          setBusy(true)
          setError(null)
          api
            .signIn(token.trim())
            .then(() => {
              setToken('')
              onSignedIn()
            })
            .catch((err: unknown) => {
              const e = err as ApiError
              setError(
                e instanceof ApiError && e.status === 401
                  ? 'That token is not valid. Check it (keeper dev writes it to <state dir>/token) and try again.'
                  : e instanceof ApiError && e.field
                    ? `${e.message} (${e.field})`
                    : (e.message ?? String(err)),
              )
            })
            .finally(() => setBusy(false))
        }}
      >
        <label for="token">API token</label>
        <input id="token" name="token" type="password" autoComplete="off" required value={token} onInput={(e) => setToken(e.currentTarget.value)} />
        <button type="submit" disabled={busy || token.trim() === ''}>
          Sign in
        </button>
        {error && (
          <p class="error" role="alert" data-testid="sign-in-error">
            {error}
          </p>
        )}
      </form>
      <p class="muted">The token stays on the queen: this browser holds only a session cookie, which ends after 12 hours unused or when you sign out.</p>
    </main>
  )
}
