import { useEffect, useState } from 'preact/hooks'
import { api, ApiError } from '../api.ts'
import { ErrorNote } from '../confirm.tsx'

type Json = Record<string, any>

/** A schema's short name: the component it refers to, its type, or its values. */
export function schemaName(s: Json | undefined): string {
  if (!s) return '—'
  if (typeof s.$ref === 'string') return s.$ref.replace('#/components/schemas/', '')
  if (Array.isArray(s.enum)) return s.enum.map((v: unknown) => JSON.stringify(v)).join(' | ')
  if (s.type === 'array') return `${schemaName(s.items)}[]`
  if (Array.isArray(s.anyOf)) return s.anyOf.map(schemaName).join(' | ')
  return typeof s.type === 'string' ? s.type : 'object'
}

const mediaOf = (content: Json | undefined) => Object.keys(content ?? {})[0]

/** The queen's API, readable: every route from `GET /v1/openapi.json`, its access rule, inputs and answers. */
export function ApiReferencePage() {
  const [doc, setDoc] = useState<Json | null>(null)
  const [error, setError] = useState<ApiError | null>(null)
  const [open, setOpen] = useState<string | null>(null)
  useEffect(() => {
    api.openapi().then(setDoc, (err: unknown) => setError(err as ApiError))
  }, [])
  if (error) return <ErrorNote error={error} />
  if (!doc) return <p class="muted">Loading the API description…</p>
  const schemas: Json = doc.components?.schemas ?? {}
  const ops = Object.entries(doc.paths as Json).flatMap(([path, byMethod]) => Object.entries(byMethod as Json).map(([method, op]) => ({ path, method, op: op as Json })))
  return (
    <section aria-labelledby="api-title">
      <h1 id="api-title">API</h1>
      <p class="muted">
        {doc.info?.title} {doc.info?.version}, OpenAPI {doc.openapi}: <a href="/v1/openapi.json">/v1/openapi.json</a>. Every route but health and the console's takes{' '}
        <code>Authorization: Bearer &lt;token&gt;</code>; errors are <code>{'{"error": {"code", "message", "field"?}}'}</code>.
      </p>
      <table class="api">
        <thead>
          <tr>
            <th>route</th>
            <th>who</th>
            <th>takes</th>
            <th>answers</th>
          </tr>
        </thead>
        <tbody>
          {ops.map(({ path, method, op }) => {
            const ok = Object.entries(op.responses as Json).filter(([s]) => Number(s) < 400)
            const errors = Object.keys(op.responses as Json).filter((s) => Number(s) >= 400)
            const params = (op.parameters ?? []) as Json[]
            const body = op.requestBody?.content?.['application/json']?.schema as Json | undefined
            return (
              <tr key={`${method} ${path}`}>
                <td>
                  <code>
                    {method.toUpperCase()} {path}
                  </code>
                  <div class="muted">{op.summary}</div>
                </td>
                <td>{op['x-apiary-access']}</td>
                <td>
                  {params.map((p) => (
                    <div key={`${p.in} ${p.name}`}>
                      <code>{p.name}</code> <span class="muted">({p.in}{p.required ? '' : ', optional'}): {schemaName(p.schema)}</span>
                    </div>
                  ))}
                  {body && (
                    <div>
                      body: <SchemaLink s={body} onOpen={setOpen} />
                    </div>
                  )}
                </td>
                <td>
                  {ok.map(([status, r]) => {
                    const media = mediaOf((r as Json).content)
                    const schema = media ? (r as Json).content[media].schema : undefined
                    return (
                      <div key={status}>
                        {status} {media === 'application/json' ? <SchemaLink s={schema} onOpen={setOpen} /> : <span class="muted">{media}</span>}
                        {media === 'text/event-stream' && schema && (
                          <>
                            {' '}
                            of <SchemaLink s={schema} onOpen={setOpen} />
                          </>
                        )}
                      </div>
                    )
                  })}
                  <div class="muted">errors: {errors.join(', ')}</div>
                </td>
              </tr>
            )
          })}
        </tbody>
      </table>
      {open !== null && schemas[open] && (
        <div class="node-output" role="dialog" aria-label={`schema ${open}`}>
          <header>
            <h2>{open}</h2>
            <button type="button" onClick={() => setOpen(null)}>
              Close
            </button>
          </header>
          <pre class="output">{JSON.stringify(schemas[open], null, 2)}</pre>
        </div>
      )}
    </section>
  )
}

function SchemaLink({ s, onOpen }: { s: Json | undefined; onOpen: (name: string) => void }) {
  const name = schemaName(s)
  if (typeof s?.$ref !== 'string') return <code>{name}</code>
  return (
    <button type="button" class="link" onClick={() => onOpen(name)}>
      {name}
    </button>
  )
}
