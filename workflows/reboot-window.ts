import type { RebootWindow } from '../schemas/common';

const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
const WEEKDAY_INDEX: Record<string, number> = { Mon: 0, Tue: 1, Wed: 2, Thu: 3, Fri: 4, Sat: 5, Sun: 6 };

function minutes(time: string): number {
  const [h = '0', m = '0'] = time.split(':');
  return Number.parseInt(h, 10) * 60 + Number.parseInt(m, 10);
}

/** Weekday (0 = Monday) and minute of the day of an instant, on the wall clock of a time zone. */
export function wallClock(nowMs: number, timeZone: string): { day: number; minute: number } {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone,
    weekday: 'short',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(new Date(nowMs));
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? '0';
  return {
    day: WEEKDAY_INDEX[get('weekday')] ?? 0,
    minute: Number.parseInt(get('hour'), 10) * 60 + Number.parseInt(get('minute'), 10),
  };
}

/** Whether an instant is inside a window; a window whose end is before its start runs past midnight. */
export function inWindow(window: RebootWindow, nowMs: number): boolean {
  const { day, minute } = wallClock(nowMs, window.timezone);
  const start = minutes(window.start);
  const end = minutes(window.end);
  const has = (d: number) => window.days.includes(DAYS[(d + 7) % 7] ?? 'mon');
  if (start < end) return has(day) && minute >= start && minute < end;
  return (has(day) && minute >= start) || (has(day - 1) && minute < end);
}

/**
 * Milliseconds until some window is open (0 when one is, or when there are none). Computed on the
 * wall clock, so a DST change can make it early or late by an hour: callers check again on waking.
 */
export function msUntilOpen(windows: readonly RebootWindow[], nowMs: number): number {
  if (windows.length === 0 || windows.some((w) => inWindow(w, nowMs))) return 0;
  let best = Number.POSITIVE_INFINITY;
  for (const window of windows) {
    const { day, minute } = wallClock(nowMs, window.timezone);
    const start = minutes(window.start);
    for (let d = 0; d <= 7; d++) {
      if (!window.days.includes(DAYS[(day + d) % 7] ?? 'mon')) continue;
      const until = d * 1440 + start - minute;
      if (until > 0) {
        best = Math.min(best, until);
        break;
      }
    }
  }
  // Whole minutes on the wall clock; the seconds already past in this minute are subtracted.
  return Number.isFinite(best) ? best * 60_000 - (nowMs % 60_000) : 0;
}
