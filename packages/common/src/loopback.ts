import { isIPv4, isIPv6 } from 'node:net';

/**
 * True when `host` only accepts connections from this machine: `localhost`,
 * 127.0.0.0/8, `::1` (or 127.x as an IPv4-mapped IPv6 address). Any other
 * name or address (`0.0.0.0`, `::`, a LAN address, a host name) is not.
 */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost') return true;
  if (isIPv4(h)) return h.startsWith('127.');
  if (isIPv6(h)) {
    if (h === '::1' || /^(0{0,4}:){7}0{0,3}1$/.test(h)) return true;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
    return mapped !== null && (mapped[1] as string).startsWith('127.');
  }
  return false;
}
