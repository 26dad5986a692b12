export interface XmlElement {
  /** Local name, without a namespace prefix. */
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

const entities: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decode(value: string): string {
  return value.replace(/&(#x[0-9a-f]+|#\d+|\w+);/gi, (whole, ref: string) => {
    if (ref[0] === '#') {
      const code = ref[1] === 'x' || ref[1] === 'X' ? parseInt(ref.slice(2), 16) : Number(ref.slice(1));
      return Number.isFinite(code) ? String.fromCodePoint(code) : whole;
    }
    return entities[ref] ?? whole;
  });
}

const localName = (qname: string) => qname.slice(qname.indexOf(':') + 1);

/**
 * Reads the element tree of a small XML document such as an MPD (elements, attributes, text; no DTDs).
 * Validity is the schema check's job: this only needs well-nested tags, and throws when they are not.
 */
export function parseXml(source: string): XmlElement {
  const text = source.replace(/<!--[\s\S]*?-->/g, '').replace(/<\?[\s\S]*?\?>/g, '');
  if (/<!DOCTYPE/i.test(text)) throw new Error('DOCTYPE declarations are not accepted');
  const root: XmlElement = { name: '#document', attrs: {}, children: [], text: '' };
  const stack: XmlElement[] = [root];
  const tag =
    /<(\/?)([A-Za-z_][\w:.-]*)((?:\s+[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>|<!\[CDATA\[([\s\S]*?)\]\]>/g;
  let last = 0;
  for (let m = tag.exec(text); m; m = tag.exec(text)) {
    const top = stack[stack.length - 1]!;
    const between = text.slice(last, m.index);
    if (between.includes('<')) throw new Error(`malformed XML near "${between.trim().slice(0, 40)}"`);
    top.text += decode(between);
    last = tag.lastIndex;
    if (m[5] !== undefined) {
      top.text += m[5];
      continue;
    }
    const [, closing, qname, rawAttrs, selfClosing] = m;
    const name = localName(qname!);
    if (closing) {
      if (stack.length < 2 || top.name !== name) throw new Error(`unexpected closing tag </${qname}>`);
      top.text = top.text.trim();
      stack.pop();
      continue;
    }
    const attrs: Record<string, string> = {};
    for (const a of rawAttrs!.matchAll(/([^\s=]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) {
      attrs[localName(a[1]!)] = decode(a[2] ?? a[3] ?? '');
    }
    const el: XmlElement = { name, attrs, children: [], text: '' };
    top.children.push(el);
    if (!selfClosing) stack.push(el);
  }
  if (text.slice(last).includes('<')) throw new Error('malformed XML at the end of the document');
  if (stack.length !== 1) throw new Error(`element <${stack[stack.length - 1]!.name}> is not closed`);
  const [doc, ...rest] = root.children;
  if (!doc || rest.length) throw new Error('an XML document has exactly one root element');
  return doc;
}

export function childrenNamed(el: XmlElement | undefined, name: string): XmlElement[] {
  return el ? el.children.filter((c) => c.name === name) : [];
}

export function childNamed(el: XmlElement | undefined, name: string): XmlElement | undefined {
  return el?.children.find((c) => c.name === name);
}
