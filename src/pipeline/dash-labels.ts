import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** An AdaptationSet's label, found by the directory its segments are in (`<dir>/init.mp4`). */
export interface DashLabel {
  dir: string;
  label: string;
}

/** The AdaptationSet children that come after `Label` in the MPD schema (RepresentationBase, then its own). */
const AFTER_LABEL =
  /<(Label|ProducerReferenceTime|ContentPopularityRate|Resync|Accessibility|Role|Rating|Viewpoint|ContentComponent|BaseURL|SegmentBase|SegmentList|SegmentTemplate|Representation)\b/;

/**
 * Gives each audio and text AdaptationSet its `<Label>` (the name players list in their language menus):
 * Shaka Packager 3.4.2 has no field for it, where HLS gets `NAME` from `hls_name`.
 */
export async function labelDashTracks(pkgDir: string, manifest: string, labels: DashLabel[]): Promise<void> {
  if (!labels.length) return;
  const file = path.join(pkgDir, manifest);
  const before = await readFile(file, 'utf8');
  const after = before.replace(/<AdaptationSet\b[^>]*>[\s\S]*?<\/AdaptationSet>/g, (set) => {
    const found = labels.find((l) => set.includes(`initialization="${escapeXml(l.dir)}/init.mp4"`));
    if (!found || /<Label\b/.test(set)) return set;
    const next = AFTER_LABEL.exec(set.slice(set.indexOf('>') + 1));
    if (!next) return set;
    const at = set.indexOf('>') + 1 + next.index;
    // The indentation of the element it goes before, so the manifest stays readable.
    const indent = /[ \t]*$/.exec(set.slice(0, at))?.[0] ?? '';
    return `${set.slice(0, at)}<Label>${escapeXml(found.label)}</Label>\n${indent}${set.slice(at)}`;
  });
  if (after !== before) await writeFile(file, after);
}

function escapeXml(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
