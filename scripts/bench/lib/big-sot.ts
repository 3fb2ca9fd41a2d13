// A synthetic source of truth of one large site, shaped like a real one: a control plane, workers and
// storage nodes (two boot stages, two interfaces) in racks of 40, a /20 provisioning subnet per 4,000
// hosts, ignition and cloud-config templates with an include, templated jobs, and hosts written as an
// operator would, one YAML document each, a file per 1,000 hosts. The SoT-at-scale benchmark and the
// bounded-heap test both write it.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

export const BIG_SITE = 'dc1';
const HOSTS_PER_FILE = 1000;
const HOSTS_PER_SUBNET = 4000;
const CONTROL_PLANE = 5;

const hex = (n: number, width: number) => n.toString(16).padStart(width, '0');
const mac = (prefix: string, k: number) =>
  `${prefix}:${hex((k >> 16) & 0xff, 2)}:${hex((k >> 8) & 0xff, 2)}:${hex(k & 0xff, 2)}`;
const ipv4 = (base: number, offset: number) =>
  [24, 16, 8, 0].map((shift) => ((base + offset) >>> shift) & 0xff).join('.');

/** 10.64.0.0 and 10.128.0.0: provisioning and storage subnets, each a /20 after the other. */
const PROV_BASE = (10 << 24) | (64 << 16);
const STORAGE_BASE = (10 << 24) | (128 << 16);

function groupOf(k: number): string {
  if (k < CONTROL_PLANE) return 'control-plane';
  return k % 10 === 0 ? 'storage' : 'workers';
}

function hostDoc(k: number): string {
  const group = groupOf(k);
  const s = Math.floor(k / HOSTS_PER_SUBNET);
  const offset = s * 4096 + (k % HOSTS_PER_SUBNET) + 10;
  const name = `n${String(k).padStart(6, '0')}`;
  const lines = [
    `name: ${name}`,
    `group: ${group}`,
    `uuid: 4c4c4544-0000-4000-8000-${hex(k, 12)}`,
    `firmware: ${k % 3 === 0 ? 'bios' : 'uefi'}`,
    'interfaces:',
    `  - { name: eno1, mac: "${mac('52:54:00', k)}", subnet: prov-${s}, ipv4: ${ipv4(PROV_BASE, offset)}, boot: true }`,
  ];
  if (group === 'storage')
    lines.push(
      `  - { name: eno2, mac: "${mac('52:55:00', k)}", subnet: storage-${s}, ipv4: ${ipv4(STORAGE_BASE, offset)} }`,
    );
  lines.push(
    `bmc: { type: ipmi, address: ${ipv4((10 << 24) | (192 << 16), k + 10)}, username: vaquero, password: { env: BMC_PASSWORD } }`,
    `metadata: { rack: r${Math.floor(k / 40)}, model: ${group === 'storage' ? 'supermicro-ssg' : 'dell-r650'} }`,
  );
  return `${lines.join('\n')}\n`;
}

function siteYaml(hosts: number): string {
  const subnets = Array.from({ length: Math.ceil(hosts / HOSTS_PER_SUBNET) }, (_, s) => {
    const prov = ipv4(PROV_BASE, s * 4096);
    const storage = ipv4(STORAGE_BASE, s * 4096);
    return (
      `  - { id: prov-${s}, cidr: ${prov}/20, gateway: ${ipv4(PROV_BASE, s * 4096 + 1)}, dns: [10.0.0.2], domain: dc1.example.net }\n` +
      `  - { id: storage-${s}, cidr: ${storage}/20, dns: [10.0.0.2] }\n`
    );
  });
  return (
    `id: ${BIG_SITE}\nname: Datacenter 1\ntimezone: Europe/Berlin\n` +
    'agents: [{ name: dc1-agent, asset_url: "http://10.0.0.5:8080" }]\n' +
    `subnets:\n${subnets.join('')}` +
    'policy: { approval_required: true, canary_size: 1, max_fail: 20 }\n' +
    'metadata: { k8s_api: "https://k8s-api.dc1.example.net:6443" }\n'
  );
}

const IGNITION = `{
  "ignition": { "version": "3.4.0" },
  "passwd": { "users": [{ "name": "core", {% include "snippets/ssh-keys.j2" %} }] },
  "storage": {
    "files": [
      { "path": "/etc/hostname", "mode": 420, "contents": { "source": "data:,{{ host.hostname }}" } },
      { "path": "/etc/node-labels", "mode": 420,
        "contents": { "source": "data:,role%3D{{ group.id }}%0Arack%3D{{ host.metadata.rack }}%0Aapi%3D{{ site.metadata.k8s_api | urlencode }}" } }
    ]
  },
  "systemd": { "units": [{ "name": "vaquero-checkpoint.service", "enabled": true,
    "contents": "[Service]\\nType=oneshot\\nExecStart=/usr/bin/curl -fsS -X POST {{ urls.checkpoint }}\\n" }] }
}
`;

const CLOUD_CONFIG = `#cloud-config
autoinstall:
  version: 1
  identity: { hostname: {{ host.hostname }}, username: vaquero, password: "!" }
  network:
    version: 2
    ethernets:
      prov:
        match: { macaddress: "{{ host.mac }}" }
        addresses: [{{ host.ipv4 }}/{{ subnet.prefix }}]
        {%- if subnet.gateway %}
        routes: [{ to: default, via: {{ subnet.gateway }} }]
        {%- endif %}
        nameservers: { addresses: [{{ subnet.dns | join(", ") }}] }
  late-commands:
    - curl -fsS -X POST {{ urls.checkpoint }}
`;

/** The fixed part of the SoT; `release` is in every OS's kernel path, so changing it changes every host. */
function commonFiles(release: string): Record<string, string> {
  return {
    'os/flatcar.yaml':
      `id: flatcar\nkernel: https://cdn.example.net/flatcar/${release}/vmlinuz\n` +
      `initrds: [https://cdn.example.net/flatcar/${release}/image.cpio.gz]\n` +
      'cmdline: flatcar.first_boot=1 ignition.config.url={{ urls.unattended }} console=ttyS0,115200n8\n',
    'os/ubuntu.yaml':
      `id: ubuntu\nkernel: ubuntu/${release}/vmlinuz\ninitrds: [ubuntu/${release}/initrd]\n` +
      'cmdline: ip=dhcp autoinstall ds=nocloud-net;s={{ urls.unattended }}/ console=ttyS0\n',
    'os/fwupd.yaml':
      `id: fwupd\nkernel: tools/fwupd-${release}/vmlinuz\n` +
      'cmdline: fwupd.bundle={{ urls.assets }}/files/firmware/{{ host.metadata.model }}.tar vaquero.checkpoint={{ urls.checkpoint }}\n',
    'boot/flatcar.yaml':
      'id: flatcar-node\nos: flatcar\nunattended: { type: ignition, template: ignition/node.ign.j2 }\n' +
      'pre_shutdown:\n  - { name: drain, type: command, command: /usr/local/bin/drain, args: ["{{ host.name }}", "--timeout=10m"], timeout: 12m }\n' +
      'validation:\n  - { name: kubelet, type: http, url: "http://{{ host.ipv4 }}:10248/healthz", timeout: 15m }\n',
    'boot/storage.yaml':
      'id: firmware\nos: fwupd\n---\n' +
      'id: ubuntu-storage\nos: ubuntu\nunattended: { type: cloud-config, template: cloud-config/storage.yaml.j2 }\n' +
      'validation:\n  - { name: ssh-up, type: tcp, port: 22, timeout: 30m }\n',
    'workflows/control-plane.yaml':
      'id: control-plane\nboots: [flatcar-node]\nrollout: { max_concurrent: 1, min_standing: 2, max_fail: 0 }\n',
    'workflows/workers.yaml':
      'id: workers\nboots: [flatcar-node]\nrollout: { max_concurrent: 100, min_standing: 10, depends_on: [control-plane], max_fail: 20 }\n',
    'workflows/storage.yaml':
      'id: storage\nboots: [firmware, ubuntu-storage]\nrollout: { max_concurrent: 5, min_standing: 1, depends_on: [control-plane], max_fail: 1 }\n',
    'assets/ignition/node.ign.j2': IGNITION,
    'assets/cloud-config/storage.yaml.j2': CLOUD_CONFIG,
    'assets/snippets/ssh-keys.j2':
      '"sshAuthorizedKeys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGXcWvJ8nU2jVq3z0oQ9B7 ops"]',
  };
}

/** Writes a valid SoT of `hosts` hosts into `dir`; `release` names the OS release every host boots. */
export async function writeBigSot(dir: string, hosts: number, release = '4081.2.0'): Promise<void> {
  const files = { ...commonFiles(release), [`sites/${BIG_SITE}/site.yaml`]: siteYaml(hosts) };
  for (const [rel, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await writeFile(path.join(dir, rel), text);
  }
  await mkdir(path.join(dir, `sites/${BIG_SITE}/hosts`), { recursive: true });
  for (let first = 0; first < hosts; first += HOSTS_PER_FILE) {
    const docs: string[] = [];
    for (let k = first; k < Math.min(hosts, first + HOSTS_PER_FILE); k++) docs.push(hostDoc(k));
    const file = `sites/${BIG_SITE}/hosts/hosts-${String(first / HOSTS_PER_FILE).padStart(3, '0')}.yaml`;
    await writeFile(path.join(dir, file), docs.join('---\n'));
  }
}
