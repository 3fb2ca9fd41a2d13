// Log lines that untrusted traffic triggers (a packet from an unknown MAC, a malformed packet) are
// sampled: anyone on the boot network can send thousands a second, and one line each would fill the
// disk and bury every other line. Per kind, the first lines of an interval are written; the rest are
// counted and reported in one summary line when the interval is over.

export interface LogSamplerOptions<T> {
  /** Lines of one kind written per interval (default 20). */
  perInterval?: number;
  /** Default 10 s. */
  intervalMs?: number;
  /** The line that stands for `suppressed` lines of `kind` left out of the interval just over. */
  summary: (kind: string, suppressed: number, intervalMs: number) => T;
  now?: () => number;
}

interface Window {
  start: number;
  written: number;
  suppressed: number;
}

/**
 * `kind` must come from a closed set (an outcome, an error class), never from a packet: the sampler
 * keeps one window per kind.
 */
export class LogSampler<T> {
  private readonly windows = new Map<string, Window>();
  private readonly perInterval: number;
  private readonly intervalMs: number;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly write: (entry: T) => void,
    private readonly opts: LogSamplerOptions<T>,
  ) {
    this.perInterval = opts.perInterval ?? 20;
    this.intervalMs = opts.intervalMs ?? 10_000;
    this.now = opts.now ?? Date.now;
  }

  log(kind: string, entry: T): void {
    const now = this.now();
    let window = this.windows.get(kind);
    if (window && now - window.start >= this.intervalMs) {
      this.close(kind, window);
      window = undefined;
    }
    if (!window) {
      window = { start: now, written: 0, suppressed: 0 };
      this.windows.set(kind, window);
    }
    if (window.written < this.perInterval) {
      window.written++;
      this.write(entry);
      return;
    }
    window.suppressed++;
    // The summary must come when the flood stops too, not only with the next line of its kind.
    this.timer ??= this.schedule(window.start + this.intervalMs - now);
  }

  /** Writes the summaries of every interval still open (at shutdown). */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const [kind, window] of this.windows) this.close(kind, window);
  }

  private schedule(delayMs: number): NodeJS.Timeout {
    return setTimeout(() => this.expire(), Math.max(0, delayMs)).unref();
  }

  private expire(): void {
    this.timer = undefined;
    const now = this.now();
    let next: number | undefined;
    for (const [kind, window] of this.windows) {
      const left = window.start + this.intervalMs - now;
      if (left <= 0) this.close(kind, window);
      else if (window.suppressed > 0) next = Math.min(next ?? left, left);
    }
    if (next !== undefined) this.timer = this.schedule(next);
  }

  private close(kind: string, window: Window): void {
    this.windows.delete(kind);
    if (window.suppressed > 0) this.write(this.opts.summary(kind, window.suppressed, this.intervalMs));
  }
}
