import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';

/** Addresses a callback may never reach unless CALLBACK_ALLOW_PRIVATE is set: this host, private networks, cloud metadata. */
const blocked = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  blocked.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  // ::/96 holds ::, ::1 and the deprecated IPv4-compatible form (::127.0.0.1).
  ['::', 96],
  ['fec0::', 10],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
  ['64:ff9b::', 96],
  // Translation prefixes that reach IPv4 on networks that route them: local-use NAT64 (RFC 8215), 6to4
  // (RFC 3056, deprecated) and SIIT's IPv4-translated form (::ffff:0:a.b.c.d). No public receiver needs them.
  ['64:ff9b:1::', 48],
  ['2002::', 16],
  ['::ffff:0:0:0', 96],
] as const) {
  blocked.addSubnet(net, prefix, 'ipv6');
}

export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return true;
  if (family === 6) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (mapped) return blocked.check(mapped[1]!, 'ipv4');
    return blocked.check(address, 'ipv6');
  }
  return blocked.check(address, 'ipv4');
}

export class CallbackTargetError extends Error {
  override name = 'CallbackTargetError';
  /** Retrying cannot help: the notifier gives up at once. */
  readonly permanent = true;
}

/**
 * Checks the URL's form (http(s), no credentials, no private IP literal unless `allowPrivate`): Node
 * connects to an IP literal with no lookup, so guardedLookup only sees names. Throws a CallbackTargetError.
 */
export function assertCallbackUrl(raw: string, options: { allowPrivate?: boolean } = {}): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new CallbackTargetError('callback_url is not a valid URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new CallbackTargetError('callback_url must use http or https');
  }
  if (url.username || url.password) throw new CallbackTargetError('callback_url must not carry credentials');
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!options.allowPrivate && isIP(host) && isPrivateAddress(host)) {
    throw new CallbackTargetError(
      `callback_url points at ${host}, a private, loopback or link-local address (set CALLBACK_ALLOW_PRIVATE=true for internal receivers)`,
    );
  }
  return url;
}

/**
 * A DNS lookup for http.request that refuses private addresses. It runs at connection time, on the address
 * actually connected to, so a name that resolves to loopback (or re-resolves to it later) is refused too.
 */
export function guardedLookup(allowPrivate: boolean): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, '', 0);
      const allowed = allowPrivate ? addresses : addresses.filter((a) => !isPrivateAddress(a.address));
      if (allowed.length === 0) {
        const e = new CallbackTargetError(
          `callback host ${hostname} resolves to a private or loopback address`,
        );
        return callback(e as NodeJS.ErrnoException, '', 0);
      }
      if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, allowed);
      callback(null, allowed[0]!.address, allowed[0]!.family);
    });
  };
}
