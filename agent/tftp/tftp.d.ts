// The `tftp` package (0.1.2) ships no types: only what agent/tftp/server.ts uses.
declare module 'tftp' {
  import type { EventEmitter } from 'node:events';
  import type { Readable, Writable } from 'node:stream';

  export interface TransferStats {
    blockSize: number;
    windowSize: number;
    size: number | null;
    remoteAddress: string;
    remotePort: number;
    localAddress: string;
    localPort: number;
  }

  export interface GetStream extends Readable {
    method: 'GET' | 'PUT';
    file: string;
    stats: TransferStats;
    abort(error?: string | Error): void;
  }

  export interface PutStream extends Writable {
    setSize(size: number): void;
  }

  export interface ServerOptions {
    host?: string;
    port?: number;
    root?: string;
    denyGET?: boolean;
    denyPUT?: boolean;
    blockSize?: number;
    windowSize?: number;
    retries?: number;
    timeout?: number;
  }

  export interface Server extends EventEmitter {
    host: string;
    port: number;
    root: string;
    listen(): void;
    close(): void;
  }

  export function createServer(
    options: ServerOptions,
    requestListener?: (req: GetStream, res: PutStream) => void,
  ): Server;

  export const ENOENT: string;
  export const EACCESS: string;
  export const EIO: string;
}
