import { Writable } from 'node:stream';
import { describe, expect, it } from '@jest/globals';
import { createLogger, type Logger, silentLogger } from '../../../src/log/logger.js';
import { LogCapture } from '../../helpers/log-capture.js';

/** A stream that keeps what is written to it as text. */
function textSink(): { stream: Writable; text(): string } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      text += chunk.toString('utf8');
      done();
    },
  });
  return { stream, text: () => text };
}

/** Ends a logger and resolves once every line it took has been through its transport. */
function ended(log: Logger): Promise<void> {
  return new Promise((resolve) => {
    log.once('finish', () => resolve());
    log.end();
  });
}

describe('createLogger', () => {
  it('the service: one JSON object per line with msg and time, secrets masked, below the level dropped', async () => {
    const capture = new LogCapture();
    const log = createLogger({ level: 'info', format: 'json', stream: capture.stream, redact: ['tok-12345678'] });
    log.info('gitea request', { path: '/user', error: 'sent tok-12345678' });
    log.debug('not shown');
    await ended(log);
    expect(capture.lines).toHaveLength(1);
    expect(capture.lines[0]).toMatchObject({ level: 'info', msg: 'gitea request', path: '/user', error: 'sent [redacted]' });
    expect(typeof capture.lines[0]!.time).toBe('string');
  });

  it('silent (and silentLogger): writes nothing at any level', async () => {
    const sink = textSink();
    const log = createLogger({ level: 'debug', format: 'json', stream: sink.stream, silent: true });
    log.error('boom');
    await ended(log);
    expect(sink.text()).toBe('');
    expect(silentLogger().silent).toBe(true);
  });

  it('a tool: nothing without --verbose; with it, every level as short human lines, secrets masked', async () => {
    const quiet = textSink();
    const quietLog = createLogger({ tool: { verbose: false }, stream: quiet.stream, redact: ['tok-12345678'] });
    quietLog.warn('gitea request failed; retrying');
    await ended(quietLog);
    const verbose = textSink();
    const log = createLogger({ tool: { verbose: true }, stream: verbose.stream, redact: ['tok-12345678'] });
    log.debug('gitea request', { method: 'GET', path: '/user', status: 200 });
    log.warn('odd', { error: new Error('token tok-12345678 refused') });
    await ended(log);
    expect(quiet.text()).toBe('');
    const lines = verbose.text().trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^\d{2}:\d{2}:\d{2}\.\d{3} debug gitea request  method=GET path=\/user status=200$/);
    expect(lines[1]).toMatch(/^\d{2}:\d{2}:\d{2}\.\d{3} warn  odd  error=token \[redacted\] refused$/);
  });
});
