/**
 * The one Cookie request-header parser of the code base (RFC 6265 §4.2.1, §5.4): `name=value` pairs
 * separated by `;`, whitespace around names and values ignored, a value in double quotes unquoted.
 * Names match exactly (`XJSESSIONID` is not `JSESSIONID`, unlike httpd's substring search), the first
 * match wins, and a pair without `=` is skipped. Nothing is allocated until the cookie is found, so the
 * balancer can call it on every request.
 */

/** The characters `String.prototype.trim` removes (what the parsers trimmed before they were one). */
function isTrimmed(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d) || c === 0xa0 || c === 0xfeff || c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000;
}

/**
 * The value of the first cookie named exactly `name` in a Cookie header (several headers are read in
 * order, as if joined by `; `), or undefined. An empty name never matches.
 */
export function findCookie(header: string | readonly string[] | undefined, name: string): string | undefined {
  if (header === undefined || name === '') return undefined;
  if (typeof header !== 'string') {
    for (const h of header) {
      const v = findCookie(h, name);
      if (v !== undefined) return v;
    }
    return undefined;
  }
  const len = header.length;
  let i = 0;
  while (i < len) {
    let end = header.indexOf(';', i);
    if (end < 0) end = len;
    let at = i;
    while (at < end && isTrimmed(header.charCodeAt(at))) at++;
    if (header.startsWith(name, at)) {
      let eq = at + name.length;
      while (eq < end && isTrimmed(header.charCodeAt(eq))) eq++;
      if (eq < end && header.charCodeAt(eq) === 0x3d) {
        const v = header.slice(eq + 1, end).trim();
        return v.length >= 2 && v.charCodeAt(0) === 0x22 && v.charCodeAt(v.length - 1) === 0x22 ? v.slice(1, -1) : v;
      }
    }
    i = end + 1;
  }
  return undefined;
}
