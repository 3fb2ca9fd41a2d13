import net from 'node:net';
import type { AttemptResult, JobRunner, TcpJob } from './types';

/** Succeeds when a TCP connection to the port opens; nothing is sent. */
export const runTcpJob: JobRunner<TcpJob> = (job, target, _deps, signal) => {
  const host = job.host ?? target.ipv4;
  const where = host.includes(':') ? `[${host}]:${job.port}` : `${host}:${job.port}`;
  if (signal.aborted) return Promise.resolve({ ok: false, output: '', error: `${where}: stopped` });
  return new Promise<AttemptResult>((resolve) => {
    const socket = net.connect({ host, port: job.port });
    const finish = (result: AttemptResult) => {
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      resolve(result);
    };
    const onAbort = () => finish({ ok: false, output: '', error: `${where}: stopped before connecting` });
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => finish({ ok: true, output: `connected to ${where}` }));
    socket.once('error', (err: NodeJS.ErrnoException) =>
      finish({ ok: false, output: '', error: `cannot connect to ${where}: ${err.code ?? err.message}` }),
    );
  });
};
