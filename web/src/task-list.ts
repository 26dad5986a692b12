import { el } from './dom.js';
import type { EtaTracker } from './eta.js';
import { playableOutput, type StatusDocument } from './types.js';
import { displayName, failureWords, formatSeconds, stageWords, statusWords } from './words.js';

export interface TaskListActions {
  cancel(id: string): Promise<void>;
  play(doc: StatusDocument): void;
  /** A task the page was watching has just finished (for a screen reader announcement). */
  finished(doc: StatusDocument): void;
}

interface Row {
  li: HTMLLIElement;
  badge: HTMLSpanElement;
  progressRow: HTMLDivElement;
  progress: HTMLProgressElement;
  percent: HTMLSpanElement;
  detail: HTMLSpanElement;
  error: HTMLParagraphElement;
  cancel: HTMLButtonElement;
  play: HTMLButtonElement;
}

/**
 * The task list, newest first. Rows are made once per task and then updated in place, so a button that
 * has the keyboard focus keeps it while progress changes around it. All text goes in as text, never HTML.
 */
export class TaskList {
  private readonly tasks = new Map<string, StatusDocument>();
  private readonly rows = new Map<string, Row>();
  private selected: string | undefined;

  constructor(
    private readonly list: HTMLUListElement,
    private readonly empty: HTMLElement,
    private readonly eta: EtaTracker,
    private readonly actions: TaskListActions,
  ) {}

  replaceAll(docs: StatusDocument[]): void {
    const keep = new Set(docs.map((d) => d.task_id));
    for (const id of [...this.tasks.keys()]) {
      if (!keep.has(id)) {
        this.tasks.delete(id);
        this.rows.get(id)?.li.remove();
        this.rows.delete(id);
        this.eta.forget(id);
      }
    }
    this.merge(docs);
  }

  merge(docs: StatusDocument[]): void {
    for (const doc of docs) {
      const known = this.tasks.get(doc.task_id);
      // Updates may cross on the wire (stream and a direct answer): never step back in time.
      if (known && known.updated_at > doc.updated_at) continue;
      this.tasks.set(doc.task_id, doc);
      if (known && known.status !== doc.status && (doc.status === 'completed' || doc.status === 'failed')) {
        this.actions.finished(doc);
      }
      this.eta.observe(doc);
    }
    this.render();
  }

  get(id: string): StatusDocument | undefined {
    return this.tasks.get(id);
  }

  select(id: string | undefined): void {
    this.selected = id;
    for (const [taskId, row] of this.rows) row.li.classList.toggle('selected', taskId === id);
  }

  /** Re-renders the times left, which change even when no update arrives. */
  tick(): void {
    for (const doc of this.tasks.values()) if (doc.status === 'processing') this.update(doc);
  }

  private render(): void {
    const sorted = [...this.tasks.values()].sort(
      (a, b) => b.created_at.localeCompare(a.created_at) || b.task_id.localeCompare(a.task_id),
    );
    sorted.forEach((doc, i) => {
      const row = this.rows.get(doc.task_id) ?? this.create(doc);
      this.update(doc);
      const at = this.list.children[i];
      if (at !== row.li) this.list.insertBefore(row.li, at ?? null);
    });
    this.empty.hidden = sorted.length > 0;
  }

  private create(doc: StatusDocument): Row {
    const li = el('li', 'task');
    li.dataset.taskId = doc.task_id;
    const head = el('div', 'task-head');
    const name = el('span', 'task-name');
    name.textContent = displayName(doc.video_filename);
    name.title = doc.video_filename;
    const badge = el('span', 'badge');
    const time = el('time', 'task-time');
    time.dateTime = doc.created_at;
    time.textContent = new Date(doc.created_at).toLocaleString();
    head.append(name, badge, time);

    const progressRow = el('div', 'progress-row');
    const progress = el('progress');
    progress.max = 100;
    progress.setAttribute('aria-label', `Progress of ${displayName(doc.video_filename)}`);
    const percent = el('span', 'progress-text task-percent');
    const detail = el('span', 'progress-text task-detail');
    progressRow.append(progress, percent, detail);

    const error = el('p', 'task-error');
    const actions = el('div', 'task-actions');
    const play = el('button');
    play.type = 'button';
    play.textContent = 'Play';
    play.className = 'play';
    play.setAttribute('aria-label', `Play ${displayName(doc.video_filename)}`);
    play.addEventListener('click', () => {
      const current = this.tasks.get(doc.task_id);
      if (current) this.actions.play(current);
    });
    const cancel = el('button', 'danger cancel');
    cancel.type = 'button';
    cancel.textContent = 'Cancel';
    cancel.setAttribute('aria-label', `Cancel ${displayName(doc.video_filename)}`);
    cancel.addEventListener('click', () => {
      cancel.disabled = true;
      void this.actions.cancel(doc.task_id).finally(() => (cancel.disabled = false));
    });
    actions.append(play, cancel);
    li.append(head, progressRow, error, actions);
    const row: Row = { li, badge, progressRow, progress, percent, detail, error, cancel, play };
    this.rows.set(doc.task_id, row);
    li.classList.toggle('selected', doc.task_id === this.selected);
    return row;
  }

  private update(doc: StatusDocument): void {
    const row = this.rows.get(doc.task_id);
    if (!row) return;
    const status = statusWords(doc);
    row.li.dataset.status = status.key;
    row.badge.dataset.status = status.key;
    row.badge.textContent = status.label;
    const pct = Math.round(doc.progress);
    row.progress.value = doc.progress;
    row.percent.textContent = `${pct}%`;
    row.detail.textContent = this.detailText(doc);
    // A failed task's percentage says nothing useful; its reason takes the place of the bar.
    row.progressRow.hidden = doc.status === 'failed';
    row.error.hidden = doc.status !== 'failed';
    row.error.textContent = doc.status === 'failed' ? failureWords(doc) : '';
    const running = doc.status === 'queued' || doc.status === 'processing';
    row.cancel.hidden = !running;
    // While processing, EARLY_MANIFEST's first package (the lowest rung and the audio) plays already.
    row.play.hidden = !playableOutput(doc);
    const early = doc.status !== 'completed';
    row.play.textContent = early ? 'Play now' : 'Play';
    const name = displayName(doc.video_filename);
    row.play.setAttribute('aria-label', early ? `Play ${name} now, in its lowest quality` : `Play ${name}`);
    row.play.title = early ? 'The lowest quality and the audio are ready; the others follow.' : '';
  }

  private detailText(doc: StatusDocument): string {
    if (doc.status === 'queued') {
      const position = doc.queue_position;
      return position ? `waiting: number ${position} in the queue` : 'waiting for a worker';
    }
    if (doc.status !== 'processing') return '';
    const stage = stageWords(doc.stage);
    // The service's estimate when it gives one, else the page's own from the pace of progress.
    const left = doc.eta_seconds ?? this.eta.secondsLeft(doc.task_id);
    return left === undefined ? stage : `${stage} · about ${formatSeconds(left)} left`;
  }
}
