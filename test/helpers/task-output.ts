import type { TaskOutput } from '../../src/domain/task.js';

/** The smallest valid result a task handler can return, for queue tests that encode nothing. */
export const minimalOutput = (prefix: string): TaskOutput => ({
  storage: 'local',
  prefix,
  poster: { key: `${prefix}/poster.jpg` },
  renditions: [],
  audio: false,
  duration: 1,
  files: 1,
  bytes: 1,
});
