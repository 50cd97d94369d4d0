import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from '@jest/globals';
import { createService, type Service } from '../../src/app.js';
import { loadConfig } from '../../src/config/config.js';
import { GITEA_SIZE_LIMITS } from '../../src/gitea/client.js';
import { createLogger } from '../../src/log/logger.js';
import { LogCapture } from '../helpers/log-capture.js';
import { HAND_OVER_LIMITS } from '../../src/scheduler/scheduler.js';
import { SimGitea } from '../../src/simgitea/sim.js';
import { createTriageEvaluator } from '../../src/service/triage.js';
import { RecordingEvaluator, request, startService, tempDataDir, type TestService } from '../helpers/service.js';
import { fixtureDelivery } from '../helpers/signing.js';
import { waitFor } from '../helpers/wait.js';
import { SECRET, seedTriagedRepo } from './triage-harness.js';

// docs/architecture.md, "The invariants": bounded memory. The journal holds the backlog; what the
// heap holds of it (the receiver's parsed payloads handed to the scheduler, Gitea's answers) is capped
// in bytes.

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('the hand-over of parsed payloads under large deliveries', () => {
  let t: TestService;

  it('stays within its byte cap; every delivery is still evaluated on its full payload', async () => {
    const evaluator = new RecordingEvaluator();
    evaluator.hold = true;
    // One evaluation at a time, held: every other subject waits in the queue with its payload handed over.
    t = await startService({ evaluator, env: { CONCURRENCY: '1' } });
    cleanups.push(() => t.close());

    // 24 issues with bodies just under the per-body cap: together well over the byte cap.
    // 2 more with bodies over the per-body cap: never handed over.
    const near = HAND_OVER_LIMITS.maxBodyBytes - 64 * 1024;
    const sizes = [...Array.from({ length: 24 }, () => near), HAND_OVER_LIMITS.maxBodyBytes + 1, HAND_OVER_LIMITS.maxBodyBytes * 2];
    expect(sizes.slice(0, 24).reduce((a, b) => a + b, 0)).toBeGreaterThan(HAND_OVER_LIMITS.maxBytes);
    const sent = new Map<string, number>(); // delivery id → issue body length
    let largest = 0;
    for (const [i, size] of sizes.entries()) {
      const delivery = fixtureDelivery('issues-opened', {
        mutate: (b) => {
          b.issue.number = 100 + i;
          b.issue.body = 'x'.repeat(size);
        },
      });
      const answer = await t.post(delivery);
      expect(answer.status).toBe(202);
      sent.set(delivery.id, size);
      largest = Math.max(largest, t.service.scheduler.handOverStats.bytes);
    }

    const stats = t.service.scheduler.handOverStats;
    expect(largest).toBeLessThanOrEqual(HAND_OVER_LIMITS.maxBytes);
    expect(stats.tooLarge).toBe(2);
    expect(stats.evicted).toBeGreaterThan(0);
    expect(stats.entries).toBeLessThan(24);
    // Nothing stalls meanwhile: the service answers a control request.
    expect((await t.get('/healthz')).status).toBe(200);

    evaluator.release();
    await waitFor(() => evaluator.deliveryIds.length === sizes.length, { timeoutMs: 60_000, what: 'every delivery evaluated' });
    for (const item of evaluator.items) {
      for (const d of item.deliveries) {
        expect((d.payload.issue as { body: string }).body).toHaveLength(sent.get(d.id)!);
      }
    }
    expect(t.service.scheduler.handOverStats).toMatchObject({ entries: 0, bytes: 0 });
  });
});

/**
 * A proxy in front of the simulated Gitea that, while `broken`, answers label lists with a JSON array
 * that never ends (until the client hangs up).
 */
async function brokenProxy(target: string): Promise<{ url: string; setBroken(broken: boolean): void; close(): Promise<void> }> {
  let broken = true;
  const server = http.createServer((req, res) => {
    if (broken && req.method === 'GET' && /\/labels(\?|$)/.test(req.url ?? '')) {
      res.setHeader('Content-Type', 'application/json');
      res.write('[');
      const chunk = Buffer.from(`${JSON.stringify({ id: 1, name: 'y'.repeat(1000) })},`.repeat(64));
      let open = true;
      res.on('close', () => (open = false));
      const pump = () => {
        while (open && res.write(chunk));
        if (open) res.once('drain', pump);
      };
      pump();
      return;
    }
    const upstream = http.request(`${target}${req.url}`, { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    setBroken: (value) => (broken = value),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('an answer from Gitea over the response size limit', () => {
  it('fails that evaluation with an error naming the limit; the service keeps serving and recovers', async () => {
    const sim = await SimGitea.start();
    cleanups.push(() => sim.close());
    sim.addOrg('acme');
    sim.addUser('alice');
    seedTriagedRepo(sim, 'acme', 'widgets');
    const proxy = await brokenProxy(sim.url);
    cleanups.push(() => proxy.close());

    const logs = new LogCapture();
    const dataDir = tempDataDir();
    cleanups.push(async () => fs.rmSync(dataDir, { recursive: true, force: true }));
    const config = loadConfig({
      GITEA_URL: proxy.url,
      GITEA_TOKEN: sim.token,
      WEBHOOK_SECRET: SECRET,
      HOST: '127.0.0.1',
      PORT: '0',
      DATA_DIR: dataDir,
      BATCH_WINDOW_MS: '20',
      JOURNAL_SYNC: 'normal',
      LOG_LEVEL: 'debug',
    });
    const log = createLogger({ level: 'debug', format: 'json', stream: logs.stream, redact: [config.giteaToken, SECRET] });
    const service: Service = await createService({ config, log, evaluator: createTriageEvaluator, identityBackoff: { firstMs: 20, maxMs: 200 } });
    cleanups.push(() => service.stop());
    const { url } = await service.listen();
    await service.identified();
    sim.setWebhook({ url: `${url}/webhook`, secret: SECRET });

    const n = sim.openIssue('acme', 'widgets', { user: 'alice', title: 'Editor crashes on save', body: 'It stops.' });
    const retry = await waitFor(() => logs.find({ msg: 'retry scheduled' })[0], { timeoutMs: 30_000, what: 'a retry scheduled' });
    expect(retry.error).toBe(
      `GET /repos/acme/widgets/labels: the answer is larger than the response size limit (${GITEA_SIZE_LIMITS.responseBytes} bytes); is a proxy in front of Gitea misbehaving?`,
    );
    expect(logs.text).not.toContain(sim.token);
    // The process is alive and serving.
    expect((await request(`${url}/healthz`)).status).toBe(200);

    // Once the proxy behaves, the retried evaluation labels the issue.
    proxy.setBroken(false);
    await waitFor(() => sim.issueLabels('acme', 'widgets', n).includes('kind/bug'), { timeoutMs: 30_000, what: 'the issue labelled after the retry' });
  });
});
