import { HttpError, type Api } from './api.js';
import { byId } from './dom.js';
import { formatBytes } from './words.js';

interface UploadOptions {
  max_bytes: number;
  multipart: boolean;
  presigned: boolean;
}

interface Uploaded {
  video_filename: string;
  task_id?: string;
  upload_url?: string;
  headers?: Record<string, string>;
}

/**
 * The drop zone and file picker: sends the file with a progress bar (XMLHttpRequest, whose upload progress
 * fetch does not give), then submits it for conversion. Through the API as multipart, or straight to the
 * bucket when the service hands out presigned upload URLs.
 */
export class Uploader {
  private readonly zone = byId('drop-zone');
  private readonly input = byId<HTMLInputElement>('file-input');
  private readonly chooser = byId<HTMLButtonElement>('choose-file');
  private readonly status = byId('upload-status');
  private readonly label = byId('upload-label');
  private readonly bar = byId<HTMLProgressElement>('upload-progress');
  private readonly text = byId('upload-text');
  private readonly cancelButton = byId<HTMLButtonElement>('upload-cancel');
  private readonly message = byId('upload-message');
  private readonly limit = byId('upload-limit');
  private options: UploadOptions | undefined;
  private xhr: XMLHttpRequest | undefined;

  constructor(
    private readonly api: Api,
    private readonly onSubmitted: (taskId: string) => void,
  ) {
    this.chooser.addEventListener('click', () => this.input.click());
    this.input.addEventListener('change', () => {
      const file = this.input.files?.[0];
      this.input.value = '';
      if (file) void this.upload(file);
    });
    this.zone.addEventListener('dragover', (e) => {
      e.preventDefault();
      if (e.dataTransfer) e.dataTransfer.dropEffect = 'copy';
      this.zone.classList.add('dragging');
    });
    this.zone.addEventListener('dragleave', () => this.zone.classList.remove('dragging'));
    this.zone.addEventListener('drop', (e) => {
      e.preventDefault();
      this.zone.classList.remove('dragging');
      const file = e.dataTransfer?.files[0];
      if (file) void this.upload(file);
    });
    this.cancelButton.addEventListener('click', () => this.xhr?.abort());
  }

  async loadOptions(): Promise<void> {
    this.options = await this.api.json<UploadOptions>('GET', '/uploads');
    this.limit.textContent = `Up to ${formatBytes(this.options.max_bytes)}. The video is converted as soon as it is uploaded.`;
  }

  private say(text: string, error = false): void {
    this.message.textContent = text;
    this.message.classList.toggle('error', error);
  }

  async upload(file: File): Promise<void> {
    if (this.xhr) {
      this.say('Wait for the current upload to finish, or cancel it.', true);
      return;
    }
    try {
      if (!this.options) await this.loadOptions();
      const options = this.options!;
      if (file.size === 0) throw new Error(`${file.name} is empty.`);
      if (file.size > options.max_bytes) {
        throw new Error(
          `${file.name} is ${formatBytes(file.size)}, more than the limit of ${formatBytes(options.max_bytes)}.`,
        );
      }
      this.say('');
      this.begin(file);
      let taskId: string | undefined;
      if (options.presigned) {
        const target = await this.api.json<Uploaded>('POST', '/uploads', {
          filename: file.name,
          content_type: file.type || 'application/octet-stream',
          size: file.size,
        });
        await this.send('PUT', target.upload_url!, file, target.headers ?? {});
        taskId = (
          await this.api.json<{ task_id: string }>('POST', '/encode', {
            video_filename: target.video_filename,
          })
        ).task_id;
      } else {
        const form = new FormData();
        form.append('file', file, file.name);
        const answer = await this.send('POST', '/uploads?encode=true', form, this.api.headers());
        taskId = (JSON.parse(answer) as Uploaded).task_id;
      }
      this.say(`${file.name} is uploaded and queued for conversion.`);
      if (taskId) this.onSubmitted(taskId);
    } catch (err) {
      this.say(uploadErrorWords(err, file.name), true);
    } finally {
      this.end();
    }
  }

  private begin(file: File): void {
    this.status.hidden = false;
    this.label.textContent = `Uploading ${file.name}`;
    this.bar.value = 0;
    this.text.textContent = `0 of ${formatBytes(file.size)}`;
    this.chooser.disabled = true;
  }

  private end(): void {
    this.xhr = undefined;
    this.status.hidden = true;
    this.chooser.disabled = false;
  }

  /** One request with upload progress shown; resolves with the response text of a 2xx answer. */
  private send(
    method: string,
    url: string,
    body: Document | XMLHttpRequestBodyInit,
    headers: Record<string, string>,
  ): Promise<string> {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      this.xhr = xhr;
      xhr.open(method, url);
      for (const [k, v] of Object.entries(headers)) xhr.setRequestHeader(k, v);
      xhr.upload.addEventListener('progress', (e) => {
        if (!e.lengthComputable) return;
        this.bar.value = (e.loaded / e.total) * 100;
        this.text.textContent = `${Math.floor((e.loaded / e.total) * 100)}% · ${formatBytes(e.loaded)} of ${formatBytes(e.total)}`;
      });
      xhr.addEventListener('load', () => {
        if (xhr.status >= 200 && xhr.status < 300) return resolve(xhr.responseText);
        let body: unknown;
        try {
          body = JSON.parse(xhr.responseText);
        } catch {
          body = undefined;
        }
        reject(this.api.error(xhr.status, body));
      });
      xhr.addEventListener('error', () => reject(new Error('the connection was lost during the upload')));
      xhr.addEventListener('abort', () => reject(new UploadCancelled()));
      xhr.send(body);
    });
  }
}

class UploadCancelled extends Error {}

function uploadErrorWords(err: unknown, name: string): string {
  if (err instanceof UploadCancelled) return `The upload of ${name} was cancelled.`;
  if (err instanceof HttpError) {
    if (err.status === 401) return 'The service needs an API key before it takes uploads.';
    if (err.status === 413) return `${name} is larger than this service accepts.`;
    if (err.status === 503) return `The service is busy: ${err.message}.`;
    return `The upload of ${name} failed: ${err.message}.`;
  }
  const message = err instanceof Error ? err.message : String(err);
  return /[.!?]$/.test(message) ? message : `The upload of ${name} failed: ${message}.`;
}
