import type { Io } from './io';
export function planCommand(_args: string[], _io: Io): Promise<number> {
  return Promise.resolve(2);
}
