import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { silentLogger } from '../../../src/log/logger.js';
import { SqliteStore } from '../../../src/store/sqlite/store.js';
import { pidAlive } from '../../../src/service/cluster.js';
import { storeConformance } from '../../store/conformance.js';
import { spawnTs } from '../../helpers/process.js';
import { waitFor } from '../../helpers/wait.js';

const dirs: string[] = [];

/**
 * Both handles are one store: two SQLite connections in one thread would wait on each other's
 * write lock while blocking the event loop that releases it. Several processes on one DATA_DIR
 * (the service and a tool) are covered by the journal's own tests (tests/unit/journal).
 */
storeConformance('sqlite', {
  async open() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-store-'));
    dirs.push(dir);
    const store = SqliteStore.open({ dataDir: dir, sync: 'full', log: silentLogger() });
    return { a: store, b: store };
  },
  async cleanup() {
    for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  },
});

describe('sqlite store: leases across processes on one DATA_DIR', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-store-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function child(mode: 'acquire' | 'write', subject: string, arg: number): Promise<Record<string, unknown>> {
    const run = spawnTs('tests/unit/store/lease-child.ts', {}, [mode, dir, subject, String(arg)]);
    const exit = await run.exited;
    expect({ exit, stderr: run.stderr() }).toEqual({ exit: { code: 0, signal: null }, stderr: '' });
    return run.lines[0]!;
  }

  it('serialises a tool and the service: one holder at a time, a stale token refused', async () => {
    const subject = 'acme/widgets#5';
    const tool = await child('acquire', subject, 400);
    expect(tool).toMatchObject({ msg: 'acquired', token: 1 });
    const service = SqliteStore.open({ dataDir: dir, sync: 'full', log: silentLogger() });
    try {
      expect(await service.leases.acquire(subject, 'service', 30_000)).toBeUndefined();
      const lease = await waitFor(() => service.leases.acquire(subject, 'service', 30_000), { what: "the tool's lease to expire" });
      expect(lease.token).toBe(2);
      // The tool, stalled past its expiry, writes with its old token: refused, nothing written.
      expect(await child('write', subject, 1)).toMatchObject({ msg: 'refused' });
      expect(await service.ownership.known('acme/widgets', 5)).toBeUndefined();
      // And cannot take the subject while the service holds it.
      expect(await child('acquire', subject, 400)).toEqual({ msg: 'busy' });
      expect(await child('write', subject, lease.token)).toEqual({ msg: 'written' });
    } finally {
      await service.close();
    }
  });
});

describe('sqlite store: its own tables', () => {
  it('migrates once: reopening the same DATA_DIR applies nothing and keeps leases and generations', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-store-'));
    try {
      const first = SqliteStore.open({ dataDir: dir, sync: 'full', log: silentLogger() });
      await first.generations.bump('acme/widgets');
      const lease = await first.leases.acquire('acme/widgets#1', 'a', 60_000);
      await first.close();
      const again = SqliteStore.open({ dataDir: dir, sync: 'full', log: silentLogger() });
      try {
        expect(again.journal.db.prepare('SELECT version FROM store_migrations').all()).toEqual([{ version: 1 }]);
        expect(await again.generations.get('acme/widgets')).toBe(1);
        expect(await again.leases.current('acme/widgets#1')).toMatchObject({ holder: 'a', token: lease!.token });
      } finally {
        await again.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('sqlite store: leases of processes that are gone', () => {
  it('releases the live leases of a dead process of this host, and keeps those of running ones and other hosts', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-store-'));
    const store = SqliteStore.open({ dataDir: dir, sync: 'normal', log: silentLogger() });
    try {
      // A pid that ran and exited: nothing runs with it now (barring reuse within this test).
      const deadPid = spawnSync(process.execPath, ['-e', '']).pid;
      const host = os.hostname();
      await store.leases.acquire('acme/widgets#1', `${host}:${deadPid}:aaaa`, 60_000);
      await store.leases.acquire('acme/widgets#2', `${host}:${process.pid}:bbbb`, 60_000);
      await store.leases.acquire('acme/widgets#3', `elsewhere:${deadPid}:cccc`, 60_000);
      await store.leases.acquire('acme/widgets#4', 'a-tool-holder', 60_000);

      expect(pidAlive(deadPid)).toBe(false);
      expect(await store.leases.releaseDeadHolders(host, pidAlive)).toBe(1);
      expect(await store.leases.current('acme/widgets#1')).toBeUndefined();
      for (const kept of ['acme/widgets#2', 'acme/widgets#3', 'acme/widgets#4']) expect(await store.leases.current(kept)).toBeDefined();
      // The next grant of the released subject has the next token: the dead holder's is stale.
      expect((await store.leases.acquire('acme/widgets#1', 'someone', 1_000))?.token).toBe(2);
    } finally {
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
