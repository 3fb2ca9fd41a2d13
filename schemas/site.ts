import { z } from 'zod';
import {
  CidrSchema,
  IdSchema,
  Ipv4Schema,
  MetadataSchema,
  RebootWindowSchema,
  DurationSchema,
  TimezoneSchema,
} from './common';
import { GateSchema } from './gates';

/** Options the DHCP server fills in itself from the model; a custom option may not take these codes. */
export const MANAGED_DHCP_OPTIONS = [
  1, 3, 6, 12, 15, 28, 42, 43, 51, 53, 54, 55, 58, 59, 60, 61, 66, 67, 82, 93, 97, 119, 175,
];

export const DhcpOptionTypeSchema = z.enum([
  'string',
  'ipv4',
  'ipv4-list',
  'uint8',
  'uint16',
  'uint32',
  'bool',
  'hex',
]);
export type DhcpOptionType = z.infer<typeof DhcpOptionTypeSchema>;

export const DhcpOptionSchema = z.strictObject({
  code: z.int().min(1).max(254),
  name: z.string().optional(),
  type: DhcpOptionTypeSchema,
  value: z.union([z.string(), z.number(), z.boolean(), z.array(z.string())]),
});
export type DhcpOption = z.infer<typeof DhcpOptionSchema>;

export const SubnetSchema = z.strictObject({
  id: IdSchema,
  cidr: CidrSchema,
  gateway: Ipv4Schema.optional(),
  dns: z.array(Ipv4Schema).default([]),
  ntp: z.array(Ipv4Schema).default([]),
  domain: z.string().optional(),
  domain_search: z.array(z.string()).default([]),
  vlan: z.int().min(1).max(4094).optional(),
  mtu: z.int().min(576).max(9216).optional(),
  lease_time: z.int().min(60).default(3600),
  options: z.array(DhcpOptionSchema).default([]),
});
export type Subnet = z.infer<typeof SubnetSchema>;

export const AgentSchema = z.strictObject({
  name: IdSchema,
  dhcp_mode: z.enum(['server', 'proxy']).default('server'),
  interface: z.string().min(1).optional(),
  asset_url: z.url({ protocol: /^https?$/, message: 'must be an http(s) URL like http://10.0.0.5:8080' }),
  cdn: z.url({ protocol: /^https?$/ }).optional(),
  /**
   * Ids of the site's subnets this agent serves: its DHCP answers relayed requests from these only,
   * and their hosts boot from its asset_url. None: every subnet of the site. Two agents may list the
   * same subnet: that is a redundant pair.
   */
  subnets: z.array(IdSchema).min(1, 'list at least one subnet, or leave subnets out to serve all').optional(),
});
export type Agent = z.infer<typeof AgentSchema>;

export const SitePolicySchema = z.strictObject({
  approval_required: z.boolean().default(false),
  canary_size: z.int().min(0).default(1),
  max_fail: z.int().min(0).default(0),
  reboot_windows: z.array(RebootWindowSchema).default([]),
  /** Holds the rollout after the canary for this long (a group's `canary.soak` overrides it). */
  soak: DurationSchema.optional(),
  /** Metric gates of every wave at this site: during the canary's soak and after each batch. */
  gates: z.array(GateSchema).default([]),
});
export type SitePolicy = z.infer<typeof SitePolicySchema>;

export const SiteSchema = z.strictObject({
  id: IdSchema,
  name: z.string().min(1),
  timezone: TimezoneSchema.default('UTC'),
  agents: z.array(AgentSchema).min(1, 'a site needs at least one agent'),
  subnets: z.array(SubnetSchema).min(1, 'a site needs at least one subnet'),
  policy: SitePolicySchema.default({
    approval_required: false,
    canary_size: 1,
    max_fail: 0,
    reboot_windows: [],
    gates: [],
  }),
  release: z.string().optional(),
  metadata: MetadataSchema,
});
export type Site = z.infer<typeof SiteSchema>;
