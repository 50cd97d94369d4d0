import { freePort } from '../process.js';
import { findNginx, startNginx } from './nginx.js';
import { startNodeProxy } from './proxy.js';

/**
 * The round-robin front for replica tests: a real nginx when one is installed (`.ci/run` installs
 * Debian's package), else the small Node proxy with the same retry rule. `GITEA_TRIAGE_LB=node` forces
 * the proxy, `GITEA_TRIAGE_LB=nginx` makes a missing nginx an error. Which one runs is printed in one line.
 */
export interface Front {
  kind: 'nginx' | 'node';
  url: string;
  /** nginx's access log lines (upstream and status of every try); empty for the Node proxy. */
  accessLog(): string[];
  /** Requests passed on to another upstream after a failed try, so far. */
  retried(): number;
  close(): Promise<void>;
}

export interface FrontOptions {
  upstreams: number[];
  /** Override `GITEA_TRIAGE_LB`. */
  kind?: 'nginx' | 'node';
  /** Do not print the line (tests of the front itself). */
  quiet?: boolean;
}

export async function startFront(options: FrontOptions): Promise<Front> {
  const wanted = options.kind ?? process.env.GITEA_TRIAGE_LB;
  if (wanted !== undefined && wanted !== 'nginx' && wanted !== 'node') {
    throw new Error(`GITEA_TRIAGE_LB must be "nginx" or "node", not ${JSON.stringify(wanted)}`);
  }
  const binary = wanted === 'node' ? undefined : findNginx();
  if (wanted === 'nginx' && !binary) throw new Error('GITEA_TRIAGE_LB=nginx but no nginx found (apt-get install -y nginx)');
  const say = (line: string) => {
    if (!options.quiet) console.log(line);
  };
  if (binary) {
    const nginx = await startNginx(binary, { upstreams: options.upstreams, port: await freePort() });
    say(`load balancer: ${nginx.version} (${binary}) on ${nginx.url} → ${options.upstreams.length} upstreams`);
    // A request nginx passed on lists every upstream it tried: `upstream=127.0.0.1:a, 127.0.0.1:b`.
    const retried = () => nginx.accessLog().reduce((n, l) => n + (/upstream=(.*) statuses=/.exec(l)?.[1] ?? '').split(',').length - 1, 0);
    return { kind: 'nginx', url: nginx.url, accessLog: nginx.accessLog, retried, close: nginx.close };
  }
  const proxy = await startNodeProxy({ upstreams: options.upstreams });
  const why = wanted === 'node' ? 'GITEA_TRIAGE_LB=node' : 'nginx not installed';
  say(`load balancer: Node proxy (tests/helpers/lb/proxy.ts; ${why}) on ${proxy.url} → ${options.upstreams.length} upstreams`);
  return { kind: 'node', url: proxy.url, accessLog: () => [], retried: () => proxy.retries, close: proxy.close };
}
