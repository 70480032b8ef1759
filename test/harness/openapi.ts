import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js'
import { openApiDocument, openApiPath } from '@apiary/queen'

type Json = Record<string, any>

/**
 * Checks answers against the queen's OpenAPI document, as a client written from it would: the
 * route must be there with the status, and a JSON body must match the status's schema.
 *
 * @example const api = apiChecker(); api.check('GET /v1/jobs', 200, body)
 */
export function apiChecker(doc: Json = openApiDocument()) {
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false })
  ajv.addSchema(doc, 'apiary-openapi')
  const compiled = new Map<string, ValidateFunction>()
  const validator = (pointer: string) => {
    let v = compiled.get(pointer)
    if (!v) compiled.set(pointer, (v = ajv.compile({ $ref: `apiary-openapi#${pointer}` })))
    return v
  }
  const escape = (s: string) => s.replace(/~/g, '~0').replace(/\//g, '~1')
  return {
    doc,
    /** Throws, naming the route, status and what does not match, unless `body` is what the document says `route` answers with `status`. */
    check(route: string, status: number, body: unknown): void {
      const [method, path] = route.split(' ') as [string, string]
      const op = doc.paths?.[openApiPath(path)]?.[method.toLowerCase()]
      if (!op) throw new Error(`${route}: not in the OpenAPI document`)
      const answer = op.responses?.[String(status)]
      if (!answer) throw new Error(`${route}: answered ${status}, which the OpenAPI document does not list (${Object.keys(op.responses ?? {}).join(', ')})`)
      const json = answer.content?.['application/json']
      if (!json) return
      if (body === undefined) throw new Error(`${route} ${status}: the OpenAPI document says JSON, and the answer is not`)
      if (!json.schema) return
      const v = validator(`/paths/${escape(openApiPath(path))}/${method.toLowerCase()}/responses/${status}/content/application~1json/schema`)
      if (!v(body)) throw new Error(`${route} ${status}: the body does not match the OpenAPI document: ${ajv.errorsText(v.errors)}\n${JSON.stringify(body).slice(0, 2000)}`)
    },
    /** Throws unless `event` is one the document's `JobEvent` describes. */
    checkEvent(event: unknown): void {
      const v = validator('/components/schemas/JobEvent')
      if (!v(event)) throw new Error(`an event does not match the OpenAPI document: ${ajv.errorsText(v.errors)}\n${JSON.stringify(event).slice(0, 2000)}`)
    },
  }
}
