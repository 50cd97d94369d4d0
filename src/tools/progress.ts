import cliProgress from 'cli-progress';

/** Progress of a long run: a bar on a terminal, plain lines otherwise (logs, CI, pipes). */
export interface Progress {
  update(done: number, total: number): void;
  stop(): void;
}

/**
 * On a TTY, a cli-progress bar redrawn in place; otherwise one line per tenth of the work
 * (`<label>: 50/500 (10%)`), so a log file gets a few lines, not one per item.
 */
export function createProgress(options: { label: string; stream: NodeJS.WritableStream & { isTTY?: boolean } }): Progress {
  const { label, stream } = options;
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      { format: `${label} [{bar}] {percentage}% | {value}/{total} | ETA {eta_formatted}`, stream, hideCursor: true, clearOnComplete: false },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    return {
      update(done, total) {
        if (!started) {
          bar.start(total, 0);
          started = true;
        }
        bar.setTotal(total);
        bar.update(done);
      },
      stop() {
        if (started) bar.stop();
        started = false;
      },
    };
  }
  let lastStep = -1;
  return {
    update(done, total) {
      const step = total === 0 ? 10 : Math.floor((done * 10) / total);
      if (step === lastStep) return;
      lastStep = step;
      stream.write(`${label}: ${done}/${total} (${total === 0 ? 100 : Math.floor((done * 100) / total)}%)\n`);
    },
    stop() {},
  };
}
