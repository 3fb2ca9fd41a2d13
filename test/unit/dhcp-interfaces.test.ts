// The boot interfaces' addresses the DHCP sockets bind to, and which of them a reservation is on.
import assert from 'node:assert/strict';
import type { NetworkInterfaceInfo } from 'node:os';
import { test } from 'node:test';
import { bootAddresses, onLink } from '../../agent/dhcp/interfaces';

const v4 = (address: string, cidr: string): NetworkInterfaceInfo => ({
  ...{ address, cidr, family: 'IPv4', netmask: '255.255.255.0', mac: '52:54:00:00:00:01', internal: false },
});
const interfaces = {
  boot0: [v4('10.10.0.5', '10.10.0.5/24'), v4('10.11.0.5', '10.11.0.5/25')],
  office0: [v4('10.30.0.5', '10.30.0.5/24')],
  bare0: [],
};

test('each IPv4 address of the boot interfaces with its network', () => {
  assert.deepEqual(bootAddresses(['boot0'], interfaces), [
    { interface: 'boot0', address: '10.10.0.5', cidr: '10.10.0.0/24' },
    { interface: 'boot0', address: '10.11.0.5', cidr: '10.11.0.0/25' },
  ]);
  assert.throws(() => bootAddresses(['boot1'], interfaces), /^Error: boot interface boot1 does not exist$/);
  assert.throws(
    () => bootAddresses(['bare0'], interfaces),
    /^Error: boot interface bare0 has no IPv4 address$/,
  );
});

test('a reservation is on the boot address whose network holds it, or on none', () => {
  const addresses = bootAddresses(['boot0'], interfaces);
  assert.equal(onLink(addresses, '10.11.0.100')?.address, '10.11.0.5');
  assert.equal(onLink(addresses, '10.10.0.11')?.address, '10.10.0.5');
  assert.equal(onLink(addresses, '10.11.0.200'), undefined);
  assert.equal(onLink(addresses, '10.30.0.7'), undefined);
});
