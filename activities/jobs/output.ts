/** What a job result keeps of an attempt's output. */
export const OUTPUT_LIMIT_BYTES = 4096;

/**
 * Collects an attempt's output in bounded memory and renders it in at most `limit` bytes.
 * `head` keeps the beginning (an HTTP body); `ends` keeps both ends around a marker, because a
 * failing script says why at its end and what it was doing at its start.
 */
export class OutputCollector {
  private head: Buffer[] = [];
  private headBytes = 0;
  private tail: Buffer = Buffer.alloc(0);
  private total = 0;

  constructor(
    private readonly keep: 'head' | 'ends' = 'ends',
    private readonly limit = OUTPUT_LIMIT_BYTES,
  ) {}

  push(chunk: Buffer | string): void {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    this.total += buf.length;
    if (this.headBytes < this.limit) {
      const part = buf.subarray(0, this.limit - this.headBytes);
      this.head.push(part);
      this.headBytes += part.length;
    }
    if (this.keep === 'ends') {
      const joined = Buffer.concat([this.tail, buf]);
      this.tail = joined.subarray(Math.max(0, joined.length - this.limit));
    }
  }

  get bytes(): number {
    return this.total;
  }

  toString(): string {
    const head = Buffer.concat(this.head);
    if (this.total <= this.limit) return head.toString('utf8');
    const marker = (omitted: number) =>
      this.keep === 'head'
        ? `\n[... ${omitted} more bytes truncated ...]`
        : `\n[... ${omitted} bytes truncated ...]\n`;
    // Sized for the largest count it could show, so the result never exceeds the limit.
    const room = this.limit - Buffer.byteLength(marker(this.total));
    if (this.keep === 'head') {
      const kept = cutAtCharBoundary(head, room);
      return kept.toString('utf8') + marker(this.total - kept.length);
    }
    const keptHead = cutAtCharBoundary(head, Math.floor(room / 2));
    const keptTail = tailAtCharBoundary(this.tail, room - keptHead.length);
    return (
      keptHead.toString('utf8') +
      marker(this.total - keptHead.length - keptTail.length) +
      keptTail.toString('utf8')
    );
  }
}

function isContinuation(byte: number | undefined): boolean {
  return byte !== undefined && (byte & 0xc0) === 0x80;
}

/** The first `max` bytes or fewer, never splitting a UTF-8 character. */
function cutAtCharBoundary(buf: Buffer, max: number): Buffer {
  let end = Math.min(max, buf.length);
  while (end > 0 && end < buf.length && isContinuation(buf[end])) end--;
  return buf.subarray(0, end);
}

/** The last `max` bytes or fewer, never starting inside a UTF-8 character. */
function tailAtCharBoundary(buf: Buffer, max: number): Buffer {
  let start = Math.max(0, buf.length - max);
  while (start < buf.length && isContinuation(buf[start])) start++;
  return buf.subarray(start);
}
