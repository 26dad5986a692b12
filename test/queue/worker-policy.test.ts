import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TaskFailure } from '../../src/domain/failures.js';
import { classifyRunEnd, throttledProgress, type ProgressUpdate } from '../../src/queue/worker-policy.js';

test('a run that ended: handed back, retried with a doubling backoff, or failed', () => {
  const base = { maxAttempts: 3, retryBackoffMs: 100 };
  const lost = new TaskFailure('storage_error', 'the output storage is away');
  assert.deepEqual(classifyRunEnd({ ...base, err: lost, abortReason: 'shutdown', attempt: 1 }), {
    kind: 'hand_back',
    reason: 'shutdown',
  });
  assert.equal(
    classifyRunEnd({ ...base, err: lost, abortReason: 'lease_lost', attempt: 3 }).kind,
    'hand_back',
  );
  const first = classifyRunEnd({ ...base, err: lost, attempt: 1 });
  const second = classifyRunEnd({ ...base, err: lost, attempt: 2 });
  assert.ok(first.kind === 'retry' && second.kind === 'retry');
  assert.deepEqual([first.delayMs, second.delayMs], [100, 200]);
  assert.equal(classifyRunEnd({ ...base, err: lost, attempt: 3 }).kind, 'fail');
  const bad = classifyRunEnd({ ...base, err: new TaskFailure('not_a_video', 'not a video'), attempt: 1 });
  assert.equal(bad.kind, 'fail');
  const cancelled = classifyRunEnd({
    ...base,
    err: new Error('aborted'),
    abortReason: 'cancelled',
    attempt: 1,
  });
  assert.ok(cancelled.kind === 'fail' && cancelled.failure.code === 'cancelled');
  const unknown = classifyRunEnd({ ...base, err: new Error('/secret/path exploded'), attempt: 1 });
  assert.ok(unknown.kind === 'retry' && unknown.failure.code === 'internal');
  assert.doesNotMatch(unknown.failure.message, /secret/);
});

test('progress: one write per stage change, at most one per interval within a stage, clamped and rounded', () => {
  const writes: ProgressUpdate[] = [];
  const report = throttledProgress((u) => writes.push(u));
  report('fetch', 1);
  report('fetch', 2);
  report('encode', 10.04, { etaSeconds: 5 });
  report('encode', 11);
  report('publish', 140);
  assert.deepEqual(
    writes.map((w) => [w.stage, w.progress, w.etaSeconds]),
    [
      ['fetch', 1, undefined],
      ['encode', 10, 5],
      ['publish', 100, undefined],
    ],
  );
});
