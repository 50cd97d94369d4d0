import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from '@jest/globals';
import { startFront, type Front } from '../helpers/lb/index.js';
import { findNginx } from '../helpers/lb/nginx.js';
import { freePort } from '../helpers/process.js';
import { request } from '../helpers/service.js';

// The replica tests' front (tests/helpers/lb): round robin, and a POST passed on to the next upstream
// on a refused connection or a 503, for both the real nginx and the Node fallback.

interface Upstream {
  port: number;
  /** Bodies received, in order. */
  bodies: string[];
  close(): Promise<void>;
}

/** A tiny upstream answering `status` with its name (and recording request bodies). */
async function upstream(name: string, status = 200): Promise<Upstream> {
  const bodies: string[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      bodies.push(Buffer.concat(chunks).toString('utf8'));
      res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify({ name }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    bodies,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const nginx = findNginx();
const kinds: ('nginx' | 'node')[] = nginx ? ['nginx', 'node'] : ['node'];
if (!nginx) console.log('lb-front: nginx not installed, only the Node proxy is tested (apt-get install -y nginx to test both)');

describe.each(kinds)('front: %s', (kind) => {
  let front: Front | undefined;
  const ups: Upstream[] = [];
  afterEach(async () => {
    await front?.close();
    front = undefined;
    await Promise.all(ups.splice(0).map((u) => u.close()));
  });

  it('spreads requests round robin over the upstreams', async () => {
    ups.push(await upstream('a'), await upstream('b'), await upstream('c'));
    front = await startFront({ upstreams: ups.map((u) => u.port), kind, quiet: true });
    expect(front.kind).toBe(kind);
    const names: string[] = [];
    for (let i = 0; i < 9; i++) names.push((await request(front.url + '/readyz')).json.name as string);
    expect(['a', 'b', 'c'].map((n) => names.filter((x) => x === n).length)).toEqual([3, 3, 3]);
    expect(front.retried()).toBe(0);
  });

  it('sends a POST on to the next upstream when one refuses the connection or answers 503, body intact', async () => {
    const refused = await freePort(); // nothing listens there
    const stopping = await upstream('stopping', 503);
    const good = await upstream('good');
    ups.push(stopping, good);
    front = await startFront({ upstreams: [refused, stopping.port, good.port], kind, quiet: true });
    const sent = Array.from({ length: 6 }, (_, i) => JSON.stringify({ delivery: i, pad: 'x'.repeat(40_000) }));
    const answers = [];
    for (const body of sent) {
      answers.push(await request(front.url + '/webhook', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body }));
    }
    expect(answers.map((a) => [a.status, a.json?.name])).toEqual(sent.map(() => [200, 'good']));
    expect(good.bodies).toEqual(sent);
    expect(front.retried()).toBeGreaterThan(0);
  });

  it('answers 502 when no upstream answers, and passes on the 503 when every upstream is stopping', async () => {
    const down = [await freePort(), await freePort()];
    front = await startFront({ upstreams: down, kind, quiet: true });
    expect((await request(front.url + '/webhook', { method: 'POST', body: '{}' })).status).toBe(502);
    await front.close();
    const stopping = [await upstream('s1', 503), await upstream('s2', 503)];
    ups.push(...stopping);
    front = await startFront({ upstreams: stopping.map((u) => u.port), kind, quiet: true });
    expect((await request(front.url + '/webhook', { method: 'POST', body: '{}' })).status).toBe(503);
    expect(stopping.map((u) => u.bodies.length)).toEqual([1, 1]);
  });
});
