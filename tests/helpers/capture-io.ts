import { Readable, Writable } from 'node:stream';
import type { ToolIO } from '../../src/tools/cli.js';

/** A {@link ToolIO} whose output is kept in memory, for calling a tool's `xMain` in a test. */
export function captureIO(stdinText?: string): ToolIO & { out(): string; err(): string } {
  let out = '';
  let err = '';
  const sink = (append: (text: string) => void) =>
    new Writable({
      write(chunk: Buffer | string, _enc, done) {
        append(chunk.toString());
        done();
      },
    });
  const io: ToolIO & { out(): string; err(): string } = {
    stdout: sink((t) => (out += t)),
    stderr: sink((t) => (err += t)),
    out: () => out,
    err: () => err,
  };
  if (stdinText !== undefined) io.stdin = Readable.from([stdinText]);
  return io;
}
