/**
 * What `marked`'s lexer would cost the service against the block scanner of `src/triage/templates.ts`
 * (an issue body is written by anyone who can open an issue, and it is parsed on the event loop that
 * also answers webhooks).
 *
 *   node --import tsx scripts/bench/markdown.ts [--rounds 200]
 *
 * Prints, per issue body of tests/fixtures/real-issues/issues.json (real GitHub issues) and of the
 * webhook fixtures: µs per body for the scanner (`scanMarkdown`; with `markdownSections`, what a
 * decision runs) and for
 * marked 18's block lexer (`Lexer.blockTokens`, the inline pass left out, which only makes marked
 * cheaper), both with GFM on and off (GFM's table rule is one of the slow paths). Then the same for
 * bodies a hostile author can write, at 16 and 64 KiB: ms, or the error marked throws.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Lexer } from 'marked';
import { markdownSections, scanMarkdown } from '../../src/triage/templates.js';

const root = path.resolve(import.meta.dirname, '../..');

function argument(name: string, fallback: number): number {
  const at = process.argv.indexOf(name);
  return at === -1 ? fallback : Number(process.argv[at + 1]);
}

function bodies(): string[] {
  const out: string[] = [];
  const real = path.join(root, 'tests/fixtures/real-issues/issues.json');
  if (fs.existsSync(real)) for (const issue of JSON.parse(fs.readFileSync(real, 'utf8')) as { body: string }[]) out.push(issue.body);
  const payloads = path.join(root, 'tests/fixtures/payloads');
  for (const file of fs.readdirSync(payloads).filter((f) => f.endsWith('.json'))) {
    const body = (JSON.parse(fs.readFileSync(path.join(payloads, file), 'utf8')) as { body?: { issue?: { body?: string } } }).body;
    if (typeof body?.issue?.body === 'string' && body.issue.body !== '') out.push(body.issue.body);
  }
  return out;
}

type Parser = (text: string) => unknown;
const parsers: [string, Parser][] = [
  ['scanner', (t) => scanMarkdown(t)],
  ['scanner + sections', (t) => markdownSections(t)],
  ['marked gfm', (t) => new Lexer({ gfm: true }).blockTokens(t, [])],
  ['marked commonmark', (t) => new Lexer({ gfm: false }).blockTokens(t, [])],
];

/** Mean µs per call over `rounds` passes over `texts` (after one warm-up pass). */
function perBody(parse: Parser, texts: string[], rounds: number): number {
  for (const t of texts) parse(t);
  const start = process.hrtime.bigint();
  for (let r = 0; r < rounds; r++) for (const t of texts) parse(t);
  return Number(process.hrtime.bigint() - start) / 1000 / (rounds * texts.length);
}

function once(parse: Parser, text: string): string {
  const start = process.hrtime.bigint();
  try {
    parse(text);
  } catch (error) {
    return `${error instanceof Error ? error.name : 'error'} after ${(Number(process.hrtime.bigint() - start) / 1e6).toFixed(0)} ms`;
  }
  return `${(Number(process.hrtime.bigint() - start) / 1e6).toFixed(1)} ms`;
}

const hostile: [string, (bytes: number) => string][] = [
  ['setext runs  `a\\n-\\n`', (n) => 'a\n-\n'.repeat(n / 4)],
  ['quote + lazy line `> a\\nb\\n`', (n) => '> a\nb\n'.repeat(Math.floor(n / 6))],
  ['nested quotes `>>>…`', (n) => '>'.repeat(n)],
  ['nested ordered lists `1. 1. …`', (n) => '1. '.repeat(Math.floor(n / 3))],
  ['list items `- a\\n`', (n) => '- a\n'.repeat(n / 4)],
];

const texts = bodies();
const rounds = argument('--rounds', 200);
const chars = texts.reduce((s, t) => s + t.length, 0);
console.log(`${texts.length} issue bodies (mean ${Math.round(chars / texts.length)} characters), ${rounds} rounds`);
for (const [name, parse] of parsers) console.log(`  ${name.padEnd(20)} ${perBody(parse, texts, rounds).toFixed(1)} µs per body`);
console.log('\nhostile bodies (one run each)');
for (const [name, make] of hostile) {
  for (const bytes of [16 * 1024, 64 * 1024]) {
    const text = make(bytes);
    const cells = parsers.map(([p, parse]) => `${p}: ${once(parse, text)}`);
    console.log(`  ${name.padEnd(32)} ${String(bytes / 1024).padStart(2)} KiB  ${cells.join('  ')}`);
  }
}
