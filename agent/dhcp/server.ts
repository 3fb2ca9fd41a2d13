// The DHCP socket loop: decode, hand to the pure handler, send its reply. Nothing in here throws.
import dgram from 'node:dgram';
import type { BootEventSink } from '../../schemas/rollout';
import { LogSampler, type LogSamplerOptions } from '../log-sampler';
import { Backlog } from './backlog';
import { decode, encode, macOf, MessageType, type DhcpPacket } from './codec';
import { messageType } from './codec-options';
import { handleDhcp, SERVER_PORT, type DhcpLog, type DhcpOutcome, type HandlerResult } from './handler';
import { bootAddresses, onLink, type BootAddress } from './interfaces';
import type { LeaseBackend } from './leases';
import { handleProxyDhcp, PXE_PORT } from './proxy';

export type DhcpLogger = (entry: DhcpLog & { from?: string }) => void;

export interface DhcpServerOptions {
  /** The boot interface's name, for logs (see `interfaces` for binding to it). */
  interface?: string;
  /**
   * The boot interfaces to answer on; none: every interface (a socket on 0.0.0.0). Node's dgram has
   * no SO_BINDTODEVICE or IP_PKTINFO, so "only these" is built from addresses: a socket on each of
   * their IPv4 addresses takes unicasts (relays, renewals; nothing sent to another interface's
   * address reaches it), and one on 255.255.255.255 the broadcasts of clients without an address,
   * which every interface delivers there. Such a client is answered from a boot address's socket:
   * Linux sends a limited broadcast out of the interface that owns the source address (not where the
   * routes point), so no reply leaves on another network. A running agent can also be isolated in a
   * network namespace holding only the boot interface (docs/agent.md, "Boot interface").
   */
  interfaces?: readonly string[];
  /** The server's address on the boot network: server identifier (option 54). */
  address: string;
  /** Where to bind without `interfaces`; 0.0.0.0 by default. */
  bindAddress?: string;
  port?: number;
  /**
   * `server` (default) hands out the reserved addresses. `proxy` is ProxyDHCP beside the site's own
   * DHCP server (agent `dhcp_mode: proxy`): boot information for known PXE clients only, on `port`
   * (DISCOVER -> OFFER) and `proxyPort` (REQUEST -> ACK), never an address.
   */
  mode?: 'server' | 'proxy';
  /**
   * The PXE boot server port (REQUEST -> ACK with the boot file). Proxy mode always listens there,
   * 4011 by default (0: any free port). Server mode listens there only when it is given: EDK2's PXE
   * takes an OFFER with "PXEClient" and no option 43 as a BINL offer and asks port 4011 after its ACK.
   */
  proxyPort?: number;
  backend: LeaseBackend;
  events: BootEventSink;
  log: DhcpLogger;
  /** Lines per kind (outcome) and interval; the rest are counted in `counters` and summed up in one line. */
  logSampling?: Pick<LogSamplerOptions<DhcpLog>, 'perInterval' | 'intervalMs'>;
  now?: () => Date;
}

/** `shed`: a DISCOVER left unanswered while the socket had a standing queue (./backlog.ts). */
export type DhcpCounters = Record<DhcpOutcome | 'malformed' | 'send-error' | 'send-dropped' | 'shed', number>;
type LogKind = keyof DhcpCounters | 'socket-error';

/** Replies handed to a socket and not yet sent (see `send`). */
const MAX_SENDS_IN_FLIGHT = 64;

export interface DhcpServer {
  port: number;
  /** The bound PXE boot server port, when there is one (see DhcpServerOptions.proxyPort). */
  proxyPort?: number;
  counters: DhcpCounters;
  close(): Promise<void>;
}

async function bind(socket: dgram.Socket, port: number, address: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, address, () => {
      socket.off('error', reject);
      resolve();
    });
  });
}

type SocketKind = 'dhcp' | 'pxe';

/** What the socket loop shares between its sockets. */
interface LoopState {
  opts: DhcpServerOptions;
  mode: 'server' | 'proxy';
  counters: DhcpCounters;
  /** Replies handed to each socket and not yet sent. */
  inFlight: Map<dgram.Socket, number>;
  now: () => Date;
  /** Every line a packet causes, sampled per kind: a flood is counted, not written out. */
  log: (kind: LogKind, entry: DhcpLog & { from?: string }) => void;
  /** With `interfaces`: the sockets bound to each boot address, by kind, that broadcasts are answered from. */
  local?: { addresses: BootAddress[]; sockets: Map<string, dgram.Socket>; broadcast: Set<dgram.Socket> };
}

function newCounters(): DhcpCounters {
  return {
    offer: 0,
    ack: 0,
    nak: 0,
    ignored: 0,
    'unknown-mac': 0,
    'not-pxe': 0,
    declined: 0,
    released: 0,
    'unserved-relay': 0,
    malformed: 0,
    'send-error': 0,
    'send-dropped': 0,
    shed: 0,
  };
}

/** One datagram: decoded, handed to the handler of its port and mode, the reply sent. Never throws. */
function onDatagram(
  state: LoopState,
  received: dgram.Socket,
  kind: SocketKind,
  msg: Buffer,
  rinfo: dgram.RemoteInfo,
  backlog: Backlog,
) {
  const { opts, counters, log } = state;
  backlog.read();
  const from = `${rinfo.address}:${rinfo.port}`;
  try {
    const decoded = decode(msg);
    if (!decoded.ok) {
      counters.malformed++;
      log('malformed', {
        level: 'warn',
        msg: `malformed DHCP packet (${decoded.error})`,
        xid: decoded.xid,
        from,
      });
      return;
    }
    if (shed(state, decoded.packet, backlog)) {
      counters.shed++;
      const entry = { level: 'warn' as const, msg: 'DISCOVER left unanswered: requests are queueing' };
      log('shed', { ...entry, xid: decoded.packet.xid, from });
      return;
    }
    const socket = replySocket(state, received, kind, decoded.packet);
    const result = handle(state, kind, decoded.packet, rinfo);
    counters[result.outcome]++;
    if (result.log) log(result.outcome, { ...result.log, from });
    if (result.event) opts.events.emit(result.event);
    if (result.reply) send(state, socket, result.reply);
  } catch (err) {
    // A bug must cost one packet, not the boot network.
    counters.malformed++;
    log('malformed', {
      level: 'warn',
      msg: `dropped packet: ${err instanceof Error ? err.message : String(err)}`,
      from,
    });
  }
}

/**
 * A DISCOVER this server would answer, while its socket has a standing queue (./backlog.ts). Others
 * (unknown MACs, REQUESTs) take their usual way: they cost no reply, or complete an exchange.
 */
function shed(state: LoopState, packet: DhcpPacket, backlog: Backlog): boolean {
  return (
    messageType(packet) === MessageType.Discover &&
    backlog.shedding() &&
    state.opts.backend.lookupHost(macOf(packet)) !== undefined
  );
}

const BROADCAST = '255.255.255.255';

/**
 * The socket to answer from: a broadcast is answered from a boot address, so the reply leaves by a
 * boot interface: the one on the network of the host's reservation, else the first (several subnets
 * on one wire, the agent with an address in one of them).
 */
function replySocket(
  state: LoopState,
  received: dgram.Socket,
  kind: SocketKind,
  packet: DhcpPacket,
): dgram.Socket {
  const local = state.local;
  if (!local?.broadcast.has(received)) return received;
  const lease = state.opts.backend.lookupHost(macOf(packet));
  const address = (lease && onLink(local.addresses, lease.ipv4)) ?? local.addresses[0];
  return (address && local.sockets.get(`${kind} ${address.address}`)) ?? received;
}

function handle(
  state: LoopState,
  kind: SocketKind,
  packet: DhcpPacket,
  rinfo: dgram.RemoteInfo,
): HandlerResult {
  const { opts } = state;
  // The PXE port always gets the ProxyDHCP handler (it only answers REQUESTs from PXE clients);
  // the DHCP port gets the one of the mode.
  return state.mode === 'proxy' || kind === 'pxe'
    ? handleProxyDhcp(packet, {
        serverIp: opts.address,
        backend: opts.backend,
        now: state.now(),
        localPort: kind === 'pxe' ? PXE_PORT : SERVER_PORT,
        from: { address: rinfo.address, port: rinfo.port },
      })
    : handleDhcp(packet, { serverIp: opts.address, backend: opts.backend, now: state.now() });
}

function send(state: LoopState, socket: dgram.Socket, reply: NonNullable<HandlerResult['reply']>): void {
  const { counters, inFlight } = state;
  const { packet, to, encode: encodeOptions } = reply;
  // A unicast reply (to ciaddr or a relay) to an address nobody answers ARP for sits in the
  // kernel's neighbour queue, charged to this socket; enough of them fill its send buffer and libuv
  // then queues every later send, broadcasts too, without bound: the whole service stalls (found
  // by test/fuzz-dhcp.test.ts). Beyond a few sends in flight, replies are dropped and counted
  // instead; clients retransmit.
  const pending = inFlight.get(socket) ?? 0;
  if (pending >= MAX_SENDS_IN_FLIGHT) {
    counters['send-dropped']++;
    return;
  }
  inFlight.set(socket, pending + 1);
  socket.send(encode(packet, encodeOptions), to.port, to.address, (err) => {
    inFlight.set(socket, (inFlight.get(socket) ?? 1) - 1);
    if (!err) return;
    counters['send-error']++;
    state.log('send-error', {
      level: 'warn',
      msg: `send to ${to.address}:${to.port}: ${err.message}`,
      xid: packet.xid,
    });
  });
}

export async function startDhcpServer(opts: DhcpServerOptions): Promise<DhcpServer> {
  const mode = opts.mode ?? 'server';
  const counters = newCounters();
  const sampled = new LogSampler<DhcpLog & { from?: string }>(opts.log, {
    ...opts.logSampling,
    summary: (kind, suppressed, intervalMs) => ({
      level: 'info',
      msg: `${kind}: ${suppressed} more line${suppressed === 1 ? '' : 's'} suppressed in ${intervalMs / 1000} s`,
      suppressed,
      ...(Object.hasOwn(counters, kind) ? { total: counters[kind as keyof DhcpCounters] } : {}),
    }),
  });
  const state: LoopState = {
    opts,
    mode,
    counters,
    inFlight: new Map(),
    now: opts.now ?? (() => new Date()),
    log: (kind, entry) => sampled.log(kind, entry),
  };
  const listen = (socket: dgram.Socket, kind: SocketKind): void => {
    const backlog = new Backlog();
    socket.on('message', (msg: Buffer, rinfo: dgram.RemoteInfo) =>
      onDatagram(state, socket, kind, msg, rinfo, backlog),
    );
    socket.on('error', (err) =>
      state.log('socket-error', { level: 'warn', msg: `socket error: ${err.message}` }),
    );
  };
  const addresses = opts.interfaces?.length ? bootAddresses(opts.interfaces) : undefined;
  if (addresses) state.local = { addresses, sockets: new Map(), broadcast: new Set() };
  const sockets: dgram.Socket[] = [];
  const closeAll = () =>
    Promise.all(sockets.map((s) => new Promise<void>((resolve) => s.close(() => resolve())))).then(() =>
      sampled.flush(),
    );
  const openOne = async (port: number, kind: SocketKind, address: string): Promise<dgram.Socket> => {
    const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true, recvBufferSize: 4 << 20 });
    listen(socket, kind);
    try {
      await bind(socket, port, address);
    } catch (err) {
      socket.close();
      await closeAll();
      throw err;
    }
    sockets.push(socket);
    // Replies to clients without an address go to 255.255.255.255 (RFC 2131 section 4.1). From a socket
    // on 0.0.0.0 Linux routes that address like any other: without a default route or `ip route add
    // 255.255.255.255/32 dev <if>` sends fail with ENETUNREACH (logged and counted as send-error).
    socket.setBroadcast(true);
    state.local?.sockets.set(`${kind} ${address}`, socket);
    if (address === BROADCAST) state.local?.broadcast.add(socket);
    return socket;
  };
  // One socket per boot address and one for broadcasts (see `interfaces`), all on the port the first
  // one got (port 0: any free port).
  const open = async (port: number, kind: SocketKind): Promise<dgram.Socket> => {
    if (!addresses) return openOne(port, kind, opts.bindAddress ?? '0.0.0.0');
    const [first, ...rest] = addresses;
    if (!first) throw new Error('no boot address');
    const socket = await openOne(port, kind, first.address);
    const bound = socket.address().port;
    for (const { address } of rest) await openOne(bound, kind, address);
    await openOne(bound, kind, BROADCAST);
    return socket;
  };
  const main = await open(opts.port ?? SERVER_PORT, 'dhcp');
  const pxe =
    mode === 'proxy' || opts.proxyPort !== undefined
      ? await open(opts.proxyPort ?? PXE_PORT, 'pxe')
      : undefined;
  const ports = pxe ? ` and ${pxe.address().port}` : '';
  const where = addresses
    ? addresses.map((a) => `${a.interface} (${a.address})`).join(', ')
    : (opts.interface ?? 'all interfaces');
  opts.log({
    level: 'info',
    msg: `DHCP ${mode} on ${where} as ${opts.address}, port ${main.address().port}${ports}`,
  });
  return {
    port: main.address().port,
    ...(pxe ? { proxyPort: pxe.address().port } : {}),
    counters: state.counters,
    close: closeAll,
  };
}
