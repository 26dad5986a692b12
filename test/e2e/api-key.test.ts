import assert from 'node:assert/strict';
import { mkdir, rm } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { startTestService, type TestService } from '../helpers/service.js';

describe('API_KEY protects every route but health', () => {
  let svc: TestService;
  const key = 'k3y-for-tests-only';
  before(async () => {
    svc = await startTestService({ API_KEY: key }, { worker: false });
  });
  after(async () => {
    await svc.close();
  });

  test('without or with a wrong X-API-Key: 401, and the key is not echoed', async () => {
    const attempts: Record<string, string>[] = [{}, { 'x-api-key': 'wrong' }, { 'x-api-key': key + 'x' }];
    for (const headers of attempts) {
      const res = await fetch(`${svc.url}/encode`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ video_filename: 'a.mp4' }),
      });
      assert.equal(res.status, 401);
      const text = await res.text();
      assert.match(text, /unauthorized/);
      assert.ok(!text.includes(key));
    }
    assert.equal((await fetch(`${svc.url}/status/x`)).status, 401);
  });

  test('with the right key the API answers; /healthz needs no key', async () => {
    const res = await fetch(`${svc.url}/encode`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': key },
      body: JSON.stringify({ video_filename: 'a.mp4' }),
    });
    assert.equal(res.status, 202);
    const { task_id } = (await res.json()) as { task_id: string };
    const status = await fetch(`${svc.url}/status/${task_id}`, { headers: { 'x-api-key': key } });
    assert.equal(status.status, 200);
    assert.equal(((await status.json()) as { status: string }).status, 'queued');
    assert.equal((await fetch(`${svc.url}/healthz`)).status, 200);
  });

  test('/readyz needs no key, and tells why a check fails only to a request with the key', async () => {
    await rm(svc.outputDir, { recursive: true });
    try {
      const anonymous = await fetch(`${svc.url}/readyz`);
      assert.equal(anonymous.status, 503);
      const text = await anonymous.text();
      assert.match(text, /"output_storage":"failing \(the reason is shown with X-API-Key\)"/);
      assert.ok(!text.includes(svc.outputDir), 'no directory named to a probe without the key');
      const keyed = await fetch(`${svc.url}/readyz`, { headers: { 'x-api-key': key } });
      assert.equal(keyed.status, 503);
      const { checks } = (await keyed.json()) as { checks: Record<string, string> };
      assert.match(checks.output_storage!, /ENOENT/);
      assert.equal(checks.queue, 'ok');
    } finally {
      await mkdir(svc.outputDir, { recursive: true });
    }
  });
});
