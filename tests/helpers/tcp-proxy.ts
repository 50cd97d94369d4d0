import net from 'node:net';

/**
 * A TCP proxy between a client and a server (e.g. the service and PostgreSQL) that a test can cut and
 * restore, to make the server unreachable without touching it.
 *
 * - `cut()`: the listening socket closes (new connections are refused: ECONNREFUSED) and every open
 *   connection is destroyed on both sides (the client sees its connection reset / terminated).
 * - `cut('hang')`: connections are accepted but nothing is forwarded (a partition that drops packets:
 *   only the client's timeouts notice), and open connections stop forwarding too.
 * - `restore()`: listens again on the same port and forwards new connections.
 */
export interface TcpProxy {
  port: number;
  host: string;
  /** Connections accepted and forwarded so far. */
  readonly forwarded: number;
  /** Connections open right now. */
  readonly open: number;
  readonly state: 'forwarding' | 'refusing' | 'hanging';
  cut(mode?: 'refuse' | 'hang'): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

export interface TcpProxyOptions {
  targetPort: number;
  targetHost?: string;
  /** Listen port; 0 (default) picks a free one, kept across cut/restore. */
  port?: number;
}

export async function startTcpProxy(options: TcpProxyOptions): Promise<TcpProxy> {
  const targetHost = options.targetHost ?? '127.0.0.1';
  const pairs = new Set<{ client: net.Socket; server?: net.Socket }>();
  let state: TcpProxy['state'] = 'forwarding';
  let forwarded = 0;
  let server: net.Server | undefined;
  let port = options.port ?? 0;

  const onConnection = (client: net.Socket) => {
    const pair: { client: net.Socket; server?: net.Socket } = { client };
    pairs.add(pair);
    client.once('close', () => {
      pairs.delete(pair);
      pair.server?.destroy();
    });
    client.on('error', () => client.destroy());
    if (state === 'hanging') {
      client.pause(); // accepted, never answered
      return;
    }
    forwarded++;
    const upstream = net.connect(options.targetPort, targetHost);
    pair.server = upstream;
    upstream.on('error', () => client.destroy());
    upstream.once('close', () => client.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  };

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const s = net.createServer(onConnection);
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => {
        s.off('error', reject);
        port = (s.address() as net.AddressInfo).port;
        server = s;
        resolve();
      });
    });
  const unlisten = async () => {
    const s = server;
    server = undefined;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  };
  const destroyAll = () => {
    for (const p of pairs) {
      p.client.destroy();
      p.server?.destroy();
    }
  };

  await listen();
  return {
    get port() {
      return port;
    },
    host: '127.0.0.1',
    get forwarded() {
      return forwarded;
    },
    get open() {
      return pairs.size;
    },
    get state() {
      return state;
    },
    async cut(mode = 'refuse') {
      if (mode === 'refuse') {
        state = 'refusing';
        const closing = unlisten(); // resolves once the open connections below are gone
        destroyAll();
        await closing;
      } else {
        state = 'hanging';
        for (const p of pairs) {
          p.client.unpipe();
          p.server?.unpipe();
          p.client.pause();
          p.server?.pause();
        }
        if (!server) await listen();
      }
    },
    async restore() {
      if (state === 'hanging') destroyAll(); // stalled connections are dead for their clients anyway
      state = 'forwarding';
      if (!server) await listen();
    },
    async close() {
      state = 'refusing';
      const closing = unlisten();
      destroyAll();
      await closing;
    },
  };
}
