/**
 * JSON logs, one object per line on stdout, so log shippers need no parser configuration.
 * A logger carries fixed fields (component, run, ...) that every line it writes repeats.
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds these fields to every line. */
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  /** Lines below this level are dropped (default: LOG_LEVEL env or info). */
  readonly level?: LogLevel;
  /** Where lines go (default: process.stdout). Tests pass a collector. */
  readonly write?: (line: string) => void;
  readonly fields?: LogFields;
}

function errorFields(v: unknown): unknown {
  if (v instanceof Error) return { message: v.message, name: v.name, ...(v.stack ? { stack: v.stack.split('\n').slice(0, 6).join('\n') } : {}) };
  return v;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const envLevel = process.env.LOG_LEVEL as LogLevel | undefined;
  const min = ORDER[opts.level ?? (envLevel && ORDER[envLevel] ? envLevel : 'info')];
  const write = opts.write ?? ((line: string) => process.stdout.write(line + '\n'));
  const base = opts.fields ?? {};
  const emit = (level: LogLevel, msg: string, fields?: LogFields) => {
    if (ORDER[level] < min) return;
    const out: LogFields = { ts: new Date().toISOString(), level, msg, ...base };
    for (const [k, v] of Object.entries(fields ?? {})) out[k] = errorFields(v);
    let line: string;
    try { line = JSON.stringify(out); } catch { line = JSON.stringify({ ts: out.ts, level, msg, note: 'fields not serializable' }); }
    write(line);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger({ ...opts, level: (Object.keys(ORDER) as LogLevel[]).find((l) => ORDER[l] === min), write, fields: { ...base, ...fields } }),
  };
}

/** A logger that drops everything (library users who bring their own logging). */
export const silentLogger: Logger = createLogger({ write: () => undefined });
