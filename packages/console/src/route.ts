import { useEffect, useState } from 'preact/hooks'

export type Route = { page: 'jobs' } | { page: 'job'; id: string } | { page: 'run' } | { page: 'nodes' } | { page: 'api' }

/**
 * Pages live in the URL's fragment (`/ui/#/jobs/j…`): the queen serves one page under /ui
 * and every link is shareable.
 */
export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, '')
  const job = /^\/jobs\/([A-Za-z0-9_-]{1,64})$/.exec(path)
  if (job) return { page: 'job', id: job[1]! }
  if (path === '/run') return { page: 'run' }
  if (path === '/nodes') return { page: 'nodes' }
  if (path === '/api') return { page: 'api' }
  return { page: 'jobs' }
}

export function go(path: string): void {
  location.hash = `#${path}`
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash))
  useEffect(() => {
    const on = () => setRoute(parseRoute(location.hash))
    addEventListener('hashchange', on)
    return () => removeEventListener('hashchange', on)
  }, [])
  return route
}
