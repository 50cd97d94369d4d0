/** The child side of {@link SimProcess}: a SimGitea seeded and counted on request of the parent. */
import { SimGitea } from '../../src/simgitea/sim.js';
import type { SimProcessOptions, SimReply, SimRequest } from './sim-process.js';
import { seedWorld } from './world.js';

const options = JSON.parse(process.argv[2] ?? '{}') as SimProcessOptions;
const sim = await SimGitea.start({ latencyMs: options.latencyMs, jitterMs: options.jitterMs, seed: options.seed });
const send = (m: SimReply) => process.send!(m);

process.on('message', (m: SimRequest) => {
  void (async () => {
    try {
      switch (m.op) {
        case 'seed': {
          const world = seedWorld(sim, m.repos, m.issuesPerRepo);
          send({ id: m.id, ok: true, value: { repos: world.repos, issues: world.issues } });
          break;
        }
        case 'stats':
          send({ id: m.id, ok: true, value: sim.stats() });
          break;
        case 'reset':
          sim.resetStats();
          send({ id: m.id, ok: true });
          break;
        case 'close':
          await sim.close();
          send({ id: m.id, ok: true });
          process.disconnect();
          break;
      }
    } catch (error) {
      send({ id: m.id, ok: false, error: error instanceof Error ? error.message : String(error) });
    }
  })();
});
// The parent gone (killed, crashed): do not linger as an orphan holding a port.
process.on('disconnect', () => void sim.close().finally(() => process.exit(0)));
send({ op: 'ready', url: sim.url, token: sim.token, botLogin: sim.botLogin });
