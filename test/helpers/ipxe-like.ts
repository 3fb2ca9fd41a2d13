// Runs the iPXE scripts the agents hand out the way iPXE runs them, for the commands they use:
// `a || b` runs b only when a failed (iPXE's process_on_failure), `chain` runs the fetched script and
// takes its exit status, `exit` ends the script it is in, `goto` jumps to a label, `set`/`isset`/`iseq`
// on settings shared by every script of the run (`${platform}` given: pcbios or efi). Each download is a
// real HTTP GET. Where no QEMU is wanted: test/e2e/lab-two-agents.test.ts boots the real iPXE.
import http from 'node:http';

export interface IpxeRun {
  /** Every GET in order, with its outcome: a status, or the error's code (ECONNREFUSED, timeout). */
  gets: { url: string; outcome: number | string }[];
  kernel?: { url: string; args: string };
  initrds: string[];
  booted: boolean;
  /** iPXE's settings, as `set` left them (`platform` from the run's options). */
  settings: Map<string, string>;
}

const COMMANDS = new Set([
  ...['chain', 'kernel', 'initrd', 'boot', 'exit', 'goto', 'echo', 'sleep'],
  ...['iseq', 'isset', 'set'],
]);

/** `${name}` as iPXE expands it: a setting's value, empty when unset; typed ones (`${mac:hexhyp}`) kept. */
function expand(run: IpxeRun, word: string): string {
  return word.replace(/\$\{([\w.-]+)\}/g, (_, name: string) => run.settings.get(name) ?? '');
}

/**
 * A GET on a connection of its own, as iPXE makes one per download (a pooled one would hide a dead
 * agent's refusal): the body on 2xx, else undefined. `timeoutMs` stands in for iPXE's TCP timer.
 */
function get(run: IpxeRun, url: string, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const done = (outcome: number | string, body?: string) => {
      run.gets.push({ url, outcome });
      resolve(body);
    };
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        done(status, status >= 200 && status < 300 ? Buffer.concat(chunks).toString() : undefined);
      });
      res.on('error', (err) => done(err.message));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err: NodeJS.ErrnoException) => done(err.code ?? err.message));
  });
}

/** The URL of an image command: its first argument that is no option (`--name x`, `--autofree`). */
function imageArgs(args: string[]): { url: string; rest: string } {
  let i = 0;
  while (args[i]?.startsWith('--')) i += args[i] === '--name' ? 2 : 1;
  return { url: args[i] ?? '', rest: args.slice(i + 1).join(' ') };
}

/** Runs one script; resolves to its exit status (0 when it booted, which ends every script). */
async function runScript(run: IpxeRun, text: string, timeoutMs: number, depth: number): Promise<number> {
  if (depth > 4) throw new Error('chain loop');
  const lines = text.split('\n');
  if (lines[0]?.trim() !== '#!ipxe') throw new Error(`not an iPXE script: ${lines[0]}`);
  const exec = async (words: string[]): Promise<number | 'exit' | { goto: string }> => {
    const [cmd = '', ...args] = words.map((w) => expand(run, w));
    if (!COMMANDS.has(cmd)) throw new Error(`command this helper does not know: ${cmd}`);
    if (cmd === 'exit') return 'exit';
    if (cmd === 'goto') return { goto: args[0] ?? '' };
    if (cmd === 'echo' || cmd === 'sleep') return 0;
    if (cmd === 'iseq') return args[0] === args[1] ? 0 : 1;
    if (cmd === 'isset') return args[0] ? 0 : 1;
    if (cmd === 'set') return (run.settings.set(args[0] ?? '', args.slice(1).join(' ')), 0);
    if (cmd === 'boot') return run.kernel ? ((run.booted = true), 0) : 1;
    const { url, rest } = imageArgs(args);
    const body = await get(run, url, timeoutMs);
    if (body === undefined) return 1;
    if (cmd === 'kernel') run.kernel = { url, args: rest };
    if (cmd === 'initrd') run.initrds.push(url);
    return cmd === 'chain' ? runScript(run, body, timeoutMs, depth + 1) : 0;
  };
  for (let at = 1; at < lines.length && !run.booted; at++) {
    const line = lines[at]?.trim() ?? '';
    if (!line || line.startsWith('#') || line.startsWith(':')) continue;
    let status = 0;
    for (const [i, command] of line.split(' || ').entries()) {
      if (i > 0 && status === 0) break;
      const words = command.trim().split(/\s+/);
      const result = await exec(words);
      if (result === 'exit') return Number(expand(run, words[1] ?? '0') || 0);
      if (typeof result === 'object') {
        at = lines.findIndex((l) => l.trim() === `:${result.goto}`);
        if (at < 0) throw new Error(`no label ${result.goto}`);
        break;
      }
      status = result;
      if (run.booted) return 0;
    }
  }
  return 0;
}

/**
 * Runs `text` as iPXE would; `timeoutMs` bounds each GET (iPXE's own TCP gives up after some 15 s).
 * `status` is the top script's exit status (what the firmware gets back).
 */
export async function runIpxe(
  text: string,
  timeoutMs = 5_000,
  platform: 'pcbios' | 'efi' = 'pcbios',
): Promise<IpxeRun & { status: number }> {
  const run: IpxeRun = { gets: [], initrds: [], booted: false, settings: new Map([['platform', platform]]) };
  const status = await runScript(run, text, timeoutMs, 0);
  return { ...run, status };
}
