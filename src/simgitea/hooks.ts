import { goTime, type SimHook } from './model.js';
import { HttpError, paged, type Reply, type RequestContext, type Router } from './router.js';
import { hookJson } from './shapes.js';
import { isAdmin, type SimState } from './state.js';
import { expandHookEvents } from './webhooks.js';

const HOOK_TYPES = new Set(['dingtalk', 'discord', 'gitea', 'gogs', 'msteams', 'slack', 'telegram', 'feishu', 'matrix', 'wechatwork', 'packagist']);

type Kind = 'repo' | 'org';

/** Repository and organisation webhooks (routers/api/v1/repo/hook.go, routers/api/v1/org/hook.go, routers/api/v1/utils/hook.go). */
export function registerHookRoutes(router: Router, state: SimState): void {
  for (const kind of ['repo', 'org'] as const) {
    const base = kind === 'repo' ? '/repos/{owner}/{repo}/hooks' : '/orgs/{org}/hooks';
    router.add('GET', base, (c) => {
      const owner = hookOwner(state, c, kind);
      const list = [...state.hooks.values()].filter((h) => (kind === 'repo' ? h.repoId === owner.id : h.orgId === owner.id));
      return paged(list.map(hookJson), c.query, true);
    });
    router.add('POST', base, (c) => createHook(state, c, kind));
    router.add('GET', `${base}/{id}`, (c) => ({ status: 200, body: hookJson(hookOf(state, c, kind)) }));
    router.add('PATCH', `${base}/{id}`, (c) => editHook(state, c, kind));
    router.add('DELETE', `${base}/{id}`, (c) => {
      const hook = hookOf(state, c, kind);
      state.hooks.delete(hook.id);
      return { status: 204 };
    });
  }
}

function hookOwner(state: SimState, c: RequestContext, kind: Kind): { id: number } {
  if (kind === 'repo') {
    const repo = state.repoOf(c);
    if (!isAdmin(state.levelOf(repo, c.doer))) throw new HttpError(403, 'repository admin access is required');
    return repo;
  }
  const org = state.orgOf(c);
  if (!state.ownsOrg(c.doer)) throw new HttpError(403, 'Must be an organization owner');
  return org;
}

function hookOf(state: SimState, c: RequestContext, kind: Kind): SimHook {
  const owner = hookOwner(state, c, kind);
  const text = c.params.id ?? '';
  const hook = /^\d+$/.test(text) ? state.hooks.get(Number(text)) : undefined;
  if (!hook || (kind === 'repo' ? hook.repoId !== owner.id : hook.orgId !== owner.id)) throw new HttpError(404, 'webhook does not exist');
  return hook;
}

type HookForm = {
  type?: unknown;
  config?: Record<string, unknown>;
  events?: unknown;
  branch_filter?: unknown;
  authorization_header?: unknown;
  active?: unknown;
};

function createHook(state: SimState, c: RequestContext, kind: Kind): Reply {
  const owner = hookOwner(state, c, kind);
  const form = (c.body ?? {}) as HookForm;
  const type = typeof form.type === 'string' ? form.type : '';
  if (!HOOK_TYPES.has(type)) throw new HttpError(422, `Invalid hook type: ${type}`);
  const config = form.config ?? {};
  for (const name of ['url', 'content_type']) {
    if (typeof config[name] !== 'string') throw new HttpError(422, `Missing config option: ${name}`);
  }
  const contentType = config.content_type;
  if (contentType !== 'json' && contentType !== 'form') throw new HttpError(422, 'Invalid content type');
  const events = Array.isArray(form.events) && form.events.length > 0 ? form.events.map(String) : ['push'];
  const now = goTime(state.now());
  const hook: SimHook = {
    id: ++state.ids.hook,
    ...(kind === 'repo' ? { repoId: owner.id } : { orgId: owner.id }),
    type,
    url: String(config.url),
    contentType,
    secret: typeof config.secret === 'string' ? config.secret : '',
    events: expandHookEvents(events),
    branchFilter: typeof form.branch_filter === 'string' ? form.branch_filter : '',
    authorizationHeader: typeof form.authorization_header === 'string' ? form.authorization_header : '',
    // CreateHookOption.active defaults to false.
    active: form.active === true,
    // addHook always stores POST; only the web UI can choose GET (and the API never shows the method).
    httpMethod: 'POST',
    created: now,
    updated: now,
  };
  state.hooks.set(hook.id, hook);
  return { status: 201, body: hookJson(hook) };
}

/**
 * routers/api/v1/utils/hook.go editHook: `config.url` and `config.content_type` are applied, `config.secret`
 * is IGNORED (editHook never reads it, v1.21.11 … v1.25.4: a secret is set only at creation or in the web
 * UI); `events` is reset to `push`, `branch_filter` and `authorization_header` to empty when omitted;
 * `active` only when given.
 */
function editHook(state: SimState, c: RequestContext, kind: Kind): Reply {
  const hook = hookOf(state, c, kind);
  const form = (c.body ?? {}) as HookForm;
  if (form.config) {
    if (typeof form.config.url === 'string') hook.url = form.config.url;
    if (form.config.content_type !== undefined) {
      const ct = form.config.content_type;
      if (ct !== 'json' && ct !== 'form') throw new HttpError(422, 'Invalid content type');
      hook.contentType = ct;
    }
  }
  const events = Array.isArray(form.events) && form.events.length > 0 ? form.events.map(String) : ['push'];
  hook.events = expandHookEvents(events);
  hook.branchFilter = typeof form.branch_filter === 'string' ? form.branch_filter : '';
  hook.authorizationHeader = typeof form.authorization_header === 'string' ? form.authorization_header : '';
  if (typeof form.active === 'boolean') hook.active = form.active;
  hook.updated = goTime(state.now());
  return { status: 200, body: hookJson(hook) };
}
