// Lint for what the compiler does not catch: floating promises, deep imports across packages.
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['**/node_modules/**', '**/dist/**', 'packages/*/bin/**', 'scripts/**', 'eslint.config.mjs'] },
  {
    files: ['**/*.ts'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { '@typescript-eslint': tseslint.plugin },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['@apiary/*/src/*', '../../*/src/*', '../../../packages/*/src/*'], message: 'import another package by its name (its src/index.ts), never its internals' }] },
      ],
    },
  },
)
