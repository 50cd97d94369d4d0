import type { GiteaApi } from '../gitea/api.js';
import { GiteaError } from '../gitea/errors.js';
import type { GiteaPermission } from '../gitea/types.js';
import type { Logger } from '../log/logger.js';

const RANK: Record<GiteaPermission, number> = { none: 0, read: 1, write: 2, admin: 3, owner: 4 };
const MIN_RANK = { read: 1, write: 2, admin: 3 } as const;
/** Past this many cached entries, expired ones are dropped (the cache is per repo and user: bounded by who comments). */
const SWEEP_AT = 10_000;

export type PermissionVerdict = { ok: true } | { ok: false; reason: string };

/** Whether a commenter may run `/label` commands: Gitea's permission of the user on the repo, cached for a while. */
export class PermissionCache {
  private readonly entries = new Map<string, { permission: GiteaPermission; at: number }>();

  constructor(
    private readonly gitea: GiteaApi,
    private readonly ttlMs: number,
    private readonly now: () => number,
  ) {}

  async check(owner: string, repo: string, user: string, min: 'read' | 'write' | 'admin', log: Logger): Promise<PermissionVerdict> {
    const key = `${owner}/${repo}|${user}`.toLowerCase();
    const cached = this.entries.get(key);
    let permission: GiteaPermission;
    if (cached && this.now() - cached.at < this.ttlMs) {
      permission = cached.permission;
    } else {
      const asked = await this.ask(owner, repo, user, log);
      if (typeof asked !== 'string') return asked;
      permission = asked;
      if (this.entries.size >= SWEEP_AT) this.sweep();
      this.entries.set(key, { permission, at: this.now() });
    }
    if ((RANK[permission] ?? 0) >= MIN_RANK[min]) return { ok: true };
    return { ok: false, reason: `it needs ${min} permission on this repository (${user} has ${permission})` };
  }

  /** Gitea's answer, `none` for a user it does not know, or a refusal when the bot may not ask. */
  private async ask(owner: string, repo: string, user: string, log: Logger): Promise<GiteaPermission | PermissionVerdict> {
    try {
      return await this.gitea.getPermission(owner, repo, user);
    } catch (error) {
      if (error instanceof GiteaError && error.status === 403) {
        // Gitea answers another user's permission only to a site or repo admin (routers/api/v1/repo/
        // collaborators.go, `GetRepoPermissions`, v1.22.2: "repo admins can query all repo permissions").
        log.warn('commands need the bot to be a repo admin', { repo: `${owner}/${repo}`, user, error: error.message });
        return { ok: false, reason: 'the bot cannot check permissions here (it needs admin on the repository)' };
      }
      if (error instanceof GiteaError && error.status === 404) return 'none';
      throw error;
    }
  }

  private sweep(): void {
    const now = this.now();
    for (const [key, entry] of this.entries) if (now - entry.at >= this.ttlMs) this.entries.delete(key);
  }
}
