import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { labelDashTracks } from '../../src/pipeline/dash-labels.js';

const mpd = `<MPD>
  <Period id="0">
    <AdaptationSet id="1" contentType="audio" lang="en">
      <ContentProtection schemeIdUri="urn:mpeg:dash:mp4protection:2011" value="cenc"/>
      <Role schemeIdUri="urn:mpeg:dash:role:2011" value="main"/>
      <Representation id="1" bandwidth="128000">
        <SegmentTemplate initialization="media/audio/init.mp4" media="media/audio/$Number$.m4s"/>
      </Representation>
    </AdaptationSet>
    <AdaptationSet id="2" contentType="text" lang="fr">
      <Label>Kept</Label>
      <Representation id="2" bandwidth="256">
        <SegmentTemplate initialization="media/text/init.mp4" media="media/text/$Number$.m4s"/>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>
`;

test('each labelled AdaptationSet gets one Label where the schema puts it, escaped; one that has a Label keeps it', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'dvc-labels-'));
  try {
    await writeFile(path.join(dir, 'manifest.mpd'), mpd);
    await labelDashTracks(dir, 'manifest.mpd', [
      { dir: 'media/audio', label: 'Tom & Jerry <"1">' },
      { dir: 'media/text', label: 'Ignored' },
    ]);
    const out = await readFile(path.join(dir, 'manifest.mpd'), 'utf8');
    assert.match(
      out,
      /cenc"\/>\n {6}<Label>Tom &amp; Jerry &lt;&quot;1&quot;&gt;<\/Label>\n {6}<Role /,
      'after ContentProtection, before Role, at their indentation',
    );
    assert.equal(out.match(/<Label>/g)?.length, 2);
    assert.match(out, /<Label>Kept<\/Label>/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
