import { setTimeout as sleep } from 'node:timers/promises';
import type { GiteaApi } from '../gitea/api.js';
import type { Logger } from '../log/logger.js';
import { errorText } from '../errors.js';

/** Backoff between `GET /user` attempts at start: the client already retried transient errors inside. */
export const IDENTITY_BACKOFF = { firstMs: 1000, maxMs: 30_000 };

/**
 * The bot's identity (`GET /user`), asked once for the whole service: its own events are recorded,
 * never evaluated (no label loops), and `/readyz` waits for it. Asked again with a growing backoff
 * until Gitea answers or the service stops.
 */
export class BotIdentity {
  private known: string | undefined;
  private failedOnce = false;
  private readonly identified: Promise<string>;
  private resolve!: (login: string) => void;
  private reject!: (error: Error) => void;

  constructor(
    private readonly gitea: GiteaApi,
    private readonly log: Logger,
    private readonly backoff: { firstMs: number; maxMs: number } = IDENTITY_BACKOFF,
  ) {
    this.identified = new Promise<string>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    this.identified.catch(() => undefined); // nobody has to wait for it
  }

  /** The bot's login once Gitea told it. */
  login(): string | undefined {
    return this.known;
  }

  /** True once an attempt failed (`/readyz` then says Gitea is unreachable). */
  failed(): boolean {
    return this.failedOnce;
  }

  /** Resolves with the login once known; rejects if the service stops first. */
  whenKnown(): Promise<string> {
    return this.identified;
  }

  /** Asks until Gitea answers or `signal` aborts (the service stops). */
  async ask(signal: AbortSignal): Promise<void> {
    let waitMs = this.backoff.firstMs;
    for (let attempt = 1; !signal.aborted; attempt++) {
      try {
        const [user, version] = await Promise.all([
          this.gitea.getCurrentUser(),
          this.gitea.getVersion().catch((error: unknown) => {
            this.log.warn('gitea version unavailable', { error: errorText(error) });
            return undefined;
          }),
        ]);
        this.known = user.login;
        this.log.info('gitea identity', { login: user.login, version });
        this.resolve(user.login);
        return;
      } catch (error) {
        this.failedOnce = true;
        const retryInMs = Math.round(waitMs * (0.5 + Math.random() / 2));
        // A rejected token needs the operator; anything else is Gitea being away.
        const status = (error as { status?: unknown }).status;
        const level = status === 401 || status === 403 ? 'error' : 'warn';
        this.log.log(level, 'gitea identity unavailable', { attempt, retryInMs, status, error: errorText(error) });
        try {
          await sleep(retryInMs, undefined, { signal });
        } catch {
          break; // stopping
        }
        waitMs = Math.min(waitMs * 2, this.backoff.maxMs);
      }
    }
    this.reject(new Error('service stopped before the bot identity was known'));
  }
}
