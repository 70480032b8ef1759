/** The queen's HTTP API from the client side: jobs, nodes, and event streams that resume, across several queens. */
export { createJobClient, errorFromBody, type JobClient, type JobClientOptions, type StreamOptions } from './job-client.ts'
export { isLoopbackHost, MAX_QUEENS, parseQueenUrls } from './queens.ts'
export { parseSse } from './sse.ts'
