/** The outcome of one check of a package; `detail` says what was found, in words. */
export interface QcCheck {
  name: QcCheckName;
  passed: boolean;
  detail: string;
}

/** Every check, in the order the report lists them. */
export const qcCheckNames = [
  'manifests_parse',
  'representations',
  'segments_exist',
  'segment_alignment',
  'segment_durations',
  'av_durations',
  'mpd_schema',
  'thumbnails',
] as const;

export type QcCheckName = (typeof qcCheckNames)[number];

/** PSNR (dB) and SSIM (0..1) of a rendition against the source scaled to its size, averaged over frames. */
export interface QualityScore {
  rendition: string;
  psnr?: number;
  ssim?: number;
  /** Why the rendition could not be measured (the measurement is informative: it never fails a task). */
  error?: string;
}

export interface QcReport {
  passed: boolean;
  checks: QcCheck[];
  quality?: QualityScore[];
}

/** One line a person reads: the checks that failed and why. */
export function describeFailures(report: QcReport, maxLength = 600): string {
  const text = report.checks
    .filter((c) => !c.passed)
    .map((c) => `${c.name}: ${c.detail}`)
    .join('; ');
  return text.length > maxLength ? `${text.slice(0, maxLength - 1)}…` : text;
}
