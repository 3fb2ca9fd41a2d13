import { z } from 'zod';
import {
  DurationSchema,
  IdSchema,
  Ipv4Schema,
  MacSchema,
  MetadataSchema,
  SecretRefSchema,
  UuidSchema,
} from './common';

const hostAddress = z.string().min(1, 'must be a host name or IP address');

export const IpmiBmcSchema = z.strictObject({
  type: z.literal('ipmi'),
  address: hostAddress,
  port: z.int().min(1).max(65535).default(623),
  username: z.string().min(1),
  password: SecretRefSchema,
  cipher_suite: z.int().min(0).max(17).default(3),
});

export const RedfishBmcSchema = z.strictObject({
  type: z.literal('redfish'),
  address: z.url({ protocol: /^https?$/, message: 'must be the BMC URL like https://10.0.1.5' }),
  username: z.string().min(1),
  password: SecretRefSchema,
  system_id: z.string().optional(),
  verify_tls: z.boolean().default(true),
});

export const SshBmcSchema = z.strictObject({
  type: z.literal('ssh'),
  address: hostAddress,
  port: z.int().min(1).max(65535).default(22),
  username: z.string().min(1),
  private_key: SecretRefSchema,
});

export const CommandBmcSchema = z.strictObject({
  type: z.literal('command'),
  command: z.string().min(1),
  args: z.array(z.string()).default([]),
  timeout: DurationSchema.default('60s'),
});

/** A simulated machine: boots after delays, fails where told. Used for demos and scale benchmarks. */
export const SimBmcSchema = z.strictObject({
  type: z.literal('sim'),
  boot_delay: DurationSchema.default('30s'),
  fail_stage: z.enum(['power', 'dhcp', 'ipxe', 'kernel', 'checkpoint']).optional(),
});

export const BmcSchema = z.discriminatedUnion('type', [
  IpmiBmcSchema,
  RedfishBmcSchema,
  SshBmcSchema,
  CommandBmcSchema,
  SimBmcSchema,
]);
export type Bmc = z.infer<typeof BmcSchema>;

export const InterfaceSchema = z.strictObject({
  name: z.string().optional(),
  mac: MacSchema,
  subnet: IdSchema,
  ipv4: Ipv4Schema,
  hostname: z.string().optional(),
  boot: z.boolean().default(false),
});
export type Interface = z.infer<typeof InterfaceSchema>;

export const HostSchema = z.strictObject({
  name: IdSchema,
  group: IdSchema,
  uuid: UuidSchema.optional(),
  firmware: z.enum(['bios', 'uefi']).default('uefi'),
  interfaces: z.array(InterfaceSchema).min(1, 'a host needs at least one interface'),
  bmc: BmcSchema.optional(),
  metadata: MetadataSchema,
  never_provision: z.boolean().default(false),
});
export type Host = z.infer<typeof HostSchema>;

/** The interface a host network-boots from: the one marked `boot`, else the first. */
export function bootInterface(host: Host): Interface {
  const iface = host.interfaces.find((i) => i.boot) ?? host.interfaces[0];
  if (!iface) throw new Error(`host ${host.name} has no interface`);
  return iface;
}
