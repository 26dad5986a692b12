// Names and patterns of the schemas in a module without TypeBox: the CLI's `convert` path needs only these, and
// loading TypeBox costs Node ≈0.15 s of CPU at start-up (BENCHMARKS.md, "Issue 20").

/** A profile's name, in a request and in PROFILES_FILE. */
export const PROFILE_NAME_PATTERN = '^[a-z0-9][a-z0-9_-]{0,39}$';

export const taskStatuses = ['queued', 'processing', 'completed', 'failed'] as const;
export type TaskStatus = (typeof taskStatuses)[number];

/** Every QC check, in the order the report lists them. */
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
