import shaka from 'shaka-player/dist/shaka-player.compiled-es2021.js';
import type { Api } from './api.js';
import { byId, el } from './dom.js';
import { ScrubBar } from './scrub-bar.js';
import { playableOutput, type PlayableOutput, type StatusDocument } from './types.js';
import { displayName, formatBitrate, playerErrorWords } from './words.js';

export type StreamFormat = 'dash' | 'hls';

/**
 * The player panel: Shaka Player on a <video>, the DASH manifest by default with a switch to the HLS
 * master playlist of the same segments, a seek bar that shows the thumbnail of the moment under the pointer, the renditions with the one playing marked, the poster and the
 * manifest URL to copy.
 */
export class PlayerPanel {
  private readonly panel = byId('player-panel');
  private readonly title = byId('player-title');
  private readonly video = byId<HTMLVideoElement>('video');
  private readonly formats = byId<HTMLFieldSetElement>('format-switch');
  private readonly error = byId('player-error');
  private readonly urlInput = byId<HTMLInputElement>('manifest-url');
  private readonly copyButton = byId<HTMLButtonElement>('copy-url');
  private readonly copyMessage = byId('copy-message');
  private readonly renditions = byId<HTMLTableElement>('renditions');
  private readonly poster = byId<HTMLImageElement>('poster');
  private readonly drmForm = byId<HTMLFormElement>('drm-form');
  private readonly drmMessage = byId('drm-message');
  private readonly drmKeys = byId('drm-keys');
  private readonly drmError = byId('drm-error');
  /** The keys the operator entered for the open task (key ID → key, hex): in memory only, never stored. */
  private clearKeys: Record<string, string> = {};
  private readonly scrub: ScrubBar;
  private readonly audioChoice = byId('audio-choice');
  private readonly audioSelect = byId<HTMLSelectElement>('audio-track');
  private readonly textChoice = byId('text-choice');
  private readonly textSelect = byId<HTMLSelectElement>('text-track');
  private player: shaka.Player | undefined;
  private doc: StatusDocument | undefined;
  private posterUrl: string | undefined;
  private loading = 0;
  /** Set once an early package was replaced: added to manifest URLs as a query, past cached early ones. */
  private fresh: string | undefined;

  constructor(private readonly api: Api) {
    shaka.polyfill.installAll();
    this.scrub = new ScrubBar(this.video, api);
    this.formats.addEventListener('change', () => {
      // The other format goes on from the same moment, or from the start when this one had finished.
      const v = this.video;
      const finished = v.ended || (v.duration > 0 && v.duration - v.currentTime < 0.5);
      if (this.doc) void this.load(this.format(), finished ? 0 : v.currentTime);
    });
    this.copyButton.addEventListener('click', () => void this.copy());
    this.drmForm.addEventListener('submit', (event) => {
      event.preventDefault();
      this.useKeys();
    });
    this.audioSelect.addEventListener('change', () => {
      const track = this.player?.getAudioTracks()[Number(this.audioSelect.value)];
      if (track) this.player?.selectAudioTrack(track);
    });
    this.textSelect.addEventListener('change', () => {
      const player = this.player;
      if (!player) return;
      // Off is no track selected.
      const track =
        this.textSelect.value === '' ? null : player.getTextTracks()[Number(this.textSelect.value)];
      player.selectTextTrack(track ?? null);
    });
  }

  /** The audio languages and subtitles of the loaded package, for the viewer to choose from. */
  private showTrackChoices(player: shaka.Player): void {
    const audio = player.getAudioTracks();
    this.audioSelect.replaceChildren(
      ...audio.map((t, i) => {
        const option = el('option');
        option.value = String(i);
        const described = t.roles.includes('description') || !!t.accessibilityPurpose;
        option.textContent =
          t.label ||
          `${trackLanguage(t.language) ?? `Audio ${i + 1}`}${described ? ' (audio description)' : ''}`;
        option.selected = t.active;
        return option;
      }),
    );
    this.audioChoice.hidden = audio.length < 2;
    const text = player.getTextTracks();
    const off = el('option');
    off.value = '';
    off.textContent = 'Off';
    this.textSelect.replaceChildren(
      off,
      ...text.map((t, i) => {
        const option = el('option');
        option.value = String(i);
        option.textContent =
          t.label || `${trackLanguage(t.language) ?? `Subtitles ${i + 1}`}${t.forced ? ' (forced)' : ''}`;
        return option;
      }),
    );
    this.textChoice.hidden = text.length === 0;
  }

  get taskId(): string | undefined {
    return this.doc?.task_id;
  }

  async open(doc: StatusDocument): Promise<void> {
    const output = playableOutput(doc);
    if (!output) return;
    this.doc = doc;
    this.fresh = undefined;
    this.panel.dataset.early = String(!doc.output);
    this.panel.hidden = false;
    this.title.textContent = `Player: ${displayName(doc.video_filename)}`;
    this.showRenditions(output);
    void this.showPoster(output);
    const hls = this.formats.querySelector<HTMLInputElement>('input[value="hls"]')!;
    hls.disabled = !output.hls_master;
    const dash = this.formats.querySelector<HTMLInputElement>('input[value="dash"]')!;
    dash.disabled = !output.manifest;
    if (!output.manifest) hls.checked = true;
    else if (!output.hls_master) dash.checked = true;
    this.title.focus();
    this.panel.scrollIntoView({ block: 'start' });
    if (this.askForKeys(output)) return;
    await this.load(this.format(), 0);
  }

  /**
   * An encrypted package plays only with its keys (ClearKey): the form asks for one per key ID and the player
   * waits. Returns whether it asked.
   */
  private askForKeys(output: PlayableOutput): boolean {
    this.clearKeys = {};
    this.drmKeys.replaceChildren();
    this.drmError.textContent = '';
    const encryption = output.encryption;
    this.drmForm.hidden = !encryption;
    if (!encryption) return false;
    void this.player?.unload();
    this.drmMessage.textContent =
      `This video is protected (${encryption.scheme}): enter its key to play it here, or play it in a ` +
      'player connected to your license server.';
    const seen = new Set<string>();
    for (const { label, key_id: keyId } of encryption.key_ids ?? []) {
      if (!keyId || seen.has(keyId)) continue;
      seen.add(keyId);
      const field = el('label');
      const input = el('input');
      input.type = 'password';
      input.autocomplete = 'off';
      input.spellcheck = false;
      input.dataset.keyId = keyId;
      field.append(`Key for ${label === 'default' ? 'the video' : label} (key ID ${keyId})`, input);
      this.drmKeys.append(field);
    }
    return true;
  }

  private useKeys(): void {
    const keys: Record<string, string> = {};
    for (const input of this.drmKeys.querySelectorAll<HTMLInputElement>('input[data-key-id]')) {
      const key = input.value.trim().replace(/^0x/i, '');
      if (!/^[0-9a-fA-F]{32}$/.test(key)) {
        this.drmError.textContent = 'A key is 32 hexadecimal digits.';
        input.focus();
        return;
      }
      keys[input.dataset.keyId!] = key.toLowerCase();
    }
    this.drmError.textContent = '';
    this.clearKeys = keys;
    void this.load(this.format(), 0);
  }

  /**
   * A task whose early package is playing here has completed: the full ladder replaced the manifest, so it is
   * loaded again from the same moment (its renditions and poster shown now).
   */
  async completed(doc: StatusDocument): Promise<void> {
    if (this.doc?.task_id !== doc.task_id || this.doc.output || !doc.output) return;
    const v = this.video;
    const at = v.ended ? 0 : v.currentTime;
    this.doc = doc;
    this.panel.dataset.early = 'false';
    this.showRenditions(doc.output);
    void this.showPoster(doc.output);
    // Manifests may be cached for a minute (MANIFEST_CACHE_CONTROL): the early one must not come back, now
    // or when the format is switched later.
    this.fresh = doc.updated_at;
    await this.load(this.format(), at);
  }

  private format(): StreamFormat {
    const checked = this.formats.querySelector<HTMLInputElement>('input[name="format"]:checked');
    return checked?.value === 'hls' ? 'hls' : 'dash';
  }

  private async ensurePlayer(): Promise<shaka.Player> {
    if (this.player) return this.player;
    if (!shaka.Player.isBrowserSupported()) throw new Error('this browser cannot play adaptive streams');
    const player = new shaka.Player();
    await player.attach(this.video);
    // The key goes to this service only, never to a bucket or CDN holding public output.
    player.getNetworkingEngine()?.registerRequestFilter((_type, request) => {
      const uri = request.uris[0];
      if (uri && this.api.isOwn(uri)) Object.assign(request.headers, this.api.headers());
    });
    player.addEventListener('error', (event) => {
      this.showError(playerErrorWords((event as unknown as { detail: unknown }).detail));
    });
    player.addEventListener('variantchanged', () => this.markActive());
    player.addEventListener('adaptation', () => this.markActive());
    this.player = player;
    return player;
  }

  private async load(format: StreamFormat, startTime: number): Promise<void> {
    const fresh = this.fresh;
    const output = this.doc && playableOutput(this.doc);
    if (!output) return;
    const attempt = ++this.loading;
    this.showError('');
    delete this.panel.dataset.loaded;
    const url = outputUrl(output, format === 'hls' ? output.hls_master : output.manifest);
    this.urlInput.value = url ?? '';
    if (!url) {
      this.showError(
        output.storage === 's3'
          ? 'This package is in a bucket without a public address: set PUBLIC_BASE_URL to play it here.'
          : `This task has no ${format === 'hls' ? 'HLS' : 'DASH'} output.`,
      );
      return;
    }
    if (output.encryption && Object.keys(this.clearKeys).length === 0) {
      this.showError('This video is protected: enter its key to play it.');
      return;
    }
    try {
      const player = await this.ensurePlayer();
      // ClearKey with the entered keys for a protected package; none for a clear one.
      player.resetConfiguration();
      if (output.encryption) player.configure({ drm: { clearKeys: this.clearKeys } });
      const target = fresh ? `${url}${url.includes('?') ? '&' : '?'}v=${encodeURIComponent(fresh)}` : url;
      await player.load(target, startTime > 0 ? startTime : null);
      await this.settled();
      if (attempt !== this.loading) return;
      await this.scrub.attach(player, outputUrl(output, output.thumbnails?.vtt));
      if (attempt !== this.loading) return;
      this.panel.dataset.loaded = format;
      this.markActive();
      this.showTrackChoices(player);
      await this.video.play().catch(() => {
        // Autoplay may be refused without a user gesture: the controls are there to start it.
      });
    } catch (err) {
      // A newer load interrupts an older one (Shaka error 7000): not something to show.
      if (attempt !== this.loading || (err as { code?: number }).code === 7000) return;
      this.showError(playerErrorWords(err));
    }
  }

  /**
   * Waits until the video knows its metadata and is done seeking: Shaka applies the start time when the
   * metadata arrives, which may be after load() resolved. Until then a seek of the person's would be undone.
   */
  private async settled(): Promise<void> {
    const v = this.video;
    // Bounded: if the media never loads, the player's error event says why; the page must not hang on it.
    const once = (event: string) =>
      new Promise((resolve) => {
        v.addEventListener(event, resolve, { once: true });
        window.setTimeout(resolve, 15_000);
      });
    if (v.readyState < HTMLMediaElement.HAVE_METADATA) await once('loadedmetadata');
    if (v.seeking) await once('seeked');
  }

  private showError(text: string): void {
    this.error.textContent = text;
  }

  private showRenditions(output: PlayableOutput): void {
    const body = this.renditions.tBodies[0]!;
    body.replaceChildren();
    for (const r of output.renditions ?? []) {
      const tr = el('tr');
      tr.dataset.height = String(r.height);
      tr.dataset.width = String(r.width);
      tr.dataset.codec = r.codec ?? 'h264';
      // H.264 by size alone, as before other codecs could be chosen.
      const codec = r.codec && r.codec !== 'h264' ? ` ${r.codec.toUpperCase()}` : '';
      for (const text of [
        `${Math.min(r.width ?? 0, r.height ?? 0)}p${codec}`,
        `${r.width}×${r.height}`,
        formatBitrate(r.bitrate ?? 0),
      ]) {
        const td = el('td');
        td.textContent = text;
        tr.append(td);
      }
      body.append(tr);
    }
    if (output.audio) {
      const tr = el('tr');
      for (const text of ['audio', 'AAC stereo', '']) {
        const td = el('td');
        td.textContent = text;
        tr.append(td);
      }
      body.append(tr);
    }
  }

  /** Marks the rendition the player is on now (it changes with the bandwidth). */
  private markActive(): void {
    const active = this.player?.getVariantTracks().find((t) => t.active);
    const codec = codecOfTrack(active?.videoCodec);
    for (const tr of this.renditions.tBodies[0]!.rows) {
      const on =
        !!active &&
        tr.dataset.height === String(active.height) &&
        tr.dataset.width === String(active.width) &&
        (!codec || tr.dataset.codec === codec);
      tr.setAttribute('aria-current', on ? 'true' : 'false');
    }
  }

  private async showPoster(output: PlayableOutput): Promise<void> {
    if (this.posterUrl?.startsWith('blob:')) URL.revokeObjectURL(this.posterUrl);
    this.posterUrl = undefined;
    this.poster.removeAttribute('src');
    this.video.removeAttribute('poster');
    const url = outputUrl(output, output.poster);
    if (!url) return;
    try {
      this.posterUrl = await this.api.imageUrl(url);
      this.poster.src = this.posterUrl;
      this.video.poster = this.posterUrl;
    } catch {
      this.poster.alt = 'The poster could not be loaded.';
    }
  }

  private async copy(): Promise<void> {
    const url = this.urlInput.value;
    if (!url) return;
    try {
      await navigator.clipboard.writeText(url);
      this.copyMessage.textContent = 'Copied.';
    } catch {
      // Without clipboard permission the text is selected for the person to copy.
      this.urlInput.select();
      this.copyMessage.textContent = 'Press Ctrl+C (⌘C) to copy the selected URL.';
    }
  }
}

/**
 * Where a file of the package can be fetched: its public URL (PUBLIC_BASE_URL), else this service's
 * /output/ route for local output. S3 output without a public address cannot be reached from a browser.
 */
function outputUrl(output: PlayableOutput, location: { key?: string; url?: string } | undefined) {
  if (!location) return undefined;
  if (location.url) return location.url;
  if (output.storage !== 'local' || !location.key) return undefined;
  const path = location.key.split('/').map(encodeURIComponent).join('/');
  return new URL(`/output/${path}`, window.location.href).href;
}

/** The service's name of a track's video codec, from its RFC 6381 string (`av01.0.04M.08` → `av1`). */
function codecOfTrack(codecs: string | null | undefined): string | undefined {
  const tag = codecs?.split('.')[0];
  const names: Record<string, string> = {
    avc1: 'h264',
    avc3: 'h264',
    av01: 'av1',
    vp09: 'vp9',
    hvc1: 'hevc',
    hev1: 'hevc',
  };
  return tag ? names[tag] : undefined;
}

/** A language's name in itself (`Français`): DASH manifests carry the tag alone, HLS its NAME too. */
function trackLanguage(tag: string): string | undefined {
  if (!tag || tag === 'und') return undefined;
  try {
    const name = new Intl.DisplayNames([tag], { type: 'language' }).of(tag);
    return name ? name.charAt(0).toLocaleUpperCase(tag) + name.slice(1) : tag;
  } catch {
    return tag;
  }
}
