import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { SERVER_TIMEOUTS } from '../../../src/receiver/http.js';
import { startService, type TestService } from '../../helpers/service.js';
import { fixtureDelivery } from '../../helpers/signing.js';
import { waitFor } from '../../helpers/wait.js';

// A client that sends its request head one byte at a time (slowloris) must not hold a socket of
// the receiver, nor stall it: while it dribbles, the service answers control requests and accepts
// real deliveries; the server cuts it off by itself (headersTimeout, enforced on each sweep of
// `connectionsCheckingInterval`). How long the cut-off takes is a figure, not asserted here.

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

/**
 * Writes `text` one byte every `everyMs` until the server closes the connection (`closed` resolves
 * with what it answered) or `stop()` is called (`closed` resolves with `undefined`).
 */
function dribble(text: string, everyMs: number): { closed: Promise<string | undefined>; written(): number; stop(): void } {
  const socket = net.connect(port, '127.0.0.1');
  sockets.push(socket);
  let answer = '';
  let i = 0;
  let stopped = false;
  const tick = setInterval(() => {
    if (!socket.destroyed && socket.writable) socket.write(text[i++ % text.length]!);
  }, everyMs);
  const closed = new Promise<string | undefined>((resolve) => {
    socket.on('data', (c: Buffer) => (answer += c.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearInterval(tick);
      resolve(stopped ? undefined : answer);
    });
  });
  return {
    closed,
    written: () => i,
    stop: () => {
      stopped = true;
      socket.destroy();
    },
  };
}

describe('slow clients', () => {
  it('configures finite header and request timeouts, swept often', () => {
    expect(SERVER_TIMEOUTS.headersTimeoutMs).toBeGreaterThan(0);
    expect(SERVER_TIMEOUTS.headersTimeoutMs).toBeLessThanOrEqual(10_000);
    // Gitea itself gives up on a delivery after 5 s ([webhook] DELIVER_TIMEOUT).
    expect(SERVER_TIMEOUTS.requestTimeoutMs).toBeLessThanOrEqual(30_000);
    // Node enforces those only when it sweeps its connections (default every 30 s).
    expect(SERVER_TIMEOUTS.connectionsCheckingIntervalMs).toBeLessThan(SERVER_TIMEOUTS.headersTimeoutMs);
  });

  it('serves others while a client sends its headers byte by byte, and cuts that client off', async () => {
    const head = `POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Gitea-Event: issues\r\nX-Padding: ${'a'.repeat(5000)}`;
    const slow = dribble(head, 100);
    let cutOff = false;
    void slow.closed.then(() => (cutOff = true));
    try {
      await waitFor(() => slow.written() >= 5, { what: 'the slow client to be sending' });
      // No stall: while it dribbles, control requests are answered and a real delivery is accepted.
      await waitFor(async () => (await ts.get('/healthz')).status === 200, { what: '/healthz during the slow client' });
      const delivery = fixtureDelivery('issues-opened');
      expect((await ts.post(delivery)).status).toBe(202);
      expect((await ts.get('/readyz')).status).toBe(200);
      expect(cutOff).toBe(false); // all of that happened while it was connected
      // The server closes it by itself (the deadline only bounds the wait: the limit is headersTimeout plus a sweep).
      const deadline = SERVER_TIMEOUTS.headersTimeoutMs * 4;
      await waitFor(() => cutOff, { timeoutMs: deadline, intervalMs: 100, what: 'the server to cut off the byte-by-byte client' });
      const answer = await slow.closed;
      // Node answers 408 before closing; never a 5xx.
      expect(answer === '' || /^HTTP\/1\.1 408/.test(answer!)).toBe(true);
      // And the service still serves others.
      expect((await ts.get('/healthz')).status).toBe(200);
    } finally {
      slow.stop();
    }
  }, 60_000);
});
