// Overload: whether a socket has had a standing queue for a while, told from the event loop alone.
// libuv reads at most 32 datagrams from a socket per loop iteration, then lets other handles run; an
// iteration that reads that many found more waiting (one that reads fewer emptied the socket). A
// socket read full in every iteration for SHED_AFTER_MS has a queue that is not draining: its
// oldest packets have waited that long, and a 4 MiB receive buffer holds seconds of them.
//
// The server then leaves DISCOVERs unanswered until the queue is gone: a REQUEST completes an exchange
// a client is in the middle of, a DISCOVER starts a new one whose REQUEST would queue behind the same
// backlog (and PXE firmware sends it again after 4 s). Reading and dropping a DISCOVER costs a fifth
// of answering it, so the queue drains; under a steady overload the server completes exchanges at
// its capacity with bounded latency instead of answering stale DISCOVERs late (measured in
// docs/benchmarks.md: completions fell as the offered rate rose, with half-second latencies).
export const LIBUV_BATCH = 32;
export const SHED_AFTER_MS = 50;

export class Backlog {
  private inIteration = 0;
  private scheduled = false;
  private since: number | undefined;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Called for each datagram read from the socket. */
  read(): void {
    this.inIteration++;
    if (this.scheduled) return;
    this.scheduled = true;
    // The check phase, after this iteration's reads.
    setImmediate(() => this.endIteration());
  }

  /** Whether new exchanges are to be left unanswered now. */
  shedding(): boolean {
    return this.since !== undefined && this.now() - this.since >= SHED_AFTER_MS;
  }

  private endIteration(): void {
    if (this.inIteration >= LIBUV_BATCH) this.since ??= this.now();
    else this.since = undefined;
    this.inIteration = 0;
    this.scheduled = false;
  }
}
