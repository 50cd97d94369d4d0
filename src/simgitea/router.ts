import type { SimUser } from './model.js';

/**
 * The simulated Gitea's routing: a route table matched like Gitea's chi router under `/api/v1`, the reply
 * shape handlers return, and the paging helpers every list endpoint shares.
 */
export interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface RequestContext {
  params: Record<string, string>;
  query: URLSearchParams;
  body: unknown;
  doer: SimUser;
  /** The raw request body (for endpoints that are not JSON). */
  raw?: Buffer;
}

export type Handler = (c: RequestContext) => Reply;

export interface Route {
  method: string;
  pattern: string;
  segments: string[];
  /** Handled without a token (Gitea serves `/version` anonymously). */
  anonymous?: boolean;
  /** Only from this Gitea version on. */
  since?: [number, number];
  handler: Handler;
}

export interface RouteMatch {
  route: Route;
  params: Record<string, string>;
}

/** An error answer (`{"message": …}`) thrown from a handler. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export class Router {
  private readonly routes: Route[] = [];

  add(method: string, pattern: string, handler: Handler, extra: { anonymous?: boolean; since?: [number, number] } = {}): void {
    this.routes.push({ method, pattern, segments: pattern.slice(1).split('/'), handler, ...extra });
  }

  match(method: string, pathname: string): RouteMatch | null {
    if (!pathname.startsWith('/api/v1/')) return null;
    let parts: string[];
    try {
      parts = pathname
        .slice('/api/v1/'.length)
        .split('/')
        .map((s) => decodeURIComponent(s));
    } catch {
      return null;
    }
    if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
    for (const route of this.routes) {
      if (route.method !== method) continue;
      const params = matchSegments(route.segments, parts);
      if (params) return { route, params };
    }
    return null;
  }
}

function matchSegments(segments: string[], parts: string[]): Record<string, string> | null {
  const params: Record<string, string> = {};
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i] as string;
    if (seg.endsWith('*}')) {
      // Greedy tail (a file path): every remaining segment, none empty.
      const rest = parts.slice(i);
      if (rest.length === 0 || rest.some((p) => p === '')) return null;
      params[seg.slice(1, -2)] = rest.join('/');
      return params;
    }
    const part = parts[i];
    if (part === undefined) return null;
    if (seg.startsWith('{')) params[seg.slice(1, -1)] = part;
    else if (seg !== part) return null;
  }
  return parts.length === segments.length ? params : null;
}

export function listOptions(query: URLSearchParams): { page: number; limit: number } {
  const page = Number.parseInt(query.get('page') ?? '', 10);
  const limit = Number.parseInt(query.get('limit') ?? '', 10);
  return {
    page: Number.isFinite(page) && page > 0 ? page : 0,
    // convert.ToCorrectPageSize: ≤ 0 → DEFAULT_PAGING_NUM (30); above MAX_RESPONSE_ITEMS (50) → 50.
    limit: !Number.isFinite(limit) || limit <= 0 ? 30 : Math.min(limit, 50),
  };
}

/** One page of `items` with `X-Total-Count`; `allWithoutPage`: no `page` parameter answers every item. */
export function paged(items: unknown[], query: URLSearchParams, allWithoutPage: boolean): Reply {
  const { page, limit } = listOptions(query);
  const headers = { 'X-Total-Count': String(items.length) };
  // Labels and hooks (GetLabelsByRepoID, ListWebhooksByOpts): no `page` means every item; lists like issues: page 1.
  if (page === 0 && allWithoutPage) return { status: 200, body: items, headers };
  const p = Math.max(page, 1);
  return { status: 200, body: items.slice((p - 1) * limit, p * limit), headers };
}
