import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestService, type TestService } from '../helpers/service.js';

describe('a worker process with METRICS_PORT', () => {
  let svc: TestService;
  before(async () => {
    svc = await startTestService(
      { METRICS_PORT: '0', API_KEY: 'probe-test-key' },
      { api: false, worker: true },
    );
  });
  after(async () => {
    await svc.close();
  });

  test('serves /healthz, /readyz and /metrics, and nothing of the API', async () => {
    assert.ok(svc.url.startsWith('http://127.0.0.1:'), 'the probe server listens');
    assert.equal((await fetch(`${svc.url}/healthz`)).status, 200);
    const ready = await fetch(`${svc.url}/readyz`);
    assert.equal(ready.status, 200, await ready.clone().text());
    const metrics = await fetch(`${svc.url}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(await metrics.text(), /^dvc_worker_active_tasks /m);
    const encode = await fetch(`${svc.url}/encode`, { method: 'POST', body: '{}' });
    assert.equal(encode.status, 404);
  });
});
