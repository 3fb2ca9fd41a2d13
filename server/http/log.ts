/** Structured logging, pino-shaped so pino can be passed as it is: fields first, then the message. */
export interface Log {
  info(fields: Record<string, unknown>, msg: string): void;
  warn(fields: Record<string, unknown>, msg: string): void;
  error(fields: Record<string, unknown>, msg: string): void;
}

/** A log whose every line carries `fields` (e.g. the request id). */
export function childLog(log: Log, fields: Record<string, unknown>): Log {
  return {
    info: (f, msg) => log.info({ ...fields, ...f }, msg),
    warn: (f, msg) => log.warn({ ...fields, ...f }, msg),
    error: (f, msg) => log.error({ ...fields, ...f }, msg),
  };
}

/** One JSON object per line on stdout, for an entry point without pino. */
export function jsonLog(write: (line: string) => void): Log {
  const at = (level: string) => (fields: Record<string, unknown>, msg: string) =>
    write(`${JSON.stringify({ level, time: new Date().toISOString(), msg, ...fields })}\n`);
  return { info: at('info'), warn: at('warn'), error: at('error') };
}
