import { createSigner, createVerifier, generateSigningKey } from '@apiary/shared'

/** A queen signing key made for one test run, and the verifier its hives and workers pin. */
export const testSigner = createSigner(generateSigningKey().privatePem)
export const testQueenKey = createVerifier(testSigner.publicKey)
