// @ts-check
import tseslint from 'typescript-eslint';

const sdkNotServer = [
  { group: ['@curbside/server', '@curbside/server/*'], message: 'client-sdk/ must not import server/: share code through @curbside/shared.' },
  { group: ['**/server/**', '../server', '../../server'], message: 'client-sdk/ must not import server/: share code through @curbside/shared.' },
];
const sdkNoNodeBuiltins = {
  group: ['node:*'],
  message: 'client-sdk/ runs in browsers: keep Node built-ins out of its core (put Node-only code in client-sdk/src/node/, the separate `@curbside/client-sdk/node` entry point).',
};

/**
 * Architecture rules first: server/ and client-sdk/ both depend on shared/, never on each other.
 * test/architecture/lint-boundaries.test.ts proves the rule fires.
 */
export const boundaryRules = {
  server: {
    files: ['server/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['@curbside/client-sdk', '@curbside/client-sdk/*'], message: 'server/ must not import client-sdk/: share code through @curbside/shared.' },
            { group: ['**/client-sdk/**', '../client-sdk', '../../client-sdk'], message: 'server/ must not import client-sdk/: share code through @curbside/shared.' },
          ],
        },
      ],
    },
  },
  sdk: {
    files: ['client-sdk/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [...sdkNotServer, sdkNoNodeBuiltins] }],
    },
  },
  /** The Node-only entry point (`@curbside/client-sdk/node`) may use Node built-ins; the rest of the SDK may not. */
  sdkNode: {
    files: ['client-sdk/src/node/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: sdkNotServer }],
    },
  },
  shared: {
    files: ['shared/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['@curbside/server', '@curbside/client-sdk', '**/server/**', '**/client-sdk/**'], message: 'shared/ is the contract: it imports neither side.' }] },
      ],
    },
  },
};

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'scripts/ferretdb/**', 'results/**'] },
  {
    files: ['**/*.ts'],
    languageOptions: { parser: tseslint.parser },
    plugins: { '@typescript-eslint': tseslint.plugin },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-debugger': 'error',
    },
  },
  boundaryRules.server,
  boundaryRules.sdk,
  boundaryRules.sdkNode,
  boundaryRules.shared,
  {
    files: ['test/**/*.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        { selector: "CallExpression[callee.property.name='only']", message: 'no focused tests' },
        { selector: "CallExpression[callee.property.name='skip']", message: 'no skipped tests' },
      ],
    },
  },
);
