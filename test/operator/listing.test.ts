import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { getJson, postJson, startTestService, submit, type TestService } from '../helpers/service.js';

type Listed = {
  tasks: { task_id: string; status: string; queue_position?: number | null }[];
  next_cursor: string | null;
};

describe('task listing, queue positions and request validation (API only, nothing runs)', () => {
  let svc: TestService;
  const ids: string[] = [];
  before(async () => {
    // No worker: tasks stay queued, so positions and pages are stable.
    svc = await startTestService({}, { worker: false });
    for (let i = 0; i < 5; i++) ids.push(await submit(svc.url, `list/clip-${i}.mp4`));
  });
  after(async () => {
    await svc.close();
  });

  test('GET /tasks pages newest first with a cursor', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    const sizes: number[] = [];
    do {
      const query: string = cursor ? `?limit=2&cursor=${encodeURIComponent(cursor)}` : '?limit=2';
      const res = await getJson(`${svc.url}/tasks${query}`);
      assert.equal(res.status, 200);
      const page = res.body as unknown as Listed;
      sizes.push(page.tasks.length);
      seen.push(...page.tasks.map((t) => t.task_id));
      cursor = page.next_cursor;
    } while (cursor);
    assert.deepEqual(sizes, [2, 2, 1]);
    assert.deepEqual(seen, [...ids].reverse());
    const all = (await getJson(`${svc.url}/tasks`)).body as unknown as Listed;
    assert.equal(all.tasks.length, 5, 'default page size holds them all');
    assert.equal(all.next_cursor, null);
  });

  test('queued tasks show their place in line, and it moves up when one ahead leaves', async () => {
    const third = await getJson(`${svc.url}/status/${ids[2]}`);
    assert.equal(third.body.status, 'queued');
    assert.equal(third.body.queue_position, 3);
    assert.equal(third.body.eta_seconds, null);
    const cancelled = await postJson(`${svc.url}/tasks/${ids[0]}/cancel`, {});
    assert.equal(cancelled.status, 200);
    assert.equal(cancelled.body.status, 'failed');
    assert.equal(cancelled.body.queue_position, undefined, 'no position once it left the queue');
    assert.equal((await getJson(`${svc.url}/status/${ids[2]}`)).body.queue_position, 2);
    const listed = (await getJson(`${svc.url}/tasks?status=queued`)).body as unknown as Listed;
    assert.deepEqual(
      listed.tasks.map((t) => [t.task_id, t.queue_position]),
      [
        [ids[4], 4],
        [ids[3], 3],
        [ids[2], 2],
        [ids[1], 1],
      ],
    );
    const failed = (await getJson(`${svc.url}/tasks?status=failed`)).body as unknown as Listed;
    assert.deepEqual(
      failed.tasks.map((t) => t.task_id),
      [ids[0]],
    );
  });

  test('bad listing queries are refused', async () => {
    for (const query of [
      'limit=0',
      'limit=101',
      'limit=abc',
      'limit=-1',
      'status=done',
      'page=2',
      'cursor=garbage',
      'cursor=',
    ]) {
      const res = await getJson(`${svc.url}/tasks?${query}`);
      assert.equal(res.status, 400, query);
      assert.equal(res.body.error, 'bad_request');
    }
    const page = await getJson(`${svc.url}/tasks?page=2`);
    assert.equal(page.body.message, 'querystring has an unknown field "page"');
  });

  test('options and metadata are stored and shown in the status document', async () => {
    const metadata = { customer: 42, tags: ['a', 'b'], nested: { ok: true } };
    const id = await submit(svc.url, 'list/options.mp4', {
      ladder: 'seed',
      segment_duration: 2,
      formats: ['hls'],
      output_prefix: 'customers/42/run-1',
      metadata,
    });
    const doc = (await getJson(`${svc.url}/status/${id}`)).body;
    assert.deepEqual(doc.metadata, metadata);
    assert.deepEqual(doc.options, {
      ladder: 'seed',
      segment_duration: 2,
      formats: ['hls'],
      output_prefix: 'customers/42/run-1',
    });
    const plain = (await getJson(`${svc.url}/status/${ids[1]}`)).body;
    assert.equal(plain.metadata, null);
    assert.deepEqual(plain.options, {});
  });

  test('invalid options are refused with a reason, before anything is queued', async () => {
    const before = ((await getJson(`${svc.url}/tasks?limit=100`)).body as unknown as Listed).tasks.length;
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ ladder: 'nope' }, /unknown profile "nope"; known profiles: default, seed, high/],
      [{ ladder: 'Bad Name' }, /./],
      [{ ladder: [] }, /./],
      [{ ladder: [{ height: 8, bitrate: 500_000 }] }, /./],
      [{ ladder: [{ height: 360, bitrate: '800k' }] }, /./],
      [{ ladder: [{ height: 360, bitrate: 800_000, extra: 1 }] }, /./],
      [{ segment_duration: 0.5 }, /./],
      [{ segment_duration: '2' }, /./],
      [{ formats: [] }, /./],
      [{ formats: ['mp4'] }, /./],
      [{ formats: ['dash', 'dash'] }, /./],
      [{ output_prefix: '../escape' }, /output_prefix must not contain/],
      [{ output_prefix: '/abs' }, /output_prefix must be a relative key/],
      [{ output_prefix: 'a//b' }, /output_prefix/],
      [{ metadata: ['not', 'an', 'object'] }, /./],
      [{ metadata: 'text' }, /./],
      [{ metadata: { blob: 'x'.repeat(5000) } }, /metadata must be at most 4096 bytes/],
      [{ unknown_option: true }, /^body has an unknown field "unknown_option"$/],
      [
        { ladder: [{ height: 720, bitrate: 2_800_000, crf: 20 }] },
        /body\/ladder\/0 has an unknown field "crf"/,
      ],
    ];
    for (const [extra, message] of cases) {
      const res = await postJson(`${svc.url}/encode`, { video_filename: 'list/x.mp4', ...extra });
      assert.equal(res.status, 400, JSON.stringify(extra));
      assert.equal(res.body.error, 'bad_request');
      assert.match(String(res.body.message), message, JSON.stringify(extra));
    }
    const typo = await postJson(`${svc.url}/encode`, { vidoe_filename: 'list/x.mp4' });
    assert.equal(typo.status, 400);
    assert.deepEqual(typo.body, {
      error: 'bad_request',
      message: "body must have required property 'video_filename'",
    });
    const typoBeside = await postJson(`${svc.url}/plan`, {
      video_filename: 'list/x.mp4',
      vidoe_filename: 'x',
    });
    assert.deepEqual(typoBeside.body, {
      error: 'bad_request',
      message: 'body has an unknown field "vidoe_filename"',
    });
    const res = await postJson(`${svc.url}/encode?dry_run=maybe`, { video_filename: 'list/x.mp4' });
    assert.equal(res.status, 400);
    const after = ((await getJson(`${svc.url}/tasks?limit=100`)).body as unknown as Listed).tasks.length;
    assert.equal(after, before, 'no task was created');
  });
});
