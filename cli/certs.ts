// `vaquero certs --out <dir> [--hosts h1,h2]`: a development CA and a server certificate signed by it,
// for HTTPS between agents and the server (docs/ha.md, "Agents and TLS") without a PKI. Node cannot
// create X.509 certificates, so this drives the openssl CLI. The CA is reused when <dir> already has
// one, so re-running with more --hosts reissues the server certificate that agents already trust.
import { execFile } from 'node:child_process';
import { access, chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { CliError, parse, type Io } from './io';

const run = promisify(execFile);
const USAGE = 'usage: vaquero certs --out <dir> [--hosts host1,host2,...] [--days 825]';

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await run(process.env.OPENSSL_BIN ?? 'openssl', args, { cwd, timeout: 30_000 });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new CliError('openssl is not installed (apt-get install openssl)', 1);
    const why = e.stderr?.trim().split('\n')[0] ?? e.message;
    throw new CliError(`openssl ${args[0]} failed: ${why}`, 1);
  }
}

const exists = (file: string) =>
  access(file).then(
    () => true,
    () => false,
  );

/** The subjectAltName list: the given hosts plus localhost and 127.0.0.1, each once. */
export function subjectAltNames(hosts: string[]): string {
  const names = [...new Set(['localhost', '127.0.0.1', ...hosts])];
  return names.map((h) => (isIP(h) ? `IP:${h}` : `DNS:${h}`)).join(',');
}

function checkHost(host: string): string {
  if (
    !isIP(host) &&
    !/^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$/.test(host)
  )
    throw new CliError(`--hosts: ${JSON.stringify(host)} is not a host name or IP address`);
  return host;
}

async function makeCa(dir: string, io: Io): Promise<void> {
  if ((await exists(path.join(dir, 'ca.crt'))) && (await exists(path.join(dir, 'ca.key')))) {
    io.out(`using the existing CA in ${dir}\n`);
    return;
  }
  await openssl(
    ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'ca.key'],
    dir,
  );
  await openssl(
    [
      'req',
      '-x509',
      '-new',
      '-key',
      'ca.key',
      '-sha256',
      '-days',
      '3650',
      '-subj',
      '/CN=Vaquero development CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE,pathlen:0',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
      '-out',
      'ca.crt',
    ],
    dir,
  );
  io.out(`made a CA: ${path.join(dir, 'ca.crt')} (give this to agents as their server CA)\n`);
}

async function makeServerCert(dir: string, hosts: string[], days: number, io: Io): Promise<void> {
  const ext = 'server.ext';
  await writeFile(
    path.join(dir, ext),
    [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=serverAuth',
      `subjectAltName=${subjectAltNames(hosts)}`,
      '',
    ].join('\n'),
  );
  try {
    await openssl(
      ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'server.key'],
      dir,
    );
    await openssl(
      ['req', '-new', '-key', 'server.key', '-subj', `/CN=${hosts[0] ?? 'localhost'}`, '-out', 'server.csr'],
      dir,
    );
    await openssl(
      [
        'x509',
        '-req',
        '-in',
        'server.csr',
        '-CA',
        'ca.crt',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-days',
        String(days),
        '-sha256',
        '-extfile',
        ext,
        '-out',
        'server.crt',
      ],
      dir,
    );
  } finally {
    await rm(path.join(dir, 'server.csr'), { force: true });
    await rm(path.join(dir, ext), { force: true });
  }
  io.out(
    `made a server certificate for ${subjectAltNames(hosts)}: ${path.join(dir, 'server.crt')}, server.key\n`,
  );
}

export async function certsCommand(args: string[], io: Io): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    io.out(USAGE.endsWith('\n') ? USAGE : `${USAGE}\n`);
    return 0;
  }
  const { values, positionals } = parse(args, {
    out: { type: 'string' },
    hosts: { type: 'string', default: '' },
    days: { type: 'string', default: '825' },
  });
  if (!values.out || positionals.length > 0) throw new CliError(USAGE);
  const days = Number(values.days);
  if (!Number.isInteger(days) || days < 1 || days > 3650)
    throw new CliError('--days: a whole number from 1 to 3650');
  const hosts = values.hosts
    .split(',')
    .map((h) => h.trim())
    .filter(Boolean)
    .map(checkHost);
  const dir = path.resolve(io.cwd(), values.out);
  await mkdir(dir, { recursive: true });
  await makeCa(dir, io);
  await makeServerCert(dir, hosts, days, io);
  for (const key of ['ca.key', 'server.key']) await chmod(path.join(dir, key), 0o600);
  io.out(
    `server config:  tls: { cert: ${path.join(dir, 'server.crt')}, key: ${path.join(dir, 'server.key')} }\n` +
      `agent config:   server CA ${path.join(dir, 'ca.crt')}\n`,
  );
  return 0;
}
