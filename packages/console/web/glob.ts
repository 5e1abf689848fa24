// A path glob as a RegExp, for filtering the live stream in the browser
// (the server's search uses picomatch; this covers what people type there).

/**
 * Compiles `**`, `*`, `?` (and literal text) to an anchored RegExp over an
 * absolute path. A glob without a `/` matches the base name, as `*.conf`
 * would be read by a person.
 *
 * @example
 * globToRegExp('**\/*.conf').test('/etc/nginx/nginx.conf') // true
 */
export function globToRegExp(glob: string): RegExp {
  const pattern = glob.includes('/') ? glob : `**/${glob}`;
  let out = '';
  for (let i = 0; i < pattern.length; i += 1) {
    const c = pattern[i] as string;
    if (c === '*' && pattern[i + 1] === '*') {
      i += 1;
      if (pattern[i + 1] === '/') {
        i += 1;
        out += '(?:.*/)?';
      } else {
        out += '.*';
      }
    } else if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else out += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  // `**/x` also matches `/x` at the root of an absolute path.
  return new RegExp(`^/?${out.replace(/^\//, '')}$`);
}
