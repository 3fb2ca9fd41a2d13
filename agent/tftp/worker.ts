// A TFTP worker thread: serves the reads the server's thread hands it (see pool.ts), each on its own
// socket, and posts back refusals and outcomes; logging and boot events stay on the server's thread.
import { parentPort, workerData } from 'node:worker_threads';
import type { Limits } from './packets';
import { serveRead, type ReadContext } from './read';
import { FileCache } from '../file-cache';
import type { Transfer } from './transfer';

export interface WorkerData {
  root: string;
  host: string;
  limits: Limits;
}

/** server thread -> worker */
export type ToWorker =
  | { kind: 'read'; id: number; file: string; options: [string, string][]; address: string; port: number }
  | { kind: 'close' };

/** worker -> server thread */
export type FromWorker =
  | { kind: 'refuse'; id: number; code: number; text: string; reason: string }
  | { kind: 'end'; id: number; ok: boolean; reason?: string };

const port = parentPort;
if (port) {
  const data = workerData as WorkerData;
  const ctx: ReadContext = { ...data, cache: new FileCache() };
  const active = new Set<Transfer>();
  const post = (msg: FromWorker) => port.postMessage(msg);
  port.on('message', (msg: ToWorker) => {
    if (msg.kind === 'close') {
      for (const t of active) t.abort(0, 'Server shutting down');
      port.close();
      return;
    }
    const { id } = msg;
    let transfer: Transfer | undefined;
    serveRead(
      ctx,
      { ...msg, options: new Map(msg.options) },
      {
        refuse: (code, text, reason) => post({ kind: 'refuse', id, code, text, reason }),
        end: (end) => {
          if (transfer) active.delete(transfer);
          post({ kind: 'end', id, ok: end.ok, reason: end.reason });
        },
      },
    ).then(
      (t) => {
        transfer = t;
        if (t) active.add(t);
      },
      (err: unknown) => post({ kind: 'end', id, ok: false, reason: `local: ${String(err)}` }),
    );
  });
}
