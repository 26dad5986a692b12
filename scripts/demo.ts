// Submits one video to a running server and follows it to the end, as a client would.
// Usage: node scripts/demo.mjs BASE_URL VIDEO_FILENAME
interface StatusDocument {
  status: string;
  stage: string | null;
  progress: number;
  error: string | null;
  output: {
    manifest?: { key: string };
    hls_master?: { key: string };
    poster: { key: string };
    renditions: { width: number; height: number; bitrate: number }[];
  };
}

const [base, video] = process.argv.slice(2);
const headers: Record<string, string> = { 'content-type': 'application/json' };
if (process.env.API_KEY) headers['x-api-key'] = process.env.API_KEY;

for (let i = 0; ; i++) {
  try {
    if ((await fetch(`${base}/healthz`)).ok) break;
  } catch {
    // not listening yet
  }
  if (i > 100) throw new Error(`no server at ${base}`);
  await new Promise((r) => setTimeout(r, 100));
}

const res = await fetch(`${base}/encode`, {
  method: 'POST',
  headers,
  body: JSON.stringify({ video_filename: video }),
});
const { task_id: id } = (await res.json()) as { task_id: string };
console.log(`POST /encode ${video} → task ${id}`);
let last = '';
for (;;) {
  const doc = (await (await fetch(`${base}/status/${id}`, { headers })).json()) as StatusDocument;
  const line = `${doc.status} ${doc.stage ?? ''} ${Math.round(doc.progress)}%`;
  if (line !== last) console.log(`  ${line}`);
  last = line;
  if (doc.status === 'failed') {
    console.log(`  failed: ${doc.error}`);
    process.exit(1);
  }
  if (doc.status === 'completed') {
    const o = doc.output;
    console.log(`  DASH manifest: ${o.manifest?.key}  HLS: ${o.hls_master?.key}  poster: ${o.poster.key}`);
    console.log(
      `  renditions: ${o.renditions.map((r) => `${r.width}x${r.height}@${Math.round(r.bitrate / 1000)}k`).join(', ')}`,
    );
    break;
  }
  await new Promise((r) => setTimeout(r, 300));
}
