/**
 * `npm run replay -- …` (see `--help`). Logic: src/ops/replay-cli.ts and the modules it uses.
 */
import { replayMain } from '../src/ops/replay-cli.js';

process.exitCode = await replayMain(process.argv.slice(2), process.env, { stdout: process.stdout, stderr: process.stderr });
