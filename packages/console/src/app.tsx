import { useEffect, useState } from 'preact/hooks'
import { api, onSignedOut } from './api.ts'
import { ApiReferencePage } from './pages/api-reference.tsx'
import { JobPage } from './pages/job.tsx'
import { JobsPage } from './pages/jobs.tsx'
import { NodesPage } from './pages/nodes.tsx'
import { RunPage } from './pages/run.tsx'
import { SignIn } from './pages/sign-in.tsx'
import { useRoute } from './route.ts'

export function App() {
  const [auth, setAuth] = useState<'unknown' | 'in' | 'out'>('unknown')
  const route = useRoute()
  useEffect(() => {
    api.session().then(
      () => setAuth('in'),
      () => setAuth('out'),
    )
    return onSignedOut(() => setAuth('out'))
  }, [])
  if (auth === 'unknown') return null
  if (auth === 'out') return <SignIn onSignedIn={() => setAuth('in')} />
  const here = route.page === 'job' ? 'jobs' : route.page
  return (
    <>
      <header class="top">
        <strong class="brand">apiary</strong>
        <nav aria-label="pages">
          {(['jobs', 'run', 'nodes', 'api'] as const).map((p) => (
            <a key={p} href={`#/${p}`} aria-current={here === p ? 'page' : undefined}>
              {p === 'jobs' ? 'Jobs' : p === 'run' ? 'Run' : p === 'nodes' ? 'Nodes' : 'API'}
            </a>
          ))}
        </nav>
        <button
          type="button"
          class="link"
          onClick={() => {
            void api.signOut().finally(() => setAuth('out'))
          }}
        >
          Sign out
        </button>
      </header>
      <main>
        {route.page === 'jobs' && <JobsPage />}
        {route.page === 'job' && <JobPage key={route.id} id={route.id} />}
        {route.page === 'run' && <RunPage />}
        {route.page === 'nodes' && <NodesPage />}
        {route.page === 'api' && <ApiReferencePage />}
      </main>
    </>
  )
}
