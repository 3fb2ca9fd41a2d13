// The rack power-on benchmark's client (scripts/bench/rack.ts): N machines booting at once, each
// going through the sequence a UEFI PXE machine goes through, in one process in the client namespace:
//   1. firmware DHCP: DISCOVER -> OFFER -> REQUEST -> ACK (architecture 7, "PXEClient"), boot file;
//   2. TFTP of that file, lock-step with blksize 1468 (as EDK2 asks), every byte read;
//   3. iPXE's DHCP: the same exchange with user class "iPXE", which must name an HTTP boot script;
//   4. HTTP: the host's script (/ipxe/<mac>), then every kernel and initrd URL it names.
// DHCP goes through one relay socket (giaddr, port 67, as perfdhcp does in bench-dhcp), so replies
// are unicast back whatever the server. Prints one JSON line: per-phase completion times and failures.
//
//   tsx scripts/bench/lib/rack-client.ts --server 10.213.0.1 --relay 10.213.0.2 --macs <file> --count N
import dgram from 'node:dgram';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { parseArgs } from 'node:util';
import { BOOTREQUEST, decode, encode, MessageType, type DhcpPacket } from '../../../agent/dhcp/codec';
import { optionIp, optionText } from '../../../agent/dhcp/codec-options';

const { values } = parseArgs({
  options: {
    server: { type: 'string' },
    relay: { type: 'string' },
    macs: { type: 'string' },
    count: { type: 'string' },
    'http-port': { type: 'string', default: '8080' },
  },
});
if (!values.server || !values.relay || !values.macs || !values.count) {
  console.error('usage: rack-client.ts --server <ip> --relay <ip> --macs <file> --count <n>');
  process.exit(2);
}
const server = values.server;
const relay = values.relay;
const httpPort = Number(values['http-port']);
const macs = (await readFile(values.macs, 'utf8')).split('\n').filter(Boolean).slice(0, Number(values.count));
/** Firmware retransmits a DISCOVER after 4 s; shorter here so a lost packet costs the run less. */
const DHCP_RETRY_MS = 2000;
const TFTP_RETRY_MS = 1000;
const TRIES = 5;
const BLKSIZE = 1468;

const pending = new Map<number, (p: DhcpPacket) => void>();
const relaySocket = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
relaySocket.on('message', (msg) => {
  const d = decode(msg);
  if (d.ok) pending.get(d.packet.xid)?.(d.packet);
});
await new Promise<void>((resolve) => relaySocket.bind(67, relay, resolve));

let nextXid = 0x10000 + Math.floor(Math.random() * 0xffff);
let retransmits = 0;

function dhcpRequest(mac: string, type: MessageType, xid: number, ipxe: boolean, offer?: DhcpPacket) {
  const chaddr = new Uint8Array(16);
  chaddr.set(Buffer.from(mac.replaceAll(':', ''), 'hex'));
  const options = new Map<number, Uint8Array>([
    [53, Uint8Array.of(type)],
    [55, Uint8Array.of(1, 3, 6, 12, 15, 28, 43, 60, 66, 67, 175)],
    [60, Buffer.from('PXEClient:Arch:00007:UNDI:003016')],
    [93, Uint8Array.of(0, 7)],
  ]);
  if (ipxe) options.set(77, Buffer.from('iPXE'));
  if (offer) {
    options.set(54, offer.options.get(54) ?? new Uint8Array());
    options.set(50, Uint8Array.from(offer.yiaddr.split('.').map(Number)));
  }
  const packet: DhcpPacket = {
    ...{ op: BOOTREQUEST, htype: 1, hlen: 6, hops: 1, xid, secs: 0, flags: 0, ciaddr: '0.0.0.0' },
    ...{ yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: relay, chaddr, sname: '', file: '', options },
  };
  return encode(packet);
}

/** Sends until an answer of `want` with this xid comes (or the tries run out). */
async function exchange(msg: Buffer, xid: number, want: MessageType): Promise<DhcpPacket> {
  for (let attempt = 0; attempt < TRIES; attempt++) {
    if (attempt) retransmits++;
    const answer = await new Promise<DhcpPacket | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), DHCP_RETRY_MS);
      pending.set(xid, (p) => {
        if (p.options.get(53)?.[0] !== want) return;
        clearTimeout(timer);
        resolve(p);
      });
      relaySocket.send(msg, 67, server);
    });
    if (answer) {
      pending.delete(xid);
      return answer;
    }
  }
  pending.delete(xid);
  throw new Error(`no DHCP ${MessageType[want]} after ${TRIES} tries`);
}

async function dora(mac: string, ipxe: boolean): Promise<DhcpPacket> {
  const xid = nextXid++;
  const offer = await exchange(dhcpRequest(mac, MessageType.Discover, xid, ipxe), xid, MessageType.Offer);
  return exchange(dhcpRequest(mac, MessageType.Request, xid, ipxe, offer), xid, MessageType.Ack);
}

function bootFile(ack: DhcpPacket): string {
  const file = optionText(ack, 67) ?? ack.file;
  if (!file) throw new Error('ACK without a boot file');
  return file.replace(/\0+$/, '');
}

/** RFC 1350 lock-step read with RFC 2348 blksize: every block acknowledged before the next comes. */
function tftpGet(host: string, file: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket('udp4');
    let bytes = 0;
    let expected = 1;
    let blksize = 512;
    let peerPort = 69;
    let last: Buffer = Buffer.concat([
      Buffer.from([0, 1]),
      Buffer.from(`${file}\0octet\0blksize\0${BLKSIZE}\0`),
    ]);
    let tries = 0;
    let timer: NodeJS.Timeout | undefined;
    const done = (err?: Error) => {
      clearTimeout(timer);
      socket.close();
      if (err) reject(err);
      else resolve(bytes);
    };
    const send = () => {
      clearTimeout(timer);
      socket.send(last, peerPort, host);
      timer = setTimeout(() => {
        if (++tries >= TRIES) return done(new Error(`TFTP ${file}: no answer after ${TRIES} tries`));
        retransmits++;
        send();
      }, TFTP_RETRY_MS);
    };
    const ack = (block: number) => {
      last = Buffer.from([0, 4, (block >> 8) & 0xff, block & 0xff]);
      tries = 0;
      send();
    };
    socket.on('message', (msg, rinfo) => {
      if (msg.length < 4) return;
      const op = msg.readUInt16BE(0);
      // RFC 1350: the first answer's port is the transfer's; a second transfer started by a
      // retransmitted RRQ is not mixed into it, nor a stale one still sending to this port number
      // (a previous client process's): only an OACK, DATA 1 or an ERROR starts a transfer.
      if (peerPort === 69) {
        const starts = op === 6 || op === 5 || (op === 3 && msg.readUInt16BE(2) === 1);
        if (!starts) return;
        peerPort = rinfo.port;
      } else if (rinfo.port !== peerPort) return;
      if (op === 5) return done(new Error(`TFTP ${file}: error ${msg.subarray(4).toString('latin1')}`));
      if (op === 6) {
        const parts = msg.subarray(2).toString('latin1').split('\0');
        const i = parts.indexOf('blksize');
        if (i >= 0) blksize = Number(parts[i + 1]);
        return ack(0);
      }
      if (op !== 3) return;
      const block = msg.readUInt16BE(2);
      if (block !== (expected & 0xffff)) return; // a duplicate: our ACK is resent by the timer
      const data = msg.length - 4;
      bytes += data;
      expected++;
      ack(block);
      if (data < blksize) done();
    });
    socket.bind(0, () => send());
  });
}

function httpGet(agent: http.Agent, url: string): Promise<{ bytes: number; text?: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return reject(new Error(`GET ${url}: HTTP ${res.statusCode}`));
      }
      const keepText = url.includes('/ipxe/');
      const chunks: Buffer[] = [];
      let bytes = 0;
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        if (keepText) chunks.push(c);
      });
      res.on('end', () =>
        resolve({ bytes, ...(keepText ? { text: Buffer.concat(chunks).toString() } : {}) }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

/** The first URL of each `kernel` and `initrd` line (the ones after `||` are fallbacks). */
export function bootUrls(script: string): string[] {
  return script
    .split('\n')
    .filter((l) => /^(kernel|initrd) /.test(l))
    .map((l) => /(https?:\/\/\S+)/.exec(l.split(' || ')[0] ?? '')?.[1] ?? '')
    .filter(Boolean);
}

interface MachineResult {
  dhcpMs: number;
  tftpMs: number;
  ipxeDhcpMs: number;
  lastByteMs: number;
  bytes: number;
}

const t0 = performance.now();
const since = () => performance.now() - t0;

async function machine(mac: string): Promise<MachineResult> {
  const ack = await dora(mac, false);
  const dhcpMs = since();
  const file = bootFile(ack);
  const tftpHost = optionText(ack, 66) ?? (ack.siaddr !== '0.0.0.0' ? ack.siaddr : server);
  let bytes = await tftpGet(tftpHost, file);
  const tftpMs = since();
  const ack2 = await dora(mac, true);
  const ipxeDhcpMs = since();
  const scriptUrl = bootFile(ack2);
  if (!scriptUrl.startsWith('http')) throw new Error(`iPXE got ${scriptUrl}, not an HTTP script`);
  // Every server is asked for the host's own script at the same path (nginx: pre-rendered files).
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const base = `http://${optionIp(ack2, 54) ?? server}:${httpPort}`;
    const script = await httpGet(agent, `${base}/ipxe/${mac.replaceAll(':', '-')}`);
    bytes += script.bytes;
    const urls = bootUrls(script.text ?? '');
    if (urls.length === 0) throw new Error(`script without kernel: ${script.text?.slice(0, 200)}`);
    for (const url of urls) bytes += (await httpGet(agent, url)).bytes;
  } finally {
    agent.destroy();
  }
  return { dhcpMs, tftpMs, ipxeDhcpMs, lastByteMs: since(), bytes };
}

const settled = await Promise.allSettled(macs.map(machine));
relaySocket.close();
const ok = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
const failures = settled.flatMap((s) => (s.status === 'rejected' ? [String(s.reason)] : []));
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};
const phase = (f: (r: MachineResult) => number) => {
  const xs = ok.map(f);
  return { p50: pct(xs, 50), max: Math.max(...xs) };
};
console.log(
  JSON.stringify({
    machines: macs.length,
    completed: ok.length,
    failures: failures.length,
    firstFailure: failures[0] ?? '',
    retransmits,
    bytes: ok.reduce((a, r) => a + r.bytes, 0),
    dhcp: phase((r) => r.dhcpMs),
    tftp: phase((r) => r.tftpMs),
    ipxeDhcp: phase((r) => r.ipxeDhcpMs),
    lastByte: phase((r) => r.lastByteMs),
  }),
);
