import http from 'node:http';
import https from 'node:https';
import axios, { type AxiosInstance, type AxiosResponse } from 'axios';
import type { Config } from '../config/config.js';
import type { Logger } from '../log/logger.js';
import type { GiteaApi, HookOptions, HookTarget } from './api.js';
import { CircuitBreaker, type CircuitOptions, type CircuitState } from './circuit.js';
import { GiteaError } from './errors.js';
import type {
  GiteaChangedFile,
  GiteaContents,
  GiteaHook,
  GiteaIssue,
  GiteaIssueTemplate,
  GiteaLabel,
  GiteaPermission,
  GiteaRepo,
  GiteaUser,
} from './types.js';
import { renamesFromDiff } from './diff-renames.js';
import { parseGiteaVersion, versionAtLeast, versionAtLeastPatch, type GiteaVersion } from './version.js';

export interface GiteaClientOptions {
  /** `GITEA_URL`, e.g. `http://127.0.0.1:3000` (a trailing slash is ignored). */
  baseUrl: string;
  token: string;
  /** Pool size toward Gitea (`GITEA_MAX_SOCKETS`). */
  maxSockets: number;
  /** false = a new TCP connection per request (the benchmark's "linear" mode). */
  keepAlive: boolean;
  /** Per-request timeout (`GITEA_TIMEOUT_MS`). */
  timeoutMs: number;
  /** Retries after the first attempt (`GITEA_RETRIES`). */
  retries: number;
  log: Logger;
  /** Backoff base: attempt n waits a random time in [0, min(retryMaxMs, retryBaseMs·2^(n-1))]. Default 200. */
  retryBaseMs?: number;
  /** Cap for the backoff and for an honoured `Retry-After`. Default 10000. */
  retryMaxMs?: number;
  userAgent?: string;
  /** The client-wide circuit breaker (see circuit.ts), plus how long one call may wait for it (default 30000 ms). */
  circuit?: CircuitOptions & { maxWaitMs?: number };
  /** Largest answer body read from Gitea, in bytes (default {@link GITEA_SIZE_LIMITS}.responseBytes). */
  maxResponseBytes?: number;
  /** Largest request body sent to Gitea, in bytes (default {@link GITEA_SIZE_LIMITS}.requestBytes). */
  maxRequestBytes?: number;
}

/**
 * Size caps of the HTTP bodies exchanged with Gitea, so that a broken proxy (or a misrouted
 * `GITEA_URL`) cannot exhaust memory. Gitea's largest answers the service asks for are pages of at
 * most 50 items and `file-contents` batches of at most 30 small files: a few MB at most.
 * Requests carry label ids, a short comment or a hook's settings.
 */
export const GITEA_SIZE_LIMITS = {
  responseBytes: 32 * 1024 * 1024,
  requestBytes: 1024 * 1024,
} as const;

/** The configuration a client is built from (the service's `Config` has these, and so do the tools'). */
export type GiteaClientConfig = Pick<
  Config,
  'giteaUrl' | 'giteaToken' | 'giteaMaxSockets' | 'giteaKeepAlive' | 'giteaTimeoutMs' | 'giteaRetries'
>;

/** A client with the configured limits; `overrides` for what a caller sets itself (tests' short backoffs). */
export function giteaClientFromConfig(config: GiteaClientConfig, log: Logger, overrides: Partial<GiteaClientOptions> = {}): GiteaClient {
  return new GiteaClient({
    baseUrl: config.giteaUrl,
    token: config.giteaToken,
    maxSockets: config.giteaMaxSockets,
    keepAlive: config.giteaKeepAlive,
    timeoutMs: config.giteaTimeoutMs,
    retries: config.giteaRetries,
    log,
    ...overrides,
  });
}

/** Gitea's `[api] MAX_RESPONSE_ITEMS` default: the largest page it serves. */
const PAGE_LIMIT = 50;
/** `file-contents` answers at most `[api] DEFAULT_PAGING_NUM` (30) files per request. */
const FILES_PER_REQUEST = 30;
/** A runaway-paging guard: 10,000 pages of 50 is far beyond any real list. */
const MAX_PAGES = 10_000;

type Method = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';

interface Call {
  method: Method;
  /** Built by `path()` from encoded segments only. */
  path: string;
  query?: Record<string, string | number | undefined>;
  body?: unknown;
  /**
   * Whether sending it twice is harmless. Non-idempotent calls (creating a comment, a label, a hook) are
   * retried only when Gitea surely did not act: connection refused / DNS failure, 429, 503.
   */
  idempotent: boolean;
  /** Statuses that are answers for this call rather than errors (e.g. 404 for `listOrgLabels`). */
  accept?: number[];
  /** The answer is text (a diff), not JSON. */
  text?: boolean;
}

/** Network error codes meaning the request never reached Gitea. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * The only code that speaks HTTP to Gitea (docs/architecture.md, "The stages": gitea): one axios
 * instance over one `http(s).Agent({ keepAlive, maxSockets })`, `Authorization: token …`,
 * per-request timeout, retries with capped exponential backoff and full jitter (honouring
 * `Retry-After`), a client-wide circuit breaker, and size caps on what it reads and sends.
 *
 * It only ever calls `${baseUrl}/api/v1`: every method builds its path from `owner`, `repo`, names and
 * numbers, each encoded with `encodeURIComponent` (and `.`/`..` refused, which URL parsing would
 * resolve); no method accepts a URL; absolute URLs and redirects are refused.
 */
export class GiteaClient implements GiteaApi {
  private readonly http: AxiosInstance;
  private readonly agent: http.Agent;
  private readonly log: Logger;
  private readonly token: string;
  private readonly retries: number;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private readonly circuit: CircuitBreaker;
  private readonly circuitMaxWaitMs: number;
  private readonly counters = { requests: 0, retries: 0 };
  private readonly limits: { responseBytes: number; requestBytes: number };
  private version: Promise<{ raw: string; parsed: GiteaVersion | null }> | undefined;

  constructor(options: GiteaClientOptions) {
    const base = new URL(options.baseUrl);
    if (base.protocol !== 'http:' && base.protocol !== 'https:') {
      throw new Error(`GiteaClient: baseUrl must be http(s), got ${base.protocol}`);
    }
    if (!Number.isInteger(options.maxSockets) || options.maxSockets < 1) {
      throw new Error(`GiteaClient: maxSockets must be a positive integer, got ${options.maxSockets}`);
    }
    if (!Number.isInteger(options.retries) || options.retries < 0) {
      throw new Error(`GiteaClient: retries must be a non-negative integer, got ${options.retries}`);
    }
    this.log = options.log;
    this.token = options.token;
    this.retries = options.retries;
    this.retryBaseMs = options.retryBaseMs ?? 200;
    this.retryMaxMs = options.retryMaxMs ?? 10000;
    this.circuit = new CircuitBreaker(options.circuit);
    this.circuitMaxWaitMs = options.circuit?.maxWaitMs ?? 30000;
    this.limits = {
      responseBytes: positiveLimit('maxResponseBytes', options.maxResponseBytes ?? GITEA_SIZE_LIMITS.responseBytes),
      requestBytes: positiveLimit('maxRequestBytes', options.maxRequestBytes ?? GITEA_SIZE_LIMITS.requestBytes),
    };

    const agentOptions = { keepAlive: options.keepAlive, maxSockets: options.maxSockets };
    this.agent = base.protocol === 'https:' ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
    this.http = axios.create({
      baseURL: `${options.baseUrl.replace(/\/+$/, '')}/api/v1`,
      allowAbsoluteUrls: false,
      maxRedirects: 0,
      timeout: options.timeoutMs,
      transitional: { clarifyTimeoutError: true },
      httpAgent: base.protocol === 'http:' ? this.agent : undefined,
      httpsAgent: base.protocol === 'https:' ? this.agent : undefined,
      proxy: false,
      validateStatus: () => true,
      // axios stops reading past these and rejects (send() turns that into a GiteaError naming the limit).
      maxContentLength: this.limits.responseBytes,
      maxBodyLength: this.limits.requestBytes,
      headers: {
        Authorization: `token ${options.token}`,
        Accept: 'application/json',
        'User-Agent': options.userAgent ?? 'gitea-triage',
      },
    });
  }

  /** Requests sent (every attempt) and how many of them were retries. */
  stats(): { requests: number; retries: number } {
    return { ...this.counters };
  }

  /** The circuit breaker's view of Gitea, for `/readyz`. */
  health(): { state: CircuitState; consecutiveFailures: number } {
    return this.circuit.health();
  }

  /** Closes pooled connections (tests, shutdown). */
  close(): void {
    this.agent.destroy();
  }

  async getVersion(): Promise<string> {
    return (await this.loadVersion()).raw;
  }

  async getCurrentUser(): Promise<GiteaUser> {
    return (await this.send<GiteaUser>({ method: 'GET', path: '/user', idempotent: true })).data;
  }

  async getRepo(owner: string, repo: string): Promise<GiteaRepo> {
    return (await this.send<GiteaRepo>({ method: 'GET', path: path('repos', owner, repo), idempotent: true })).data;
  }

  async listOrgRepos(org: string): Promise<GiteaRepo[]> {
    return (await this.allPages<GiteaRepo>(path('orgs', org, 'repos'), {})) ?? [];
  }

  async getIssue(owner: string, repo: string, index: number): Promise<GiteaIssue> {
    const p = path('repos', owner, repo, 'issues', index);
    return (await this.send<GiteaIssue>({ method: 'GET', path: p, idempotent: true })).data;
  }

  async listIssues(
    owner: string,
    repo: string,
    options: { state?: 'open' | 'closed' | 'all'; type?: 'issues' | 'pulls'; since?: string } = {},
  ): Promise<GiteaIssue[]> {
    const query = { state: options.state ?? 'open', type: options.type, since: options.since };
    return (await this.allPages<GiteaIssue>(path('repos', owner, repo, 'issues'), query)) ?? [];
  }

  async getIssueLabels(owner: string, repo: string, index: number): Promise<GiteaLabel[]> {
    const p = path('repos', owner, repo, 'issues', index, 'labels');
    return listOf<GiteaLabel>((await this.send({ method: 'GET', path: p, idempotent: true })).data);
  }

  /** With no ids this reads the labels instead: an empty write would still make Gitea send a `label_updated`. */
  async addIssueLabels(owner: string, repo: string, index: number, labelIds: number[]): Promise<GiteaLabel[]> {
    if (labelIds.length === 0) return this.getIssueLabels(owner, repo, index);
    for (const id of labelIds) integer(id, 'label id');
    const p = path('repos', owner, repo, 'issues', index, 'labels');
    // Adding the same ids again changes nothing: safe to retry.
    const res = await this.send({ method: 'POST', path: p, body: { labels: labelIds }, idempotent: true });
    return listOf<GiteaLabel>(res.data);
  }

  async removeIssueLabel(owner: string, repo: string, index: number, labelId: number): Promise<void> {
    const p = path('repos', owner, repo, 'issues', index, 'labels', labelId);
    await this.send({ method: 'DELETE', path: p, idempotent: true });
  }

  async listRepoLabels(owner: string, repo: string): Promise<GiteaLabel[]> {
    return (await this.allPages<GiteaLabel>(path('repos', owner, repo, 'labels'), {})) ?? [];
  }

  async listOrgLabels(org: string): Promise<GiteaLabel[] | null> {
    return this.allPages<GiteaLabel>(path('orgs', org, 'labels'), {}, [404]);
  }

  async createRepoLabel(
    owner: string,
    repo: string,
    label: { name: string; color: string; description?: string; exclusive?: boolean },
  ): Promise<GiteaLabel> {
    const p = path('repos', owner, repo, 'labels');
    return (await this.send<GiteaLabel>({ method: 'POST', path: p, body: label, idempotent: false })).data;
  }

  async getFiles(
    owner: string,
    repo: string,
    paths: string[],
    ref?: string,
  ): Promise<({ path: string; content: string } | null)[]> {
    if (paths.length === 0) return [];
    for (const p of paths) filePath(p); // refuse `..` and friends before anything is sent
    const { parsed } = await this.loadVersion();
    // `GET …/file-contents` exists since Gitea 1.24 (the POST form needs a write token).
    if (parsed && versionAtLeast(parsed, 1, 24)) return this.getFilesBatched(owner, repo, paths, ref);
    return Promise.all(paths.map((p) => this.getFile(owner, repo, p, ref)));
  }

  async listIssueTemplates(owner: string, repo: string): Promise<GiteaIssueTemplate[]> {
    const p = path('repos', owner, repo, 'issue_templates');
    // Gitea encodes "no templates" as `null` (a nil Go slice).
    return listOf<GiteaIssueTemplate>((await this.send({ method: 'GET', path: p, idempotent: true })).data);
  }

  async listPullFiles(owner: string, repo: string, index: number): Promise<GiteaChangedFile[]> {
    const files = (await this.allPages<GiteaChangedFile>(path('repos', owner, repo, 'pulls', index, 'files'), {})) ?? [];
    if (!files.some((f) => f.status === 'renamed' && !f.previous_filename)) return files;
    // Before 1.22.3 services/convert ToChangedFile compared the status with "rename" (it is "renamed"), so a
    // rename never carries `previous_filename`; the pull request's diff names it (`rename from`).
    const { parsed } = await this.loadVersion();
    if (parsed && versionAtLeastPatch(parsed, 1, 22, 3)) return files;
    const p = `${path('repos', owner, repo, 'pulls')}/${integer(index, 'pull request index')}.diff`;
    const diff = (await this.send<unknown>({ method: 'GET', path: p, idempotent: true, text: true })).data;
    const renames = renamesFromDiff(typeof diff === 'string' ? diff : '');
    return files.map((f) => {
      const from = f.status === 'renamed' && !f.previous_filename ? renames.get(f.filename) : undefined;
      return from !== undefined ? { ...f, previous_filename: from } : f;
    });
  }

  async getPermission(owner: string, repo: string, user: string): Promise<GiteaPermission> {
    const p = path('repos', owner, repo, 'collaborators', user, 'permission');
    const res = await this.send<{ permission?: string }>({ method: 'GET', path: p, idempotent: true });
    const permission = res.data?.permission;
    if (permission !== 'none' && permission !== 'read' && permission !== 'write' && permission !== 'admin' && permission !== 'owner') {
      throw unexpected('GET', p, `permission ${JSON.stringify(permission)}`);
    }
    return permission;
  }

  async createComment(owner: string, repo: string, index: number, body: string): Promise<void> {
    const p = path('repos', owner, repo, 'issues', index, 'comments');
    await this.send({ method: 'POST', path: p, body: { body }, idempotent: false });
  }

  async listHooks(target: HookTarget): Promise<GiteaHook[]> {
    return (await this.allPages<GiteaHook>(hooksPath(target), {})) ?? [];
  }

  async createHook(target: HookTarget, hook: HookOptions): Promise<GiteaHook> {
    return (await this.send<GiteaHook>({ method: 'POST', path: hooksPath(target), body: hook, idempotent: false })).data;
  }

  /** Gitea's PATCH resets `events` (to `push`), `branch_filter` and `authorization_header` when omitted: send them. */
  async editHook(target: HookTarget, id: number, hook: Partial<HookOptions>): Promise<GiteaHook> {
    const p = `${hooksPath(target)}/${integer(id, 'hook id')}`;
    return (await this.send<GiteaHook>({ method: 'PATCH', path: p, body: hook, idempotent: true })).data;
  }

  async deleteHook(target: HookTarget, id: number): Promise<void> {
    const p = `${hooksPath(target)}/${integer(id, 'hook id')}`;
    await this.send({ method: 'DELETE', path: p, idempotent: true });
  }

  // ---------------------------------------------------------------------------------------------

  private loadVersion(): Promise<{ raw: string; parsed: GiteaVersion | null }> {
    if (!this.version) {
      const pending = this.send<{ version?: unknown }>({ method: 'GET', path: '/version', idempotent: true }).then((res) => {
        const raw = typeof res.data?.version === 'string' ? res.data.version : '';
        const parsed = parseGiteaVersion(raw);
        if (!parsed) this.log.warn('unrecognised Gitea version; assuming an API older than 1.24', { version: raw });
        return { raw, parsed };
      });
      this.version = pending;
      // A failed lookup is not cached: the next call asks again.
      pending.catch(() => {
        if (this.version === pending) this.version = undefined;
      });
    }
    return this.version;
  }

  private async getFilesBatched(
    owner: string,
    repo: string,
    paths: string[],
    ref: string | undefined,
  ): Promise<({ path: string; content: string } | null)[]> {
    const p = path('repos', owner, repo, 'file-contents');
    const found = new Map<string, { path: string; content: string } | null>();
    let pending = [...new Set(paths)];
    while (pending.length > 0) {
      const chunk = pending.slice(0, FILES_PER_REQUEST);
      const res = await this.send<unknown>({
        method: 'GET',
        path: p,
        query: { body: JSON.stringify({ files: chunk }), ref },
        idempotent: true,
        accept: [404],
      });
      if (res.status === 404) {
        // Repo or ref unknown (or a server without the endpoint): answer file by file, which maps 404 to null.
        for (const f of chunk) found.set(f, await this.getFile(owner, repo, f, ref));
        pending = pending.slice(chunk.length);
        continue;
      }
      if (!Array.isArray(res.data)) throw unexpected('GET', p, 'not a list');
      const entries = res.data as (GiteaContents | null)[];
      // Gitea stops early at `[api] DEFAULT_MAX_RESPONSE_SIZE`; a first file over that limit alone yields [].
      const answered = Math.min(entries.length, chunk.length);
      if (answered === 0) {
        const first = chunk[0] as string;
        found.set(first, await this.getFile(owner, repo, first, ref));
        pending = pending.slice(1);
        continue;
      }
      for (let i = 0; i < answered; i++) {
        const name = chunk[i] as string;
        const entry = entries[i] ?? null; // "Files which could not be retrieved are null."
        const decoded = decodeContents(name, entry);
        // A file too large to inline comes back with `content: null`: ask for it alone.
        found.set(name, decoded === 'too-large' ? await this.getFile(owner, repo, name, ref) : decoded);
      }
      pending = pending.slice(answered);
    }
    return paths.map((f) => found.get(f) ?? null);
  }

  private async getFile(owner: string, repo: string, file: string, ref: string | undefined): Promise<{ path: string; content: string } | null> {
    const p = `${path('repos', owner, repo, 'contents')}/${filePath(file)}`;
    const res = await this.send<unknown>({ method: 'GET', path: p, query: { ref }, idempotent: true, accept: [404] });
    if (res.status === 404) return null;
    if (Array.isArray(res.data)) return null; // a directory
    const decoded = decodeContents(file, res.data as GiteaContents);
    if (decoded === 'too-large') {
      this.log.warn('Gitea did not return the content of a file (too large?)', { path: file });
      return null;
    }
    return decoded;
  }

  private async allPages<T>(p: string, query: Record<string, string | undefined>, accept: number[] = []): Promise<T[] | null> {
    const out: T[] = [];
    for (let page = 1; page <= MAX_PAGES; page++) {
      const res = await this.send<unknown>({ method: 'GET', path: p, query: { ...query, page, limit: PAGE_LIMIT }, idempotent: true, accept });
      if (res.status !== 200 && accept.includes(res.status)) return null;
      const items = listOf<T>(res.data, () => unexpected('GET', p, 'not a list'));
      out.push(...items);
      if (!hasNextPage(res.headers, items.length, out.length, page)) return out;
    }
    throw unexpected('GET', p, `more than ${MAX_PAGES} pages`);
  }

  /**
   * One call with retries. Transient failures (no answer, 5xx, 429) are retried up to `retries` times
   * after a backoff, through the circuit breaker; anything else comes back or is thrown as `GiteaError`.
   */
  private async send<T>(call: Call): Promise<AxiosResponse<T>> {
    const { method } = call;
    const url = call.path + queryString(call.query);
    const maxAttempts = this.retries + 1;
    for (let attempt = 1; ; attempt++) {
      const admission = await this.circuit.acquire(Date.now() + this.circuitMaxWaitMs);
      if (admission === 'timeout') {
        throw new GiteaError({
          message: `${method} ${call.path}: Gitea unavailable (circuit open after ${this.circuit.health().consecutiveFailures} consecutive failures)`,
          method,
          path: call.path,
          transient: true,
        });
      }
      const probe = admission === 'probe';
      this.counters.requests++;
      if (attempt > 1) this.counters.retries++;
      const started = performance.now();
      let res: AxiosResponse<T>;
      try {
        res = await this.http.request<T>({ method, url, data: call.body, ...(call.text ? { responseType: 'text', headers: { Accept: 'text/plain' } } : {}) });
      } catch (err) {
        const durationMs = Math.round(performance.now() - started);
        if (!axios.isAxiosError(err) || err.response) {
          this.circuit.release(probe);
          throw err;
        }
        const oversize = this.sizeLimitError(call, err);
        if (oversize) {
          // Something answered, so this says nothing about Gitea's health; the same call would get the
          // same answer now: no retry here (the scheduler may re-run the evaluation later).
          this.circuit.release(probe);
          this.log.debug('gitea request', { method, path: call.path, durationMs, attempt, error: oversize.message });
          throw oversize;
        }
        this.circuit.failure(probe);
        const code = err.code ?? 'network error';
        this.log.debug('gitea request', { method, path: call.path, durationMs, attempt, error: code });
        const error = new GiteaError({
          message: `${method} ${call.path}: no answer from Gitea (${code})`,
          method,
          path: call.path,
          transient: true,
          code,
        });
        const retry = attempt < maxAttempts && (call.idempotent || NOT_SENT.has(code));
        if (!retry) throw error;
        await this.pause(call, attempt, error, undefined);
        continue;
      }
      const durationMs = Math.round(performance.now() - started);
      const { status } = res;
      this.log.debug('gitea request', { method, path: call.path, status, durationMs, attempt });
      if (status >= 500) this.circuit.failure(probe);
      else this.circuit.success(probe);
      if ((status >= 200 && status < 300) || call.accept?.includes(status)) return res;

      const transient = status === 429 || status >= 500;
      const error = new GiteaError({
        message: `${method} ${call.path} → ${status}${reason(res.data, this.token)}`,
        method,
        path: call.path,
        transient,
        status,
      });
      const retry = transient && attempt < maxAttempts && (call.idempotent || status === 429 || status === 503);
      if (!retry) throw error;
      await this.pause(call, attempt, error, retryAfterMs(res.headers['retry-after']));
    }
  }

  /**
   * A `GiteaError` naming the limit when axios refused a body over one of {@link GITEA_SIZE_LIMITS}.
   * An answer too large is transient (a proxy may recover); a request too large is this service's own.
   */
  private sizeLimitError(call: Call, err: { message: string }): GiteaError | undefined {
    const at = `${call.method} ${call.path}`;
    const error = (message: string, transient: boolean) =>
      new GiteaError({ message, method: call.method, path: call.path, transient, code: 'ERR_SIZE_LIMIT' });
    if (err.message.startsWith('maxContentLength size of')) {
      return error(`${at}: the answer is larger than the response size limit (${this.limits.responseBytes} bytes); is a proxy in front of Gitea misbehaving?`, true);
    }
    if (err.message.includes('maxBodyLength')) {
      return error(`${at}: the request body is larger than the request size limit (${this.limits.requestBytes} bytes)`, false);
    }
    return undefined;
  }

  private async pause(call: Call, attempt: number, error: GiteaError, retryAfter: number | undefined): Promise<void> {
    const backoff = Math.random() * Math.min(this.retryMaxMs, this.retryBaseMs * 2 ** (attempt - 1));
    const delayMs = Math.round(retryAfter !== undefined ? Math.min(this.retryMaxMs, retryAfter) : backoff);
    this.log.warn('gitea request failed; retrying', {
      method: call.method,
      path: call.path,
      status: error.status,
      attempt,
      delayMs,
      error: error.message,
    });
    await new Promise((resolve) => setTimeout(resolve, delayMs));
  }
}

function positiveLimit(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new Error(`GiteaClient: ${name} must be a positive integer, got ${value}`);
  return value;
}

/** `Retry-After` as milliseconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3). */
export function retryAfterMs(header: unknown, now: number = Date.now()): number | undefined {
  if (typeof header !== 'string' || header.trim() === '') return undefined;
  const text = header.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  // An HTTP date names its day and month (`Wed, 21 Oct 2015 07:28:00 GMT`); Date.parse alone accepts "-5".
  if (!/[a-z]{3}/i.test(text)) return undefined;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/** An API path from segments: each one encoded; `.`/`..`/empty refused (URL parsing would resolve them). */
function path(...segments: (string | number)[]): string {
  return '/' + segments.map((s) => (typeof s === 'number' ? String(integer(s, 'number')) : segment(s))).join('/');
}

function segment(s: string): string {
  if (s === '' || s === '.' || s === '..') {
    throw new GiteaError({ message: `refusing path segment ${JSON.stringify(s)}`, method: '-', path: '-', transient: false });
  }
  return encodeURIComponent(s);
}

/** A repository file path: `/`-separated, each part a safe segment. */
function filePath(file: string): string {
  return file.split('/').map(segment).join('/');
}

function integer(n: number, what: string): number {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new GiteaError({ message: `refusing ${what} ${String(n)}`, method: '-', path: '-', transient: false });
  }
  return n;
}

function hooksPath(target: HookTarget): string {
  if ('org' in target) return path('orgs', target.org, 'hooks');
  const parts = target.repo.split('/');
  if (parts.length !== 2) {
    throw new GiteaError({ message: `hook target must be "owner/repo", got ${JSON.stringify(target.repo)}`, method: '-', path: '-', transient: false });
  }
  return path('repos', parts[0] as string, parts[1] as string, 'hooks');
}

function queryString(query: Call['query']): string {
  if (!query) return '';
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') params.set(k, String(v));
  const text = params.toString();
  return text ? `?${text}` : '';
}

function listOf<T>(data: unknown, onInvalid?: () => Error): T[] {
  if (Array.isArray(data)) return data as T[];
  if (data === null || data === '' || data === undefined) return [];
  if (onInvalid) throw onInvalid();
  return [];
}

function unexpected(method: string, p: string, what: string): GiteaError {
  return new GiteaError({ message: `${method} ${p}: unexpected answer from Gitea (${what})`, method, path: p, transient: false });
}

/** Gitea's error body is `{"message": "...", "url": "..."}`: keep the message, short, never the token. */
function reason(data: unknown, token: string): string {
  const message = typeof data === 'object' && data !== null && 'message' in data ? (data as { message: unknown }).message : undefined;
  if (typeof message !== 'string' || message.trim() === '') return '';
  // Redact before shortening: a cut through the token would leave its prefix unmatched.
  let text = message.trim();
  if (token.length >= 4) text = text.split(token).join('[redacted]');
  text = text.replace(/\s+/g, ' ').slice(0, 200);
  return `: ${text}`;
}

/** Base64 content → UTF-8; `null` for missing files and non-files; 'too-large' when Gitea left content out. */
function decodeContents(file: string, entry: GiteaContents | null): { path: string; content: string } | null | 'too-large' {
  if (!entry || typeof entry !== 'object') return null;
  if (entry.type !== 'file') return null;
  if (entry.content === null || entry.content === undefined) return entry.size > 0 ? 'too-large' : { path: file, content: '' };
  const content = entry.encoding === 'base64' ? Buffer.from(entry.content, 'base64').toString('utf8') : entry.content;
  return { path: file, content };
}

/**
 * Whether a list has another page. Some lists are filtered AFTER paging (routers/api/v1/user/repo.go
 * listUserRepos drops the repositories the caller cannot see from each page), so a short or even empty
 * page is not the end: follow Gitea's `Link: <…>; rel="next"` (services/context/api.go genAPILinks) when
 * it is sent; else trust `X-Total-Count` (which counts the unfiltered list) — collected items reaching it,
 * or the pages asked for covering it; else a short page is the last. An instance whose
 * MAX_RESPONSE_ITEMS is below 50 serves shorter pages: `Link` and the collected count still hold there.
 */
export function hasNextPage(headers: Record<string, unknown>, pageItems: number, collected: number, page: number): boolean {
  const link = headers['link'];
  if (typeof link === 'string' && link !== '') return /;\s*rel="?next"?/.test(link);
  const totalText = headers['x-total-count'];
  const total = Number(totalText);
  if (totalText !== undefined && Number.isFinite(total)) {
    if (collected >= total) return false;
    return pageItems > 0 || page * PAGE_LIMIT < total;
  }
  return pageItems >= PAGE_LIMIT;
}
