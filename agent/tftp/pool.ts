// The TFTP worker threads: each read goes to the thread with the fewest transfers under way; a
// thread that dies fails its transfers (logged) and is replaced, so the request port keeps serving.
import { Worker } from 'node:worker_threads';
import type { ReadContext, ReadReport, ReadRequest } from './read';
import type { FromWorker, ToWorker, WorkerData } from './worker';
import type { TftpLogger } from './server';

export interface Pool {
  read(req: ReadRequest, report: ReadReport): void;
  close(): Promise<void>;
}

interface Thread {
  worker: Worker;
  pending: Map<number, ReadReport>;
}

export function startPool(size: number, ctx: ReadContext, log: TftpLogger): Pool {
  const data: WorkerData = { root: ctx.root, host: ctx.host, limits: ctx.limits };
  let nextId = 1;
  let closing = false;
  const threads: Thread[] = [];

  const spawn = (slot: number): void => {
    const worker = new Worker(new URL('./worker-entry.mjs', import.meta.url), { workerData: data });
    const thread: Thread = { worker, pending: new Map() };
    threads[slot] = thread;
    worker.on('message', (msg: FromWorker) => {
      const report = thread.pending.get(msg.id);
      if (!report) return;
      if (msg.kind === 'refuse') {
        thread.pending.delete(msg.id);
        report.refuse(msg.code, msg.text, msg.reason);
      } else {
        thread.pending.delete(msg.id);
        report.end({ ok: msg.ok, reason: msg.reason });
      }
    });
    worker.on('error', (err) => log({ level: 'warn', msg: `TFTP worker: ${err.message}` }));
    worker.on('exit', () => {
      for (const report of thread.pending.values()) report.end({ ok: false, reason: 'worker thread exited' });
      thread.pending.clear();
      // A thread that cannot start must not spin: its replacement comes a second later.
      if (!closing) setTimeout(() => closing || spawn(slot), 1000).unref();
    });
  };
  for (let i = 0; i < size; i++) spawn(i);

  return {
    read(req, report) {
      const thread = threads.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
      const id = nextId++;
      thread.pending.set(id, report);
      const msg: ToWorker = {
        kind: 'read',
        id,
        file: req.file,
        options: [...req.options],
        address: req.address,
        port: req.port,
      };
      thread.worker.postMessage(msg);
    },
    async close() {
      closing = true;
      const close: ToWorker = { kind: 'close' };
      await Promise.all(
        threads.map(
          (t) =>
            new Promise<void>((resolve) => {
              t.worker.once('exit', () => resolve());
              t.worker.postMessage(close);
              // Transfers aborted, its sockets closed: it exits by itself; a stuck one is stopped.
              setTimeout(() => void t.worker.terminate(), 2000).unref();
            }),
        ),
      );
    },
  };
}
