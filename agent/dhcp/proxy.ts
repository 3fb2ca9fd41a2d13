// ProxyDHCP (PXE specification 2.1 section 2.2.5, RFC 4578): beside a site's own DHCP server, answer PXE
// clients with boot information only. A pure function like handleDhcp; it never offers an address.
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
  concat,
  echoRelayAgentInfo,
  ipv4Bytes,
  maxMessageSize,
  messageType,
  optionText,
  requestedOptions,
} from './codec-options';
import { CLIENT_PORT, SERVER_PORT, type DhcpLog, type HandlerResult } from './handler';
import type { HostLease, LeaseBackend } from './leases';
import { text, u8 } from './options';
import { chooseBoot } from './reply';

/** The port a PXE client sends its boot server REQUEST to (PXE 2.1, "PXE_PORT" in iPXE). */
export const PXE_PORT = 4011;
const ZERO = '0.0.0.0';
const LIMITED_BROADCAST = '255.255.255.255';
/** PXE vendor sub-option 6, PXE_DISCOVERY_CONTROL; bit 3: boot the file named in this offer, no menu. */
const PXE_DISCOVERY_CONTROL = 6;
const USE_BOOT_FILE = 0x08;

export interface ProxyContext {
  /** Our address: option 54 and where clients send their port-4011 REQUEST. */
  serverIp: string;
  backend: LeaseBackend;
  now: Date;
  /** The local port the packet arrived on: the DHCP port (DISCOVERs) or the PXE port (REQUESTs). */
  localPort: number;
  /** The PXE boot server port, 4011 unless the server bound another one (tests). */
  pxePort?: number;
  /** Where the packet came from; a port-4011 ACK goes back there. */
  from: { address: string; port: number };
}

/** Whether option 60 says the client is PXE firmware (or iPXE, which says so too). */
export function isPxeClient(packet: DhcpPacket): boolean {
  return (optionText(packet, 60) ?? '').startsWith('PXEClient');
}

export function handleProxyDhcp(packet: DhcpPacket, ctx: ProxyContext): HandlerResult {
  const mac = macOf(packet);
  const xid = packet.xid;
  const type = messageType(packet);
  const onPxePort = ctx.localPort === (ctx.pxePort ?? PXE_PORT);
  const expected = onPxePort ? MessageType.Request : MessageType.Discover;
  if (packet.op !== BOOTREQUEST || packet.htype !== 1 || packet.hlen !== 6 || type !== expected) {
    // REQUESTs on port 67 are for the site's DHCP server; nothing to log for them.
    const log: DhcpLog | undefined =
      type === MessageType.Request && !onPxePort
        ? undefined
        : {
            level: 'info',
            msg: `proxy ignored: op ${packet.op} type ${type} on port ${ctx.localPort}`,
            mac,
            xid,
          };
    return { outcome: 'ignored', log };
  }
  if (!isPxeClient(packet)) {
    return {
      outcome: 'not-pxe',
      log: { level: 'info', msg: 'proxy ignored a client that is not PXE', mac, xid },
    };
  }
  const lease = ctx.backend.lookupHost(mac);
  if (!lease) {
    return {
      outcome: 'unknown-mac',
      log: { level: 'info', msg: `PXE ${onPxePort ? 'REQUEST' : 'DISCOVER'} from unknown MAC`, mac, xid },
    };
  }
  const boot = chooseBoot(packet, lease);
  if (!boot.file) {
    return {
      outcome: 'ignored',
      log: { level: 'warn', msg: 'PXE client with no boot file for its architecture', mac, xid },
    };
  }
  const replyType = onPxePort ? MessageType.Ack : MessageType.Offer;
  const reply = proxyReply(packet, lease, ctx.serverIp, boot.file, replyType);
  const to = onPxePort ? pxePortDestination(packet, ctx.from) : destination(packet);
  const encode: EncodeOptions = { maxSize: maxMessageSize(packet), requested: requestedOptions(packet) };
  const name = onPxePort ? 'REQUEST -> ACK' : 'DISCOVER -> OFFER';
  return {
    outcome: onPxePort ? 'ack' : 'offer',
    reply: { packet: reply, to, encode },
    event: { kind: 'dhcp', mac: lease.mac, at: ctx.now.toISOString(), detail: `proxy ${name} ${boot.file}` },
  };
}

function proxyReply(
  packet: DhcpPacket,
  lease: HostLease,
  serverIp: string,
  file: string,
  type: MessageType.Offer | MessageType.Ack,
): DhcpPacket {
  const options = new Map<number, Uint8Array>([
    [53, u8(type)],
    [54, ipv4Bytes(serverIp)],
    // Without "PXEClient" a PXE ROM (and iPXE) does not take this as a ProxyDHCP offer.
    [60, text('PXEClient')],
    // Intel ROMs want vendor options in a ProxyDHCP offer: "boot the file named here, no discovery".
    [43, concat([Uint8Array.of(PXE_DISCOVERY_CONTROL, 1, USE_BOOT_FILE), Uint8Array.of(255)])],
    [66, text(lease.tftpServer)],
    [67, text(file)],
  ]);
  // PXE 2.1: the client's UUID (option 97) is echoed; some ROMs drop an offer without it.
  const uuid = packet.options.get(97);
  if (uuid) options.set(97, uuid);
  echoRelayAgentInfo(packet, options);
  return {
    op: BOOTREPLY,
    htype: packet.htype,
    hlen: packet.hlen,
    hops: 0,
    xid: packet.xid,
    secs: 0,
    flags: packet.flags & BROADCAST_FLAG,
    ciaddr: type === MessageType.Ack ? packet.ciaddr : ZERO,
    // Never an address: the site's DHCP server owns them.
    yiaddr: ZERO,
    siaddr: lease.tftpServer,
    giaddr: packet.giaddr,
    chaddr: packet.chaddr,
    sname: '',
    // BIOS PXE ROMs read the header field, not option 67; a long URL only fits the option.
    file: Buffer.byteLength(file) < 128 ? file : '',
    options,
  };
}

/** Port 67 answers: through the relay, else broadcast (the client has no address yet). */
function destination(request: DhcpPacket): { address: string; port: number } {
  if (request.giaddr !== ZERO) return { address: request.giaddr, port: SERVER_PORT };
  if (request.ciaddr !== ZERO) return { address: request.ciaddr, port: CLIENT_PORT };
  return { address: LIMITED_BROADCAST, port: CLIENT_PORT };
}

/** Port 4011 answers go back where the REQUEST came from (the client has its address by then). */
function pxePortDestination(
  request: DhcpPacket,
  from: { address: string; port: number },
): { address: string; port: number } {
  if (from.address !== ZERO && from.port !== 0) return from;
  return destination(request);
}
