import type shaka from 'shaka-player/dist/shaka-player.compiled-es2021.js';
import type { Api } from './api.js';
import { byId } from './dom.js';

/** Positions of the range input: fine enough for an hour-long video, a step per 3.6 s at worst. */
const STEPS = 1000;

/**
 * The seek bar under the video: follows the playback, seeks when moved, and shows the thumbnail of the moment
 * under the pointer (or the handle, while dragging) above it, from the player's image track (the DASH
 * manifest's, or the package's thumbnails.vtt added for HLS).
 */
export class ScrubBar {
  private readonly bar = byId<HTMLInputElement>('seek-bar');
  private readonly preview = byId('thumbnail-preview');
  private readonly picture = byId('thumbnail-picture');
  private readonly time = byId('thumbnail-time');
  private player: shaka.Player | undefined;
  private track: number | undefined;
  /** Sheet URL → what the page shows it from (a blob: URL when the API key is needed for it). */
  private readonly sheets = new Map<string, Promise<string>>();
  private asked = 0;
  private dragging = false;

  constructor(
    private readonly video: HTMLVideoElement,
    private readonly api: Api,
  ) {
    video.addEventListener('timeupdate', () => this.follow());
    video.addEventListener('durationchange', () => this.follow());
    this.bar.addEventListener('input', () => {
      this.dragging = true;
      const t = this.timeAt(Number(this.bar.value) / STEPS);
      if (t !== undefined) {
        this.video.currentTime = t;
        void this.show(t, Number(this.bar.value) / STEPS);
      }
    });
    this.bar.addEventListener('change', () => {
      this.dragging = false;
      this.hide();
    });
    this.bar.addEventListener('pointermove', (e) => {
      const box = this.bar.getBoundingClientRect();
      const fraction = Math.min(1, Math.max(0, (e.clientX - box.left) / box.width));
      const t = this.timeAt(fraction);
      if (t !== undefined) void this.show(t, fraction);
    });
    this.bar.addEventListener('pointerleave', () => {
      if (!this.dragging) this.hide();
    });
    this.bar.addEventListener('blur', () => this.hide());
  }

  /**
   * Uses the player's thumbnails for the content it has just loaded: its image track (DASH), else the WebVTT
   * track at `vttUrl` when there is one (HLS has no image track here). Without either, no preview is shown.
   */
  async attach(player: shaka.Player, vttUrl: string | undefined): Promise<void> {
    this.player = player;
    this.track = undefined;
    this.hide();
    for (const src of this.sheets.values()) {
      void src.then((url) => url.startsWith('blob:') && URL.revokeObjectURL(url)).catch(() => undefined);
    }
    this.sheets.clear();
    let track = player.getImageTracks()[0];
    if (!track && vttUrl) {
      track = await player.addThumbnailsTrack(vttUrl, 'text/vtt').catch(() => undefined);
    }
    if (player !== this.player) return;
    this.track = track?.id;
    this.bar.dataset.thumbnails = String(track !== undefined);
    this.follow();
  }

  private follow(): void {
    if (this.dragging) return;
    const d = this.video.duration;
    this.bar.value = String(d > 0 ? Math.round((this.video.currentTime / d) * STEPS) : 0);
  }

  private timeAt(fraction: number): number | undefined {
    const d = this.video.duration;
    return d > 0 && Number.isFinite(d) ? fraction * d : undefined;
  }

  private async show(t: number, fraction: number): Promise<void> {
    const { player, track } = this;
    if (!player || track === undefined) return;
    const asked = ++this.asked;
    const thumb = await player.getThumbnails(track, t).catch(() => null);
    // A WebVTT track's URIs keep their `#xywh=` fragment: the sheet is the same file for every tile.
    const uri = thumb?.uris[0]?.split('#')[0];
    if (!thumb || !uri) return;
    let src = this.sheets.get(uri);
    if (!src) {
      src = this.api.imageUrl(uri);
      this.sheets.set(uri, src);
      src.catch(() => this.sheets.delete(uri));
    }
    const url = await src.catch(() => undefined);
    // A later position was asked for meanwhile: its answer is the one to show.
    if (!url || asked !== this.asked) return;
    const p = this.picture.style;
    p.width = `${thumb.width}px`;
    p.height = `${thumb.height}px`;
    p.backgroundImage = `url("${url}")`;
    p.backgroundPosition = `-${thumb.positionX}px -${thumb.positionY}px`;
    p.backgroundSize = `${thumb.imageWidth}px ${thumb.imageHeight}px`;
    this.picture.dataset.sheet = uri;
    this.picture.dataset.x = String(thumb.positionX);
    this.picture.dataset.y = String(thumb.positionY);
    this.time.textContent = clock(t);
    // Centred on the position, but kept within the bar at both ends.
    const barWidth = this.bar.clientWidth;
    const half = thumb.width / 2 + 4;
    const left = Math.min(Math.max(fraction * barWidth, half), Math.max(half, barWidth - half));
    this.preview.style.left = `${Math.round(left)}px`;
    this.preview.hidden = false;
  }

  private hide(): void {
    this.asked++;
    this.preview.hidden = true;
  }
}

function clock(seconds: number): string {
  const s = Math.floor(seconds);
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(h ? 2 : 1, '0');
  const ss = String(s % 60).padStart(2, '0');
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}
