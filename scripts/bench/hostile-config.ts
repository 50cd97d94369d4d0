/**
 * How long the triage config parser and its patterns take on hostile input — the figures that
 * tests/unit/fuzz/triage-config.test.ts does not assert (tests check behaviour, never a stopwatch).
 *
 *   node --import tsx scripts/bench/hostile-config.ts [--runs 5]
 *
 * Prints, per case, the median of `runs` runs in milliseconds: parsing each hostile config, and one
 * match of each accepted catastrophic pattern over the 64 KB of text a pattern examines at most.
 * The decision runs on the service's event loop, so these are also how long the receiver would wait.
 */
import { performance } from 'node:perf_hooks';
import { parseTriageConfig } from '../../src/triage/config.js';
import { PATTERN_LIMITS } from '../../src/triage/patterns.js';

const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 5;
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error(`--runs: expected a positive integer, got ${process.argv[runsArg + 1]}`);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function timed(fn: () => void): number {
  const samples: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const started = performance.now();
    fn();
    samples.push(performance.now() - started);
  }
  return median(samples);
}

function aliasBomb(): string {
  const keys = 'abcdefghi';
  let text = `${keys[0]}: &${keys[0]} ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n`;
  for (let i = 1; i < keys.length; i++) text += `${keys[i]}: &${keys[i]} [${Array(9).fill(`*${keys[i - 1]}`).join(',')}]\n`;
  return `${text}labels:\n  kind/bug:\n    title: *i\n`;
}

const CONFIGS: [string, string][] = [
  ['100,000-entry pattern list', `labels:\n  kind/bug:\n    title:\n${Array.from({ length: 100_000 }, (_, i) => `      - 'word${i}'`).join('\n')}\n`],
  ['100,000 labels', `labels:\n${Array.from({ length: 100_000 }, (_, i) => `  l${i}:\n    title: ['x${i}']`).join('\n')}\n`],
  ['3 labels x 200 regexes', `labels:\n${['a', 'b', 'c'].map((l) => `  ${l}:\n    title:\n${Array.from({ length: 200 }, (_, i) => `      - '${l}${i}'`).join('\n')}`).join('\n')}\n`],
  ['alias bomb', aliasBomb()],
  ['100,000 nested [', '['.repeat(100_000)],
  ['20,000 nested {a:', `labels: ${'{a: '.repeat(20_000)}1${'}'.repeat(20_000)}`],
  ['oversized (.*a){1000}', 'labels:\n  kind/bug:\n    body: ["(.*a){1000}"]\n'],
];

const CATASTROPHIC = ['(a+)+$', '(a|aa)+$', '(x+x+)+y', '(.*a){25}', '^(\\w+\\s?)*$', '(a*)*b', '((a+)+)+$'];
const half = PATTERN_LIMITS.maxTextLength / 2;
const HOSTILE = `${'a'.repeat(half - 1)}!${'ab'.repeat(half / 2)}`; // exactly maxTextLength

const rows: [string, string, string][] = [];
for (const [what, text] of CONFIGS) {
  const result = parseTriageConfig(text, '.gitea/triage.yml');
  const outcome = 'problem' in result ? `refused: ${result.problem.message}` : 'accepted';
  rows.push([`parse ${what}`, timed(() => parseTriageConfig(text, '.gitea/triage.yml')).toFixed(1), outcome]);
}
for (const regex of CATASTROPHIC) {
  const result = parseTriageConfig(`labels:\n  kind/bug:\n    body: [${JSON.stringify(regex)}]\n`, '.gitea/triage.yml');
  if ('problem' in result) {
    rows.push([`match ${regex}`, '-', `refused: ${result.problem.message}`]);
    continue;
  }
  const pattern = result.config.labels.get('kind/bug')!.body![0]!;
  const matched = pattern.match(HOSTILE) !== undefined;
  rows.push([`match ${regex} on ${Math.round(HOSTILE.length / 1024)} KB`, timed(() => pattern.match(HOSTILE)).toFixed(1), matched ? 'matches' : 'no match']);
}

const width = Math.max(...rows.map((r) => r[0].length));
console.log(`${'case'.padEnd(width)}  ${'ms'.padStart(8)}  outcome (median of ${RUNS} runs)`);
for (const [what, ms, outcome] of rows) console.log(`${what.padEnd(width)}  ${ms.padStart(8)}  ${outcome}`);
