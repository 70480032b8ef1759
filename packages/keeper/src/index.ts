export { type Embedded, type EmbeddedConfig, startEmbedded } from './embedded.ts'
