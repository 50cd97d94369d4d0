import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { SERVER_TIMEOUTS } from '../../../src/receiver/http.js';
import { startService, type TestService } from '../../helpers/service.js';

// A client that sends its request head one byte at a time (slowloris) must not hold a socket of
// the receiver: the server cuts it off once `headersTimeout` has passed since the first byte.
// Node enforces headersTimeout/requestTimeout only when it sweeps its connections, every
// `connectionsCheckingInterval` (default 30 s): without a shorter interval the real cut-off is
// anywhere between 10 and 40 s. The bound asserted here is the configured timeout plus 2 s.

const SLACK_MS = 2000;

let ts: TestService;
let port: number;
const sockets: net.Socket[] = [];

beforeAll(async () => {
  ts = await startService({ env: { LOG_LEVEL: 'warn' } });
  port = Number(new URL(ts.url).port);
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await ts?.close();
});

/** Writes `text` one byte every `everyMs`; resolves with when and how the server ended the connection. */
function dribble(text: string, everyMs: number, giveUpMs: number): Promise<{ closedAfterMs: number | undefined; answer: string }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = net.connect(port, '127.0.0.1');
    sockets.push(socket);
    let answer = '';
    let i = 0;
    const tick = setInterval(() => {
      if (!socket.destroyed && socket.writable) socket.write(text[i++ % text.length]!);
    }, everyMs);
    const done = (closedAfterMs: number | undefined) => {
      clearInterval(tick);
      clearTimeout(giveUp);
      socket.destroy();
      resolve({ closedAfterMs, answer });
    };
    const giveUp = setTimeout(() => done(undefined), giveUpMs);
    socket.on('data', (c: Buffer) => (answer += c.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => done(Date.now() - started));
  });
}

describe('slow clients', () => {
  it('configures finite header and request timeouts', () => {
    expect(SERVER_TIMEOUTS.headersTimeoutMs).toBeGreaterThan(0);
    expect(SERVER_TIMEOUTS.headersTimeoutMs).toBeLessThanOrEqual(10_000);
    // Gitea itself gives up on a delivery after 5 s ([webhook] DELIVER_TIMEOUT).
    expect(SERVER_TIMEOUTS.requestTimeoutMs).toBeLessThanOrEqual(30_000);
  });

  it(`closes a socket that sends its headers byte by byte within headersTimeout (+${SLACK_MS} ms)`, async () => {
    const limit = SERVER_TIMEOUTS.headersTimeoutMs + SLACK_MS;
    const head = `POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Gitea-Event: issues\r\nX-Padding: ${'a'.repeat(5000)}`;
    const { closedAfterMs, answer } = await dribble(head, 100, limit + 1000);
    if (closedAfterMs === undefined) {
      throw new Error(`the server kept a byte-by-byte client for more than ${limit + 1000} ms (headersTimeout ${SERVER_TIMEOUTS.headersTimeoutMs} ms): is connectionsCheckingInterval set?`);
    }
    expect(closedAfterMs).toBeLessThanOrEqual(limit);
    // Node answers 408 before closing; never a 5xx.
    expect(answer === '' || /^HTTP\/1\.1 408/.test(answer)).toBe(true);
    // And the service still serves others.
    expect((await ts.get('/healthz')).status).toBe(200);
  }, 30_000);
});
