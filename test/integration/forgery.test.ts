import { defineChunkSuite, defineForgerySuite } from './forgery-suite.ts'

defineForgerySuite('memory')
defineForgerySuite('nats')
defineChunkSuite('memory')
defineChunkSuite('nats')
