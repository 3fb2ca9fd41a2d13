// HTTPS between agent and server with the certificates of `vaquero certs`: the agent client trusts the
// server only through the given CA, and every agent route refuses a missing, wrong or foreign token.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FileModelStore } from '../../activities/store/file-store';
import { validateSot } from '../../sot/validate';
import { createServerFeed } from '../../agent/feed/server-feed';
import { certsCommand } from '../../cli/certs';
import type { Io } from '../../cli/io';
import { listen, type Listening } from '../../server/http/listen';
import { agentApp, AGENT_TOKENS } from '../helpers/agent-api';

let dir: string;
let certs: string;
let otherCerts: string;
let ca: string;
let server: Listening;
let url: string;
const registry = { app: undefined as ReturnType<typeof agentApp> | undefined };

async function certsRun(...args: string[]): Promise<string> {
  let out = '';
  const io: Io = { out: (t) => void (out += t), err: (t) => void (out += t), cwd: () => dir };
  assert.equal(await certsCommand(args, io), 0);
  return out;
}

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'vaquero-tls-'));
  certs = path.join(dir, 'certs');
  otherCerts = path.join(dir, 'other');
  await certsRun('--out', 'certs', '--hosts', 'vaquero.example.net,10.20.0.5');
  await certsRun('--out', 'other');
  ca = await readFile(path.join(certs, 'ca.crt'), 'utf8');
  const result = await validateSot(path.join(import.meta.dirname, '../../examples/sot'));
  assert.ok(result.model);
  const store = new FileModelStore(path.join(dir, 'store'));
  await store.putRevision('c1', result.model);
  await store.setApplied('c1');
  registry.app = agentApp(store);
  const tls = {
    cert: await readFile(path.join(certs, 'server.crt'), 'utf8'),
    key: await readFile(path.join(certs, 'server.key'), 'utf8'),
  };
  server = await listen(registry.app.app, { listen: { host: '127.0.0.1', port: 0 } }, tls);
  url = `https://localhost:${server.port}`;
});
after(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('vaquero certs', () => {
  test('a CA and a server certificate for the hosts plus localhost and 127.0.0.1, keys private', async () => {
    const caCert = new X509Certificate(ca);
    const cert = new X509Certificate(await readFile(path.join(certs, 'server.crt')));
    assert.ok(caCert.ca, 'the CA is a CA');
    assert.equal(cert.ca, false);
    assert.ok(cert.checkIssued(caCert) && cert.verify(caCert.publicKey), 'signed by the CA');
    assert.equal(
      cert.subjectAltName,
      'DNS:localhost, IP Address:127.0.0.1, DNS:vaquero.example.net, IP Address:10.20.0.5',
    );
    for (const key of ['ca.key', 'server.key'])
      assert.equal((await stat(path.join(certs, key))).mode & 0o777, 0o600, `${key} is 0600`);
  });

  test('a second run keeps the CA agents already trust and reissues the server certificate', async () => {
    const before = await readFile(path.join(otherCerts, 'server.crt'), 'utf8');
    const out = await certsRun('--out', 'other', '--hosts', 'second.example.net');
    assert.match(out, /using the existing CA/);
    const cert = new X509Certificate(await readFile(path.join(otherCerts, 'server.crt')));
    assert.notEqual(cert.toString(), before);
    assert.match(cert.subjectAltName ?? '', /DNS:second\.example\.net/);
    assert.ok(cert.checkIssued(new X509Certificate(await readFile(path.join(otherCerts, 'ca.crt')))));
  });

  test('bad hosts are refused with a clear message', async () => {
    const io: Io = { out: () => undefined, err: () => undefined, cwd: () => dir };
    await assert.rejects(
      certsCommand(['--out', 'x', '--hosts', 'bad host'], io),
      /"bad host" is not a host name/,
    );
    await assert.rejects(certsCommand([], io), /^CliError: usage: vaquero certs --out <dir>/);
  });
});

describe('agent client over HTTPS', () => {
  test("with the dev CA: the site's model and heartbeats", async () => {
    const feed = createServerFeed({ url, token: AGENT_TOKENS.fra1, site: 'fra1', ca });
    try {
      const current = await feed.current();
      assert.equal(current?.commit, 'c1');
      assert.deepEqual(Object.keys(current?.model.sites ?? {}), ['fra1']);
      assert.equal((await feed.revision('c1'))?.commit, 'c1');
      assert.equal(await feed.revision('unknown'), undefined);
      await feed.heartbeat({ agent: 'fra1-a', version: '0.1.0' });
      assert.equal(registry.app?.registry.site('fra1').agents[0]?.agent, 'fra1-a');
    } finally {
      feed.close();
    }
  });

  test('with another CA, or the system CAs, the server is refused and the error says why', async () => {
    const otherCa = await readFile(path.join(otherCerts, 'ca.crt'), 'utf8');
    for (const options of [{ ca: otherCa }, {}]) {
      const feed = createServerFeed({ url, token: AGENT_TOKENS.fra1, site: 'fra1', ...options });
      await assert.rejects(
        feed.current(),
        /^ServerError: cannot reach the server at https:\/\/localhost:\d+: the server certificate is not signed by the configured CA \(\w+\)$/,
      );
      feed.close();
    }
  });

  test('an address the certificate does not name is refused', async () => {
    const tls = {
      cert: await readFile(path.join(certs, 'server.crt'), 'utf8'),
      key: await readFile(path.join(certs, 'server.key'), 'utf8'),
    };
    // Loopback, but not one of the certificate's names (localhost, 127.0.0.1, ...).
    const elsewhere = await listen(registry.app!.app, { listen: { host: '127.0.0.2', port: 0 } }, tls);
    const feed = createServerFeed({
      url: `https://127.0.0.2:${elsewhere.port}`,
      token: AGENT_TOKENS.fra1,
      site: 'fra1',
      ca,
    });
    try {
      await assert.rejects(
        feed.current(),
        /the server certificate does not name this host .*ERR_TLS_CERT_ALTNAME_INVALID/,
      );
    } finally {
      feed.close();
      await elsewhere.close();
    }
  });

  test('every agent route: no token, a wrong token 401; another site token 403', async () => {
    const cases = [
      { token: '', status: 401 },
      { token: 'vaq_wrong', status: 401 },
      { token: AGENT_TOKENS.iad1, status: 403 },
    ];
    for (const { token, status } of cases) {
      const feed = createServerFeed({ url, token, site: 'fra1', ca });
      const answered = new RegExp(`the server answered ${status}`);
      await assert.rejects(feed.current(), answered, `model, token ${token || '(none)'}`);
      await assert.rejects(feed.revision('c1'), answered, `model/c1, token ${token || '(none)'}`);
      await assert.rejects(feed.heartbeat({ agent: 'x', version: '1' }), answered);
      feed.close();
    }
  });
});
