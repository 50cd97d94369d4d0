import { fork, type ForkOptions } from 'node:child_process';

/** A request as the parent writes it: `call` adds the id. */
export type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

/** The replies a simulated Gitea child sends: its `ready` message once, then one answer per request id. */
export type ChildReply<Ready> = (Ready & { op: 'ready' }) | { id: number; ok: true; value?: unknown } | { id: number; ok: false; error: string };

/**
 * The parent's end of a simulated Gitea running in a child process (the benchmark's sim-child, the
 * replica tests' gitea-child): forks it, waits for its `ready` message, then sends requests over the
 * IPC channel, each answered by a reply with the same id. A child that exits fails what is waiting.
 */
export class ChildRpc<Request extends { id: number; op: string }, Ready extends object> {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  private exited: Error | undefined;

  private constructor(
    private readonly child: ReturnType<typeof fork>,
    readonly ready: Ready,
  ) {
    child.on('message', (m: ChildReply<Ready>) => {
      if (!('id' in m)) return;
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (m.ok) w?.resolve(m.value);
      else w?.reject(new Error(`simulated Gitea: ${m.error}`));
    });
    child.on('exit', (code, signal) => {
      this.exited = new Error(`simulated Gitea exited (${signal ?? `code ${code}`})`);
      for (const w of this.waiting.values()) w.reject(this.exited);
      this.waiting.clear();
    });
  }

  /** Forks `entry` with `options` as its JSON argument and waits for its server to listen. */
  static async start<Request extends { id: number; op: string }, Ready extends object>(
    entry: string,
    options: unknown,
    forkOptions: ForkOptions = {},
  ): Promise<ChildRpc<Request, Ready>> {
    const child = fork(entry, [JSON.stringify(options)], { ...forkOptions, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const ready = await new Promise<Ready>((resolve, reject) => {
      child.once('message', (m: ChildReply<Ready>) => ('op' in m && m.op === 'ready' ? resolve(m) : reject(new Error('simulated Gitea: unexpected first message'))));
      child.once('exit', (code, signal) => reject(new Error(`simulated Gitea exited before listening (${signal ?? `code ${code}`})`)));
    });
    return new ChildRpc<Request, Ready>(child, ready);
  }

  call(request: WithoutId<Request>): Promise<unknown> {
    if (this.exited) return Promise.reject(this.exited);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.child.send({ ...request, id });
    });
  }

  /** Asks the child to close (`op: 'close'`) and waits for it to exit. */
  async close(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    await this.call({ op: 'close' } as WithoutId<Request>).catch(() => undefined);
    await gone;
  }
}
