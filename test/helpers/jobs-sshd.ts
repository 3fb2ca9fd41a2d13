// A real OpenSSH server on 127.0.0.1 for SSH job tests: temporary host key, authorized_keys and config,
// run in the foreground and stopped when the test ends.
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';
import { freePort, tempDir } from './jobs-fixtures';

const run = promisify(execFile);

export const SSHD = '/usr/sbin/sshd';

export interface TestSshd {
  port: number;
  /** A private key that authorized_keys accepts for root. */
  authorizedKey: string;
  /** A private key that it does not. */
  strangerKey: string;
  dir: string;
}

/**
 * Starts sshd, or skips the test where it cannot run (not installed, not root) on a developer's
 * machine; in CI (CI set) a missing sshd fails the test: CI must install openssh-server.
 */
export async function startSshdOrSkip(t: TestContext): Promise<TestSshd | undefined> {
  const missing = !existsSync(SSHD)
    ? `${SSHD} not found (apt-get install openssh-server openssh-client)`
    : process.getuid?.() !== 0
      ? 'sshd tests log in as root and need to run as root'
      : undefined;
  if (missing) {
    if (process.env.CI && process.env.CI !== 'false') throw new Error(`${missing}; CI must provide it`);
    t.skip(missing);
    return undefined;
  }
  const dir = await tempDir(t);
  const key = async (name: string) => {
    await run('ssh-keygen', [
      '-q',
      '-t',
      'ed25519',
      '-N',
      '',
      '-C',
      `vaquero-test-${name}`,
      '-f',
      path.join(dir, name),
    ]);
    return readFile(path.join(dir, name), 'utf8');
  };
  await key('host_key');
  const authorizedKey = await key('client');
  const strangerKey = await key('stranger');
  await writeFile(path.join(dir, 'authorized_keys'), await readFile(path.join(dir, 'client.pub')));
  const port = await freePort();
  const config = path.join(dir, 'sshd_config');
  await writeFile(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${path.join(dir, 'host_key')}`,
      `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
      `PidFile ${path.join(dir, 'sshd.pid')}`,
      'UsePAM no',
      'StrictModes no',
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      '',
    ].join('\n'),
  );
  // sshd refuses to start without its privilege separation directory (Debian creates it at boot).
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  await startDaemon(t, config);
  return { port, authorizedKey, strangerKey, dir };
}

async function startDaemon(t: TestContext, config: string): Promise<void> {
  const daemon = spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  const exited = new Promise<void>((resolve) => daemon.once('exit', () => resolve()));
  t.after(async () => {
    daemon.kill('SIGTERM');
    await exited;
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`sshd did not start within 3 s:\n${log}`)), 3000);
    daemon.stderr.on('data', (chunk: Buffer) => {
      log += chunk.toString();
      if (log.includes('Server listening on')) {
        clearTimeout(timer);
        resolve();
      }
    });
    daemon.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`sshd exited with status ${code}:\n${log}`));
    });
  });
}
