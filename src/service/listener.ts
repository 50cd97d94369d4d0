import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Express } from 'express';
import type { Logger } from '../log/logger.js';
import { createHttpServer } from '../receiver/http.js';

/** The HTTP server of the receiver: listen once, then stop accepting and close after the drain. */
export class HttpListener {
  private server: http.Server | undefined;
  private closed: Promise<void> | undefined;

  constructor(
    private readonly app: Express,
    private readonly where: { host: string; port: number },
    private readonly log: Logger,
  ) {}

  /** Listens on `host:port` (port 0: an ephemeral port); `url` is connectable. */
  async listen(): Promise<{ port: number; url: string }> {
    if (this.server) throw new Error('service is already listening');
    const s = createHttpServer(this.app);
    this.server = s;
    this.closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(this.where.port, this.where.host, () => {
        s.off('error', reject);
        resolve();
      });
    });
    s.on('error', (error) => this.log.error('http server error', { error: error.message }));
    const port = (s.address() as AddressInfo).port;
    return { port, url: `http://${connectableHost(this.where.host)}:${port}` };
  }

  /** No new connections; idle keep-alive ones are closed, busy ones finish their request. */
  stopAccepting(): void {
    this.server?.close();
    this.server?.closeIdleConnections();
  }

  /** After the drain: a request still in flight had the whole drain time; what remains after `graceMs` is cut. */
  async close(graceMs: number): Promise<void> {
    const { server, closed } = this;
    if (!server || !closed) return;
    server.closeIdleConnections();
    const grace = sleep(graceMs, undefined, { ref: false }).then(() => server.closeAllConnections());
    await Promise.race([closed, grace]);
    await closed;
  }
}

/** `0.0.0.0`/`::` listen everywhere; a client connects to loopback. */
function connectableHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}
