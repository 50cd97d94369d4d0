import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from '@jest/globals';
import { parseSync } from '@swc/core';

// src/triage is the pure decision (docs/architecture.md): config, patterns, templates, commands and
// `decide`. It must not reach Gitea, the store, the applier or the scheduler, not even for a type.
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const triageDir = path.join(root, 'src', 'triage');

/** Packages that do I/O or schedule work: none belongs in the decision. */
const IO_PACKAGES = ['axios', 'better-sqlite3', 'pg', 'express', 'p-queue', 'winston', 'fs', 'http', 'https', 'net', 'child_process', 'timers'];

type Node = { type?: unknown; [key: string]: unknown };

/** The module a syntax node names, if it is an import of any kind. */
function moduleOf(node: Node): string | undefined {
  const literal = (v: unknown) => (v && typeof v === 'object' && typeof (v as Node).value === 'string' ? ((v as Node).value as string) : undefined);
  switch (node.type) {
    case 'ImportDeclaration': // also `import type`
    case 'ExportAllDeclaration':
    case 'ExportNamedDeclaration':
      return literal(node.source);
    case 'TsImportType': // `import('x').T` in a type
      return literal(node.argument);
    case 'TsExternalModuleReference': // `import x = require('x')`
      return literal(node.expression);
    case 'CallExpression': {
      const args = node.arguments as { expression?: unknown }[];
      return (node.callee as Node).type === 'Import' ? literal(args[0]?.expression) : undefined;
    }
    default:
      return undefined;
  }
}

/** Every module specifier of a TypeScript source: static, type-only, re-exported and dynamic. */
function specifiersOf(source: string): string[] {
  const found: string[] = [];
  const walk = (value: unknown): void => {
    if (Array.isArray(value)) {
      for (const v of value) walk(v);
      return;
    }
    if (!value || typeof value !== 'object') return;
    const named = moduleOf(value as Node);
    if (named !== undefined) found.push(named);
    for (const v of Object.values(value)) walk(v);
  };
  walk(parseSync(source, { syntax: 'typescript' }).body);
  return found;
}

const specifiers = (file: string) => specifiersOf(fs.readFileSync(file, 'utf8'));

/** Why a specifier breaks the rule, or undefined. */
function violation(file: string, specifier: string): string | undefined {
  if (specifier.startsWith('.')) {
    const target = path.resolve(path.dirname(file), specifier);
    const relative = path.relative(triageDir, target);
    // src/errors.ts (one line of text for any failure) is pure and imports nothing: the one module outside.
    if (path.relative(path.join(root, 'src'), target) === 'errors.js') return undefined;
    return relative.startsWith('..') || path.isAbsolute(relative) ? `imports ${path.relative(path.join(root, 'src'), target)}` : undefined;
  }
  const name = specifier.replace(/^node:/, '').split('/')[0]!;
  return IO_PACKAGES.includes(name) ? `imports ${specifier}` : undefined;
}

describe('src/triage is pure', () => {
  const files = fs.readdirSync(triageDir).filter((f) => f.endsWith('.ts')).map((f) => path.join(triageDir, f));

  it('reads the imports it checks (the check itself sees type-only and dynamic imports)', () => {
    expect(files.map((f) => path.basename(f))).toEqual(expect.arrayContaining(['config.ts', 'decide.ts', 'types.ts']));
    expect(specifiers(path.join(triageDir, 'decide.ts'))).toEqual(expect.arrayContaining(['./patterns.js', './types.js']));
    const every = "import type { A } from 'a'; export * from 'b'; export { c } from 'c'; type D = import('d').D; import e = require('e'); void import('f');";
    expect(specifiersOf(every)).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
    const probe = path.join(triageDir, 'probe.ts');
    expect(violation(probe, '../gitea/types.js')).toBe('imports gitea/types.js');
    expect(violation(probe, 'node:fs')).toBe('imports node:fs');
    expect(violation(probe, './decide.js')).toBeUndefined();
  });

  it('imports nothing from gitea/, the journal, the applier, the scheduler, the context or the evaluation', () => {
    const found: string[] = [];
    for (const file of files) {
      for (const specifier of specifiers(file)) {
        const why = violation(file, specifier);
        if (why) found.push(`src/triage/${path.basename(file)} ${why}`);
      }
    }
    expect(found).toEqual([]);
  });
});
