/** @type {import('jest').Config} */
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  // NodeNext wants `.js` in relative imports; the sources are `.ts`.
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'es6' } }],
  },
  testMatch: ['<rootDir>/tests/**/*.test.ts'],
  // The soak tests (minutes of load, kill -9 rounds, a 30 s outage) run after the rest: `npm run test:soak`.
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/tests/soak/'],
  testTimeout: 60000,
};
