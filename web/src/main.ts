import { Api, sendableKey } from './api.js';
import { byId } from './dom.js';
import { EtaTracker } from './eta.js';
import { PlayerPanel } from './player.js';
import { TaskList } from './task-list.js';
import { TaskStream, type StreamMode } from './task-stream.js';
import type { StatusDocument } from './types.js';
import { Uploader } from './upload.js';
import { displayName, failureWords } from './words.js';

const modeWords: Record<StreamMode, string> = {
  connecting: 'Connecting…',
  live: 'Live updates',
  polling: 'Updating every few seconds',
  offline: 'Cannot reach the service; retrying',
  locked: 'API key needed',
};

function main(): void {
  const api = new Api();
  const connection = byId('connection');
  const keyPanel = byId('key-panel');
  const keyInput = byId<HTMLInputElement>('api-key');
  const keyMessage = byId('key-message');
  const announcer = byId('announcer');
  const player = new PlayerPanel(api);

  const list = new TaskList(byId<HTMLUListElement>('task-list'), byId('tasks-empty'), new EtaTracker(), {
    cancel: async (id) => {
      try {
        list.merge([await api.json<StatusDocument>('POST', `/tasks/${encodeURIComponent(id)}/cancel`)]);
      } catch (err) {
        byId('upload-message').textContent = `Could not cancel: ${(err as Error).message}.`;
      }
    },
    play: (doc) => {
      list.select(doc.task_id);
      void player.open(doc);
    },
    finished: (doc) => {
      if (doc.status === 'completed') void player.completed(doc);
      const name = displayName(doc.video_filename);
      announcer.textContent =
        doc.status === 'completed' ? `${name} is ready to play.` : `${name}: ${failureWords(doc)}`;
    },
  });

  const stream = new TaskStream(api, {
    snapshot: (tasks) => list.replaceAll(tasks),
    update: (tasks) => list.merge(tasks),
    mode: (mode) => {
      connection.dataset.mode = mode;
      connection.textContent = modeWords[mode];
    },
  });

  const showTask = async (id: string) => {
    try {
      list.merge([await api.json<StatusDocument>('GET', `/status/${encodeURIComponent(id)}`)]);
    } catch {
      // The stream brings it a moment later anyway.
    }
  };
  const uploader = new Uploader(api, (id) => void showTask(id));

  api.onUnauthorized = () => {
    keyPanel.hidden = false;
    if (keyInput.value) keyMessage.textContent = 'That key was not accepted.';
    keyInput.focus();
  };
  byId<HTMLFormElement>('key-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const key = keyInput.value.trim();
    // An HTTP header carries printable ASCII only: fetch refused to send anything else, and the page read
    // that as the service being unreachable (with the key kept for the next visit too).
    if (!sendableKey(key)) {
      keyMessage.textContent =
        'An API key is made of printable ASCII characters: check for a pasted dash or space.';
      keyInput.focus();
      return;
    }
    api.setKey(key);
    keyMessage.textContent = '';
    keyPanel.hidden = true;
    stream.stop();
    stream.start();
    void uploader.loadOptions().catch(() => undefined);
  });

  window.setInterval(() => list.tick(), 1000);
  stream.start();
  void uploader.loadOptions().catch(() => undefined);
}

main();
