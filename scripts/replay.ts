/**
 * `npm run replay -- …` (see `--help`). Logic: src/tools/replay-cli.ts and the modules it uses.
 */
import { replayMain } from '../src/tools/replay-cli.js';

process.exitCode = await replayMain(process.argv.slice(2), process.env, { stdout: process.stdout, stderr: process.stderr });
