import { Writable } from 'node:stream';

/** Collects log lines in memory, parsed (tests assert on their fields). */
export class LogCapture {
  readonly lines: Record<string, unknown>[] = [];
  readonly stream = new Writable({
    write: (chunk: Buffer, _enc, done) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim()) this.lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      done();
    },
  });

  /** Lines whose fields all equal the given ones. */
  find(fields: Record<string, unknown>): Record<string, unknown>[] {
    return this.lines.filter((l) => Object.entries(fields).every(([k, v]) => l[k] === v));
  }

  get text(): string {
    return this.lines.map((l) => JSON.stringify(l)).join('\n');
  }
}
