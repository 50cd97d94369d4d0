import winston from 'winston';

/**
 * Structured logging: winston, one JSON object per line on stdout (docs/architecture.md, "Structured logs").
 * Every line of a delivery's life carries the same fields, so `grep <delivery-id>` tells its story.
 */
export type Logger = winston.Logger;

/**
 * The fields docs/architecture.md names ("Structured logs"); child loggers bind some of them for a
 * whole delivery or batch.
 */
export interface LogFields {
  delivery?: string;
  event?: string;
  action?: string;
  repo?: string;
  number?: number;
  batch?: string;
  attempt?: number;
  durationMs?: number;
  added?: string[];
  removed?: string[];
  error?: string;
  [key: string]: unknown;
}

/** The service's logger: JSON lines (or `pretty` ones) at `level`. */
export interface ServiceLoggerOptions {
  level: 'error' | 'warn' | 'info' | 'debug';
  format: 'json' | 'pretty';
  /** Where lines go; stdout by default. Tests pass a LogCapture's stream (tests/helpers/log-capture.ts). */
  stream?: NodeJS.WritableStream;
  /** Strings that must never appear in a line (token, secrets): replaced by `[redacted]`. */
  redact?: readonly string[];
  /** Write nothing (code paths that need a logger, tests that do not look). */
  silent?: boolean;
}

/**
 * An operator tool's logger: a tool's output is its report and a failure is one line, so the
 * service's log lines (Gitea requests and retries, evaluations) are shown only with `--verbose`, every
 * level, in the short human form on `stream` (the tool's stderr).
 */
export interface ToolLoggerOptions {
  tool: { verbose: boolean };
  stream: NodeJS.WritableStream;
  redact?: readonly string[];
}

export type LoggerOptions = ServiceLoggerOptions | ToolLoggerOptions;

/** Renames winston's `message`/`timestamp` to `msg`/`time` (docs/architecture.md, "Structured logs") and masks secrets. */
const shape = (redact: string[]) =>
  winston.format((info) => {
    const out = info as Record<string | symbol, unknown>;
    out.time = new Date().toISOString();
    out.msg = out.message;
    delete out.message;
    if (out.error instanceof Error) out.error = out.error.message;
    if (redact.length > 0) {
      for (const key of Object.keys(out)) {
        const v = out[key];
        if (typeof v === 'string') out[key] = mask(v, redact);
      }
    }
    return info;
  })();

function mask(text: string, redact: string[]): string {
  let result = text;
  for (const secret of redact) {
    if (secret.length >= 4 && result.includes(secret)) result = result.split(secret).join('[redacted]');
  }
  return result;
}

const pretty = winston.format.printf((info) => {
  const { level, msg, time, ...rest } = info as Record<string, unknown>;
  const fields = Object.entries(rest)
    .filter(([k]) => typeof k === 'string')
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  return `${String(time).slice(11, 23)} ${String(level).padEnd(5)} ${String(msg)}${fields ? '  ' + fields : ''}`;
});

/** The one logger factory, for the service, the tools and the tests. */
export function createLogger(options: LoggerOptions): Logger {
  const service: ServiceLoggerOptions =
    'tool' in options
      ? { level: 'debug', format: 'pretty', stream: options.stream, silent: !options.tool.verbose, ...(options.redact ? { redact: options.redact } : {}) }
      : options;
  const redact = (service.redact ?? []).filter((s) => s.length > 0);
  return winston.createLogger({
    level: service.level,
    silent: service.silent === true,
    format: winston.format.combine(shape(redact), service.format === 'pretty' ? pretty : winston.format.json()),
    transports: [new winston.transports.Stream({ stream: service.stream ?? process.stdout })],
  });
}

/** `createLogger` with `silent: true`: writes nowhere. */
export function silentLogger(): Logger {
  return createLogger({ level: 'error', format: 'json', silent: true });
}
