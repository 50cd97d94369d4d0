import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A tiny Gitea for ingest tests: answers `GET /api/v1/user` and `GET /api/v1/version` only, over
 * real HTTP (the real GiteaClient talks to it). `userStatus` lets a test keep Gitea "down" for
 * identity until it flips it back to 200.
 */
export interface StubGitea {
  url: string;
  login: string;
  /** Status for `/api/v1/user` (200 by default). */
  userStatus: number;
  /** Requests seen, `METHOD /path`. */
  requests: string[];
  close(): Promise<void>;
}

export async function startStubGitea(options: { login?: string; version?: string; userStatus?: number } = {}): Promise<StubGitea> {
  const login = options.login ?? 'triage-bot';
  const state: StubGitea = {
    url: '',
    login,
    userStatus: options.userStatus ?? 200,
    requests: [],
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = http.createServer((req, res) => {
    state.requests.push(`${req.method} ${req.url}`);
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'Content-Type': 'application/json;charset=utf-8' }).end(JSON.stringify(body));
    };
    if (req.method === 'GET' && req.url === '/api/v1/user') {
      if (state.userStatus !== 200) return send(state.userStatus, { message: 'unavailable', url: state.url });
      return send(200, { id: 99, login, username: login, full_name: 'Triage Bot', email: `${login}@noreply.localhost` });
    }
    if (req.method === 'GET' && req.url === '/api/v1/version') return send(200, { version: options.version ?? '1.25.4' });
    send(404, { message: 'not found', url: state.url });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}
