import type { Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { serve } from '@hono/node-server';
import type { Hono } from 'hono';
import type { ServerConfig } from '../config';

export interface Listening {
  /** The bound port (the configured one, or the kernel's pick for port 0). */
  port: number;
  close(): Promise<void>;
}

/** A certificate and its key, PEM (read from the config's `tls` files by the entry point). */
export interface TlsPem {
  cert: string;
  key: string;
}

/** Serves the app on `config.listen` over Node's HTTP server, or HTTPS when `tls` is given. */
export function listen(
  app: Pick<Hono, 'fetch'>,
  config: Pick<ServerConfig, 'listen'>,
  tls?: TlsPem,
): Promise<Listening> {
  const https = tls
    ? { createServer: createHttpsServer, serverOptions: { cert: tls.cert, key: tls.key } }
    : {};
  return new Promise((resolve, reject) => {
    const server = serve(
      { fetch: app.fetch, hostname: config.listen.host, port: config.listen.port, ...https },
      (info) => resolve({ port: info.port, close: () => close(server) }),
    ) as Server;
    server.once('error', reject);
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((err) => (err ? reject(err) : resolve()));
    // Keep-alive connections would hold close() open until their clients leave.
    server.closeAllConnections();
  });
}
