// The DHCP server's decisions (RFC 2131 section 4.3): a pure function from a request to a reply or nothing.
import type { BootEvent } from '../../schemas/rollout';
import {
  BOOTREPLY,
  BOOTREQUEST,
  BROADCAST_FLAG,
  macOf,
  MessageType,
  type DhcpPacket,
  type EncodeOptions,
} from './codec';
import {
  echoRelayAgentInfo,
  ipv4Bytes,
  maxMessageSize,
  messageType,
  optionIp,
  requestedOptions,
} from './codec-options';
import type { HostLease, LeaseBackend } from './leases';
import { chooseBoot, leaseOptions } from './reply';
import { u8, text } from './options';

export const SERVER_PORT = 67;
export const CLIENT_PORT = 68;
const ZERO = '0.0.0.0';
const LIMITED_BROADCAST = '255.255.255.255';

export interface HandlerContext {
  /** The server identifier (option 54) and next-server address. */
  serverIp: string;
  backend: LeaseBackend;
  now: Date;
}

export interface DhcpLog {
  level: 'info' | 'warn';
  msg: string;
  mac?: string;
  xid?: number;
  /** A summary line of the socket loop: lines of one kind left out, and their counter since start. */
  suppressed?: number;
  total?: number;
}

/**
 * What the loop counts; `unknown-mac` is a known-ignored client, `not-pxe` a client a ProxyDHCP server
 * leaves to the site's DHCP server, the rest are protocol outcomes.
 */
export type DhcpOutcome =
  | 'offer'
  | 'ack'
  | 'nak'
  | 'ignored'
  | 'unknown-mac'
  | 'not-pxe'
  | 'declined'
  | 'released'
  | 'unserved-relay';

export interface HandlerResult {
  reply?: { packet: DhcpPacket; to: { address: string; port: number }; encode: EncodeOptions };
  event?: BootEvent;
  log?: DhcpLog;
  outcome: DhcpOutcome;
}

const NAMES: Record<number, string> = {
  [MessageType.Discover]: 'DISCOVER',
  [MessageType.Request]: 'REQUEST',
  [MessageType.Decline]: 'DECLINE',
  [MessageType.Release]: 'RELEASE',
  [MessageType.Inform]: 'INFORM',
};

export function handleDhcp(packet: DhcpPacket, ctx: HandlerContext): HandlerResult {
  const mac = macOf(packet);
  const xid = packet.xid;
  const type = messageType(packet);
  const name = type === undefined ? undefined : NAMES[type];
  if (packet.op !== BOOTREQUEST || packet.htype !== 1 || packet.hlen !== 6 || !name) {
    return {
      outcome: 'ignored',
      log: { level: 'warn', msg: `ignored: op ${packet.op} type ${type}`, mac, xid },
    };
  }
  // A rack behind a relay is its own agents' to answer (schemas/site.ts `subnets`); two answers
  // would hand the host two different boot servers.
  if (packet.giaddr !== ZERO && ctx.backend.servesRelay?.(packet.giaddr) === false) {
    const msg = `${name} relayed by ${packet.giaddr}: not in a subnet this agent serves`;
    return { outcome: 'unserved-relay', log: { level: 'info', msg, mac, xid } };
  }
  const lease = ctx.backend.lookupHost(mac);
  if (!lease)
    return { outcome: 'unknown-mac', log: { level: 'info', msg: `${name} from unknown MAC`, mac, xid } };
  switch (type) {
    case MessageType.Discover:
      return {
        ...answer(packet, lease, ctx, MessageType.Offer),
        // Every agent of the broadcast domain answers it: the one the host chooses reports its REQUEST.
        event: {
          ...dhcpEvent(lease, ctx, `DISCOVER -> OFFER ${lease.ipv4}${lease.armed ? '' : ' (not armed)'}`),
          reported: false,
        },
      };
    case MessageType.Request:
      return request(packet, lease, ctx);
    case MessageType.Inform:
      return {
        ...answer(packet, lease, ctx, MessageType.Ack, false),
        event: dhcpEvent(lease, ctx, `INFORM from ${packet.ciaddr}`),
      };
    case MessageType.Decline: {
      const ip = optionIp(packet, 50) ?? '?';
      const log: DhcpLog = { level: 'warn', msg: `DECLINE of ${ip}: address in use on the wire?`, mac, xid };
      return { outcome: 'declined', log, event: dhcpEvent(lease, ctx, `DECLINE ${ip}`) };
    }
    default:
      return {
        outcome: 'released',
        log: { level: 'info', msg: `RELEASE of ${packet.ciaddr}`, mac, xid },
        event: dhcpEvent(lease, ctx, `RELEASE ${packet.ciaddr}`),
      };
  }
}

function dhcpEvent(lease: HostLease, ctx: HandlerContext, detail: string): BootEvent {
  return { kind: 'dhcp', mac: lease.mac, at: ctx.now.toISOString(), detail };
}

/** RFC 2131 section 4.3.2: the client's state is told by option 54, option 50 and ciaddr. */
function request(packet: DhcpPacket, lease: HostLease, ctx: HandlerContext): HandlerResult {
  const serverId = optionIp(packet, 54);
  const requested = optionIp(packet, 50);
  const mac = lease.mac;
  const xid = packet.xid;
  if (serverId !== undefined && serverId !== ctx.serverIp) {
    return { outcome: 'ignored', log: { level: 'info', msg: `REQUEST for server ${serverId}`, mac, xid } };
  }
  const wanted = serverId !== undefined || packet.ciaddr === ZERO ? requested : packet.ciaddr;
  const state = serverId !== undefined ? 'selecting' : packet.ciaddr === ZERO ? 'init-reboot' : 'renewing';
  if (wanted !== lease.ipv4) {
    const msg = `REQUEST (${state}) for ${wanted ?? 'no address'}, reserved ${lease.ipv4}`;
    return {
      ...nak(packet, ctx, msg),
      log: { level: 'warn', msg, mac, xid },
      event: dhcpEvent(lease, ctx, `NAK ${wanted}`),
    };
  }
  return {
    ...answer(packet, lease, ctx, MessageType.Ack),
    event: dhcpEvent(lease, ctx, `REQUEST (${state}) -> ACK ${lease.ipv4}`),
  };
}

function baseReply(packet: DhcpPacket): DhcpPacket {
  return {
    op: BOOTREPLY,
    htype: packet.htype,
    hlen: packet.hlen,
    hops: 0,
    xid: packet.xid,
    secs: 0,
    flags: packet.flags & BROADCAST_FLAG,
    ciaddr: ZERO,
    yiaddr: ZERO,
    siaddr: ZERO,
    giaddr: packet.giaddr,
    chaddr: packet.chaddr,
    sname: '',
    file: '',
    options: new Map(),
  };
}

function answer(
  packet: DhcpPacket,
  lease: HostLease,
  ctx: HandlerContext,
  type: MessageType.Offer | MessageType.Ack,
  withLease = true,
): HandlerResult {
  const boot = chooseBoot(packet, lease);
  const reply = baseReply(packet);
  reply.options = new Map([[53, u8(type)], ...leaseOptions(lease, ctx.serverIp, boot, withLease)]);
  echoRelayAgentInfo(packet, reply.options);
  if (withLease) reply.yiaddr = lease.ipv4;
  else reply.ciaddr = packet.ciaddr;
  if (boot.file) {
    reply.siaddr = lease.tftpServer;
    // BIOS PXE ROMs read the header field, not option 67; a long URL only fits the option.
    if (Buffer.byteLength(boot.file) < 128) reply.file = boot.file;
  }
  const encode: EncodeOptions = { maxSize: maxMessageSize(packet), requested: requestedOptions(packet) };
  return {
    outcome: type === MessageType.Offer ? 'offer' : 'ack',
    reply: { packet: reply, to: destination(packet, false), encode },
  };
}

function nak(packet: DhcpPacket, ctx: HandlerContext, message: string): HandlerResult {
  const reply = baseReply(packet);
  reply.options = new Map([
    [53, u8(MessageType.Nak)],
    [54, ipv4Bytes(ctx.serverIp)],
    [56, text(message.slice(0, 200))],
  ]);
  echoRelayAgentInfo(packet, reply.options);
  // RFC 2131 section 4.3.2: a NAK through a relay asks it to broadcast.
  if (packet.giaddr !== ZERO) reply.flags |= BROADCAST_FLAG;
  return { outcome: 'nak', reply: { packet: reply, to: destination(packet, true), encode: {} } };
}

/**
 * RFC 2131 section 4.1: relay first, NAKs broadcast, then ciaddr, then the broadcast flag. A client
 * without an address and without the flag should get a unicast to yiaddr, which needs an ARP entry a
 * dgram socket cannot add: it gets a broadcast too (section 4.1 allows it).
 */
function destination(request: DhcpPacket, isNak: boolean): { address: string; port: number } {
  if (request.giaddr !== ZERO) return { address: request.giaddr, port: SERVER_PORT };
  if (isNak) return { address: LIMITED_BROADCAST, port: CLIENT_PORT };
  if (request.ciaddr !== ZERO) return { address: request.ciaddr, port: CLIENT_PORT };
  return { address: LIMITED_BROADCAST, port: CLIENT_PORT };
}
