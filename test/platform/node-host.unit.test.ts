import { withoutControlPlanes } from '../../platform/node-host';

test('a host snapshot leaves out control planes\' namespaces and keeps the node\'s and the host\'s own lines', () => {
  const snap = {
    netns: 'ps-node-1a2b (id: 4)\nps-0f3c9a (id: 3)\nother (id: 1)',
    links: '7: psh1a2b@if2: <UP> mtu 1500\n9: ps0f3c9ah@if2: <UP> mtu 1500 link-netns ps-0f3c9a\n1: lo: <LOOPBACK>',
    addresses: '9: ps0f3c9ah    inet 10.250.7.1/24 scope global ps0f3c9ah\n7: psh1a2b    inet 10.233.3.1/24 scope global psh1a2b',
    routes: '10.250.7.0/24 dev ps0f3c9ah proto kernel scope link src 10.250.7.1\n10.234.3.0/24 via 10.233.3.2 dev psh1a2b',
    mounts: '/run/netns/ps-0f3c9a\n/run/netns/ps-node-1a2b\n/tmp/pipeline-sidecars-node-abc/rootfs',
  };
  expect(withoutControlPlanes(snap)).toEqual({
    netns: 'ps-node-1a2b (id: 4)\nother (id: 1)',
    links: '7: psh1a2b@if2: <UP> mtu 1500\n1: lo: <LOOPBACK>',
    addresses: '7: psh1a2b    inet 10.233.3.1/24 scope global psh1a2b',
    routes: '10.234.3.0/24 via 10.233.3.2 dev psh1a2b',
    mounts: '/run/netns/ps-node-1a2b\n/tmp/pipeline-sidecars-node-abc/rootfs',
  });
});
