/**
 * The child side of {@link GiteaProcess} (tests/helpers/gitea-process.ts): the simulated Gitea with the
 * reliability tests' world (tests/helpers/reliability/world.ts), and one recording gate per replica
 * (tests/helpers/reliability/gate.ts), each on its own port, so every Gitea request is attributed to
 * the replica whose GITEA_URL is that port.
 */
import { SimGitea } from '../../src/simgitea/sim.js';
import type { GiteaReply, GiteaRequest, GiteaTraffic } from './gitea-process.js';
import { startGate, type Gate } from './reliability/gate.js';
import { BOT, ORG, REPO, seedItems, seedRepo, TOKEN } from './reliability/world.js';

const options = JSON.parse(process.argv[2] ?? '{}') as { latencyMs?: number; jitterMs?: number; seed?: number };
const sim = await SimGitea.start({ token: TOKEN, botLogin: BOT, latencyMs: options.latencyMs ?? 0, jitterMs: options.jitterMs ?? 0, seed: options.seed });
const gates = new Map<string, Gate>();
let seeded = false;
const send = (m: GiteaReply) => process.send!(m);

function traffic(name: string, gate: Gate): GiteaTraffic {
  return { replica: name, requests: gate.timeline, labelWrites: gate.labelWrites };
}

async function handle(m: GiteaRequest): Promise<unknown> {
  switch (m.op) {
    case 'seed':
      if (!seeded) seedRepo(sim);
      seeded = true;
      return seedItems(sim, m.items);
    case 'attach': {
      if (gates.has(m.name)) throw new Error(`a gate named ${m.name} exists already`);
      const gate = await startGate(sim);
      gates.set(m.name, gate);
      return gate.url;
    }
    case 'traffic':
      return [...gates].map(([name, gate]) => traffic(name, gate));
    case 'labels':
      return Object.fromEntries(m.numbers.map((n) => [n, sim.issueLabels(ORG, REPO, n)]));
    case 'setFile':
      sim.setFile(ORG, REPO, m.path, m.content);
      return undefined;
    case 'faults':
      sim.setFaults(m.faults);
      return undefined;
    case 'stats':
      return sim.stats();
    case 'close':
      await Promise.all([...gates.values()].map((g) => g.close()));
      await sim.close();
      return undefined;
  }
}

process.on('message', (m: GiteaRequest) => {
  handle(m).then(
    (value) => {
      send({ id: m.id, ok: true, value });
      if (m.op === 'close') process.disconnect();
    },
    (error: unknown) => send({ id: m.id, ok: false, error: error instanceof Error ? error.message : String(error) }),
  );
});
// The parent gone (killed, crashed): do not linger as an orphan holding ports.
process.on('disconnect', () => void sim.close().finally(() => process.exit(0)));
send({ op: 'ready', url: sim.url });
