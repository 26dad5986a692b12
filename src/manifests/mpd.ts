import { childNamed, childrenNamed, parseXml, type XmlElement } from './xml.js';

export interface MediaSegment {
  /** Relative to the manifest. */
  url: string;
  /** Seconds on the media timeline. */
  start: number;
  duration: number;
}

export interface ManifestRepresentation {
  id: string;
  contentType: 'video' | 'audio' | 'text' | 'other';
  bandwidth: number;
  /** RFC 6381 codec string, e.g. `avc1.64001f`, `av01.0.04M.08`. */
  codecs?: string;
  width?: number;
  height?: number;
  init?: string;
  segments: MediaSegment[];
}

export interface ParsedManifest {
  type: string;
  /** Seconds, from mediaPresentationDuration. */
  duration?: number;
  representations: ManifestRepresentation[];
}

/**
 * Each representation's init and media segments (start, duration) in a DASH manifest: SegmentTemplate with a
 * timeline or a fixed duration, on the AdaptationSet or the Representation (what packagers write).
 */
export function parseManifest(xml: string): ParsedManifest {
  const mpd = parseXml(xml);
  if (mpd.name !== 'MPD') throw new Error(`the root element is <${mpd.name}>, not <MPD>`);
  const duration = parseIsoDuration(mpd.attrs.mediaPresentationDuration);
  const representations: ManifestRepresentation[] = [];
  for (const period of childrenNamed(mpd, 'Period')) {
    for (const set of childrenNamed(period, 'AdaptationSet')) {
      for (const rep of childrenNamed(set, 'Representation')) {
        const template = mergeTemplates(
          childNamed(set, 'SegmentTemplate'),
          childNamed(rep, 'SegmentTemplate'),
        );
        if (!template) throw new Error(`representation ${rep.attrs.id ?? '?'} has no SegmentTemplate`);
        const attr = (name: string) => rep.attrs[name] ?? set.attrs[name];
        const kind = contentTypeOf(attr('contentType'), attr('mimeType'));
        const vars = { RepresentationID: rep.attrs.id ?? '', Bandwidth: rep.attrs.bandwidth ?? '' };
        representations.push({
          id: rep.attrs.id ?? '',
          contentType: kind,
          bandwidth: Number(rep.attrs.bandwidth),
          codecs: attr('codecs'),
          width: numberOrUndefined(attr('width')),
          height: numberOrUndefined(attr('height')),
          init: template.attrs.initialization && fill(template.attrs.initialization, vars),
          segments: segmentsOf(template, vars, duration),
        });
      }
    }
  }
  return { type: mpd.attrs.type ?? 'static', duration, representations };
}

function mergeTemplates(outer?: XmlElement, inner?: XmlElement): XmlElement | undefined {
  if (!outer) return inner;
  if (!inner) return outer;
  return {
    name: 'SegmentTemplate',
    attrs: { ...outer.attrs, ...inner.attrs },
    children: inner.children.length ? inner.children : outer.children,
    text: '',
  };
}

function segmentsOf(
  template: XmlElement,
  vars: Record<string, string>,
  presentationDuration: number | undefined,
): MediaSegment[] {
  const media = template.attrs.media;
  if (!media) throw new Error('a SegmentTemplate has no media attribute');
  const timescale = Number(template.attrs.timescale ?? 1);
  const startNumber = Number(template.attrs.startNumber ?? 1);
  const segments: MediaSegment[] = [];
  const timeline = childNamed(template, 'SegmentTimeline');
  if (timeline) {
    let time = 0;
    let number = startNumber;
    for (const s of childrenNamed(timeline, 'S')) {
      if (s.attrs.t !== undefined) time = Number(s.attrs.t);
      const d = Number(s.attrs.d);
      const repeat = Number(s.attrs.r ?? 0);
      if (!(d > 0) || repeat < 0)
        throw new Error('a SegmentTimeline entry has no positive duration or repeat');
      for (let i = 0; i <= repeat; i++) {
        segments.push({
          url: fill(media, { ...vars, Number: String(number), Time: String(time) }),
          start: time / timescale,
          duration: d / timescale,
        });
        time += d;
        number++;
      }
    }
    return segments;
  }
  const d = Number(template.attrs.duration);
  if (!(d > 0) || !presentationDuration)
    throw new Error('a SegmentTemplate has neither timeline nor duration');
  const count = Math.ceil(presentationDuration / (d / timescale) - 1e-9);
  for (let i = 0; i < count; i++) {
    const start = (i * d) / timescale;
    segments.push({
      url: fill(media, { ...vars, Number: String(startNumber + i), Time: String(i * d) }),
      start,
      duration: Math.min(d / timescale, presentationDuration - start),
    });
  }
  return segments;
}

/** Expands `$Number$`, `$Number%05d$`, `$Time$`, `$RepresentationID$`, `$Bandwidth$` and `$$`. */
function fill(template: string, vars: Record<string, string>): string {
  return template.replace(/\$(\w*)(?:%0(\d+)d)?\$/g, (whole, name: string, width?: string) => {
    if (name === '') return '$';
    const value = vars[name];
    if (value === undefined) return whole;
    return width ? value.padStart(Number(width), '0') : value;
  });
}

function contentTypeOf(contentType?: string, mimeType?: string): ManifestRepresentation['contentType'] {
  const kind = contentType ?? mimeType?.split('/')[0];
  return kind === 'video' || kind === 'audio' || kind === 'text' ? kind : 'other';
}

function numberOrUndefined(value: string | undefined): number | undefined {
  return value === undefined ? undefined : Number(value);
}

export function parseIsoDuration(value: string | undefined): number | undefined {
  const m = /^P(?:(\d+)D)?T?(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?$/.exec(value ?? '');
  if (!m) return undefined;
  return Number(m[1] ?? 0) * 86400 + Number(m[2] ?? 0) * 3600 + Number(m[3] ?? 0) * 60 + Number(m[4] ?? 0);
}
