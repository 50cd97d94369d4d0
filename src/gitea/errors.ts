/**
 * What a failed Gitea call looks like to the rest of the service: one error type, typed by who acts on it.
 *
 * - `transient: true` — Gitea was unreachable, timed out, answered 5xx or 429. The client has already
 *   retried; the scheduler may re-run the whole evaluation later.
 * - `transient: false` — Gitea answered and refused (4xx other than 429), or the call was refused before
 *   it was sent (a path segment that would leave the API). Retrying the same call will not help.
 *
 * The message names the method, the path and the status, never the token or the query string.
 */
export class GiteaError extends Error {
  /** HTTP status Gitea answered with; `undefined` when no answer arrived (network error, timeout). */
  readonly status?: number;
  readonly method: string;
  /** API path relative to `/api/v1`, without the query string. */
  readonly path: string;
  readonly transient: boolean;
  /** Node's error code for network failures (`ECONNREFUSED`, `ECONNRESET`, `ETIMEDOUT`, …). */
  readonly code?: string;

  constructor(init: {
    message: string;
    method: string;
    path: string;
    transient: boolean;
    status?: number;
    code?: string;
  }) {
    super(init.message);
    this.name = 'GiteaError';
    this.method = init.method;
    this.path = init.path;
    this.transient = init.transient;
    if (init.status !== undefined) this.status = init.status;
    if (init.code !== undefined) this.code = init.code;
  }
}

/** True for `GiteaError`s with the given status (e.g. `isGiteaStatus(err, 404)`). */
export function isGiteaStatus(err: unknown, status: number): err is GiteaError {
  return err instanceof GiteaError && err.status === status;
}
